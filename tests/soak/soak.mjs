// SPDX-License-Identifier: Apache-2.0
// `make soak`: gatehouse under ten minutes of mixed traffic, with its memory watched.
//
// Starts a real OpenID Provider (oidc-provider, tests/e2e/lib/idp.mjs), an upstream that echoes
// what it received (tests/e2e/lib/upstream.mjs) and `gatehouse serve`, all on 127.0.0.1 with
// ephemeral ports and a temporary data directory; configures an oidc, a token and a jwt profile
// through the admin API; then, for --minutes, a bounded set of keep-alive clients sends:
//
//   valid    oidc tokens from the IdP (a pool, refreshed), api-tokens (header and Basic auth, the
//            old key during its grace period too), jwt tokens signed fresh for every request, the
//            key of a client made a moment ago, and paths of an endpoint made a moment ago
//   invalid  bad signatures, expired tokens, unknown kids (random ones: a kid storm), garbage,
//            revoked and deleted keys, no credential; paths that match nothing or were deleted
//
// while the IdP rotates its signing key every ~60 s (publish, sign with it 40 s later, drop the
// old one 10 s after that) and the configuration changes every ~20 s (a client with its profile
// and an endpoint are made and the previous ones deleted; the token profile's key is rotated with
// a grace period and the load moves to the new key). A valid request must get a 2xx with the
// right identity at the upstream, an invalid one 401, an unknown path 404: anything else, or a
// network error, is unexpected. gatehouse's RSS (VmRSS of /proc/<pid>/status) is sampled every
// 5 s. At the end: the curve, a summary, the growth rule (below), SIGTERM and a clean exit.
//
//   node tests/soak/soak.mjs [--minutes 10] [--out FILE.csv] [--clients 16] [--threads 2]
//
// Growth rule: the first quarter of the run is warm-up. growth = median RSS of the last quarter
// minus median RSS of the second quarter. Memory is flat when growth < 10 % of the second
// quarter's median AND growth < 4 MiB. Exit status 0 only when there was no unexpected answer,
// memory was flat, and gatehouse exited 0 within the drain time after SIGTERM.

import { spawn } from 'node:child_process';
import {
  createPublicKey, generateKeyPairSync, randomBytes, randomInt, sign,
} from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleepFor } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { KEY_CLAIM, start as startIdp, tamperSignature } from '../e2e/lib/idp.mjs';
import { adminRequest } from '../e2e/lib/server.mjs';
import { startUpstream } from '../e2e/lib/upstream.mjs';

// ---- settings ---------------------------------------------------------------------------------

const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    out: { type: 'string' },
    clients: { type: 'string', default: '16' },
    threads: { type: 'string', default: '2' },
  },
});
const MINUTES = Number(opts.minutes);
const CLIENTS = Number(opts.clients);
if (!(MINUTES > 0) || !(CLIENTS >= 1)) {
  console.error('usage: soak.mjs [--minutes N (fractional ok)] [--out FILE.csv] [--clients N] [--threads N]');
  process.exit(2);
}
const DURATION_MS = Math.round(MINUTES * 60000);
const SAMPLE_MS = 5000;
const CONFIG_PERIOD_MS = 20000;  // configuration change period (first at 10 s)
const IDP_PERIOD_MS = 60000;     // IdP key rotation period (first publication at 5 s)
const IDP_USE_AFTER_MS = 40000;  // publish -> sign with the new key
const IDP_DROP_AFTER_MS = 10000; // sign with the new key -> unpublish the old one
const POOL_REFRESH_MS = 30000;   // oidc token pool refresh
const GRACE_SECONDS = 15;        // grace of the token profile's old key
const MARGIN_MS = 3000;          // distance kept from the grace boundary, both sides
const DRAIN_LIMIT_MS = 35000;    // gatehouse drains 30 s, then gives cut connections 2 s
const REQUEST_TIMEOUT_MS = 15000;
const GROWTH_RATIO = 0.10;
const GROWTH_MIB = 4;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = resolve(ROOT, process.env.GATEHOUSE_BIN || 'build/gatehouse');

let t0 = Date.now(); // reset when the load starts: every time below counts from there
const elapsed = () => (Date.now() - t0) / 1000;
const say = (text) => process.stdout.write(`${text}\n`);
const note = (text) => say(`[${elapsed().toFixed(1).padStart(6)} s] ${text}`);
const pick = (list) => list[randomInt(list.length)];
const b64 = (s) => Buffer.from(s).toString('base64url');
const mib = (kib) => (kib / 1024).toFixed(1);

// ---- gatehouse --------------------------------------------------------------------------------

/**
 * `gatehouse serve` in dir, its output read line by line and never kept whole (one access-log
 * line per request would be hundreds of MB): access lines are counted by status, the other lines
 * counted by level and message, the last few of them kept for the report.
 */
function startGatehouse(dir, threads) {
  const child = spawn(BIN, ['serve', '--db', `sqlite:${join(dir, 'gh.db')}`, '--listen', '127.0.0.1:0',
    '--admin-listen', '127.0.0.1:0', '--threads', String(threads)], {
    cwd: dir,
    env: {
      ...process.env,
      GATEHOUSE_ADMIN_TOKEN: '',
      GATEHOUSE_LOG_LEVEL: '',
      GATEHOUSE_ALLOW_INSECURE_IDP: '',
      GATEHOUSE_KEY_CLAIMS: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const gh = {
    child,
    pid: child.pid,
    accessLines: 0,
    accessByStatus: new Map(),
    messages: new Map(), // "level msg" -> count
    recent: [],          // last non-access lines
    stderr: '',
    listening: {},
  };
  const waiters = [];
  gh.exited = new Promise((resolveExit) => {
    child.once('error', (err) => resolveExit({ code: null, signal: null, error: err }));
    child.once('close', (code, signal) => resolveExit({ code, signal }));
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line.includes('"msg":"access"')) {
      gh.accessLines += 1;
      const m = /"status":(\d+)/.exec(line);
      const s = m ? m[1] : '?';
      gh.accessByStatus.set(s, (gh.accessByStatus.get(s) ?? 0) + 1);
      return;
    }
    let rec;
    try {
      rec = JSON.parse(line);
    } catch {
      rec = { level: 'unparsed', msg: line.slice(0, 200) };
    }
    const k = `${rec.level} ${rec.msg}`;
    gh.messages.set(k, (gh.messages.get(k) ?? 0) + 1);
    gh.recent.push(line.slice(0, 400));
    if (gh.recent.length > 40) gh.recent.shift();
    if (rec.msg === 'admin API listening') gh.listening.admin = rec.address;
    if (rec.msg === 'gateway listening') gh.listening.gateway = rec.address;
    for (const w of waiters) w();
  });
  child.stderr.setEncoding('utf8').on('data', (d) => {
    if (gh.stderr.length < 65536) gh.stderr += d;
  });
  gh.ready = new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`gatehouse did not start in 10 s\n${gh.recent.join('\n')}\n${gh.stderr}`)), 10000);
    const check = () => {
      if (gh.listening.admin && gh.listening.gateway) {
        clearTimeout(timer);
        resolveReady();
      }
    };
    waiters.push(check);
    gh.exited.then((info) => {
      clearTimeout(timer);
      reject(new Error(`gatehouse exited (${info.error?.message ?? `code ${info.code} signal ${info.signal}`}) before listening\n${gh.stderr}`));
    });
  });
  return gh;
}

async function memoryOf(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number((new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status) ?? [])[1]);
  let fds = NaN;
  try {
    fds = (await readdir(`/proc/${pid}/fd`)).length;
  } catch { /* gone */ }
  return { rss: field('VmRSS'), hwm: field('VmHWM'), threads: field('Threads'), fds };
}

// ---- tokens -----------------------------------------------------------------------------------

function signEs256(header, payload, privateKey) {
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
  const sig = sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

const jwtKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' }); // the jwt profile's static key
const strangerKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' }); // nobody publishes it

function jwtToken(profileKey, { expired = false, key = jwtKeys.privateKey } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return signEs256({ alg: 'ES256', typ: 'JWT' }, {
    sub: 'soak-jwt',
    jti: randomBytes(9).toString('base64url'), // every token is a new one
    iat: expired ? now - 7200 : now,
    exp: expired ? now - 3600 : now + 300,
    [KEY_CLAIM]: profileKey,
  }, key);
}

// ---- load -------------------------------------------------------------------------------------

/** Bounded, keyed tallies. */
class Tally {
  constructor() { this.map = new Map(); }
  add(k, n = 1) { this.map.set(k, (this.map.get(k) ?? 0) + n); }
  get(k) { return this.map.get(k) ?? 0; }
}

const stats = {
  requests: 0,
  unexpected: 0,
  byKind: new Tally(),
  unexpectedByKind: new Tally(),
  unexpectedWhat: new Tally(),
  examples: [],
  latencyBuckets: new Array(64).fill(0), // by floor(log2(microseconds))
  maxLatencyMs: 0,
  sockets: 0,
  admin: 0,
};

function unexpected(kind, what, detail) {
  stats.unexpected += 1;
  stats.unexpectedByKind.add(kind);
  stats.unexpectedWhat.add(`${kind}: ${what}`);
  if (stats.examples.length < 25) {
    stats.examples.push(`t=${elapsed().toFixed(1)}s ${kind}: ${what}${detail ? ` ${detail}` : ''}`);
  }
}

function percentile(p) {
  const total = stats.latencyBuckets.reduce((a, b) => a + b, 0);
  let seen = 0;
  for (let i = 0; i < stats.latencyBuckets.length; i++) {
    seen += stats.latencyBuckets[i];
    if (seen >= total * p) return (2 ** (i + 1)) / 1000; // upper bound of the bucket, ms
  }
  return NaN;
}

/** A reference that requests can hold: retire() waits until none of them is in flight. */
function ref(value) {
  return { ...value, inflight: 0 };
}
async function drained(r) {
  const deadline = Date.now() + REQUEST_TIMEOUT_MS + 1000;
  while (r.inflight > 0 && Date.now() < deadline) await sleepFor(20);
}

function main() {
  let running = true;
  let interrupted = false;
  const stop = new AbortController();
  process.on('SIGINT', () => {
    if (interrupted) return;
    interrupted = true;
    say('\ninterrupted: stopping the load and cleaning up');
    running = false;
    stop.abort();
  });
  const sleep = (ms) => sleepFor(ms, undefined, { signal: stop.signal }).then(() => true, () => false);
  const sleepUntil = (ms) => sleep(Math.max(0, t0 + ms - Date.now()));

  let dir;
  let idp;
  let up;
  let gh;
  let upTrim;
  const samples = []; // { t, rss, hwm, threads, fds, requests, unexpected }
  const events = new Tally();
  const report = { ok: true, reasons: [] };
  const fail = (why) => {
    report.ok = false;
    report.reasons.push(why);
  };

  // The state the load draws from. Each entry that can be retired is a ref().
  const state = {
    oidcKey: null,
    oidcProfile: null,
    oidcPool: [],      // valid tokens from the IdP
    oidcExpired: [],   // expired tokens signed by the IdP's current key
    tokenProfile: null,
    tokenKey: null,    // ref({ key }) of the current api-token key
    graceKey: null,    // ref({ key, until }) of the previous key while within its grace
    jwtProfile: null,
    churnClient: null, // ref({ key, profileId, clientId, name })
    churnEndpoint: null, // ref({ id, seg })
    revokedKeys: [],   // api-token keys past their grace, or of deleted profiles
    gonePaths: [],     // path segments of deleted endpoints
    collections: {},
  };
  const remember = (list, item, max = 8) => {
    list.push(item);
    if (list.length > max) list.shift();
  };

  const garbage = [
    () => `Bearer ${randomBytes(30).toString('base64url')}`,
    () => `Bearer ${randomBytes(12).toString('base64url')}.${randomBytes(24).toString('base64url')}.${randomBytes(32).toString('base64url')}`,
    () => `Bearer ${pick(state.oidcPool).split('.').slice(0, 2).join('.')}.`,
    () => `Bearer ${b64('{"alg":"none"}')}.${b64(JSON.stringify({ [KEY_CLAIM]: state.oidcKey, exp: 4102444800 }))}.`,
    () => `Bearer ${b64('{"alg":"ES256","kid":"x"')}.${b64('{}')}.${randomBytes(64).toString('base64url')}`,
    () => `Bearer ${pick(state.oidcPool)}==`,
    () => `Bearer ${randomBytes(12300).toString('base64url')}`, // over 16 KiB
    () => 'Bearer',
    () => `Basic ${Buffer.from(`api-token:gk_${randomBytes(32).toString('base64url')}`).toString('base64')}`,
  ];

  // kind: weight, build() -> { path, headers, expect: 200|401|404, profile?, upstreamPath? } or null
  const orders = (n) => ({ path: `/orders/v1/items/${n}`, upstreamPath: `/items/${n}` });
  const kinds = [
    ['valid oidc', 26, () => {
      const n = randomInt(1e6);
      return { ...orders(n), headers: { authorization: `Bearer ${pick(state.oidcPool)}` }, expect: 200, profile: state.oidcProfile.id };
    }],
    ['valid api-token', 12, () => {
      const r = state.tokenKey;
      return { ...orders(randomInt(1e6)), headers: { 'api-token': r.key }, expect: 200, profile: state.tokenProfile.id, ref: r };
    }],
    ['valid api-token basic', 4, () => {
      const r = state.tokenKey;
      const basic = Buffer.from(`api-token:${r.key}`).toString('base64');
      return { ...orders(randomInt(1e6)), headers: { authorization: `Basic ${basic}` }, expect: 200, profile: state.tokenProfile.id, ref: r };
    }],
    ['valid api-token in grace', 3, () => {
      const r = state.graceKey;
      if (!r || r.retired) return null;
      return { ...orders(randomInt(1e6)), headers: { 'api-token': r.key }, expect: 200, profile: state.tokenProfile.id, ref: r };
    }],
    ['valid jwt', 12, () => ({
      path: '/billing/v1/invoices', upstreamPath: '/invoices',
      headers: { authorization: `Bearer ${jwtToken(state.jwtProfile.key)}` }, expect: 200, profile: state.jwtProfile.id,
    })],
    ['valid new client', 5, () => {
      const r = state.churnClient;
      if (!r || r.retired) return null;
      return { ...orders(randomInt(1e6)), headers: { 'api-token': r.key }, expect: 200, profile: r.profileId, ref: r };
    }],
    ['valid new endpoint', 5, () => {
      const r = state.churnEndpoint;
      if (!r || r.retired) return null;
      const n = randomInt(1e6);
      return {
        path: `/orders/v1/${r.seg}/x/${n}`, upstreamPath: `/${r.seg}/x/${n}`,
        headers: { 'api-token': state.tokenKey.key }, expect: 200, profile: state.tokenProfile.id, ref: r,
      };
    }],
    ['bad signature', 5, () => ({
      ...orders(1),
      headers: {
        authorization: `Bearer ${randomInt(2) ? tamperSignature(pick(state.oidcPool))
          : jwtToken(state.jwtProfile.key, { key: strangerKeys.privateKey })}`,
      },
      expect: 401,
    })],
    ['expired', 4, () => ({
      ...orders(2),
      headers: {
        authorization: `Bearer ${randomInt(2) && state.oidcExpired.length ? pick(state.oidcExpired)
          : jwtToken(state.jwtProfile.key, { expired: true })}`,
      },
      expect: 401,
    })],
    ['unknown kid', 5, () => {
      const now = Math.floor(Date.now() / 1000);
      const token = signEs256({ alg: 'ES256', kid: randomBytes(16).toString('base64url'), typ: 'at+jwt' }, {
        iss: idp.issuer, aud: idp.resource, iat: now, exp: now + 300, [KEY_CLAIM]: state.oidcKey,
      }, strangerKeys.privateKey);
      return { ...orders(3), headers: { authorization: `Bearer ${token}` }, expect: 401 };
    }],
    ['garbage', 5, () => ({ ...orders(4), headers: { authorization: pick(garbage)() }, expect: 401 })],
    ['revoked api-token', 4, () => {
      if (state.revokedKeys.length === 0) return null;
      return { ...orders(5), headers: { 'api-token': pick(state.revokedKeys) }, expect: 401 };
    }],
    ['no credential', 2, () => ({ ...orders(6), headers: {}, expect: 401 })],
    ['unknown path', 8, () => {
      const choices = [
        () => `/nowhere/v${randomInt(9)}/x`,
        () => `/orders/v1/nothing/${randomInt(1e6)}`,
        () => `/orders/v1/items/${randomInt(1e6)}/deeper`,
        () => (state.gonePaths.length ? `/orders/v1/${pick(state.gonePaths)}/x/${randomInt(1e6)}` : '/billing/v1/gone'),
      ];
      return { path: pick(choices)(), headers: { 'api-token': state.tokenKey.key }, expect: 404 };
    }],
  ];
  const totalWeight = kinds.reduce((a, k) => a + k[1], 0);
  function pickRequest() {
    for (;;) {
      let w = randomInt(totalWeight);
      for (const [name, weight, build] of kinds) {
        if (w < weight) {
          const r = build();
          if (r) return { kind: name, ...r };
          break;
        }
        w -= weight;
      }
    }
  }

  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS, maxFreeSockets: CLIENTS });
  let gatewayPort;

  function send(r) {
    return new Promise((resolveSend) => {
      const started = process.hrtime.bigint();
      if (r.ref) r.ref.inflight += 1;
      let settled = false;
      const done = (what, detail) => {
        if (settled) return;
        settled = true;
        if (r.ref) r.ref.inflight -= 1;
        const us = Number(process.hrtime.bigint() - started) / 1000;
        stats.latencyBuckets[Math.min(63, Math.max(0, Math.floor(Math.log2(Math.max(1, us)))))] += 1;
        stats.maxLatencyMs = Math.max(stats.maxLatencyMs, us / 1000);
        stats.requests += 1;
        stats.byKind.add(r.kind);
        if (what) unexpected(r.kind, what, detail);
        resolveSend();
      };
      const req = http.request({
        host: '127.0.0.1', port: gatewayPort, path: r.path, method: 'GET', headers: r.headers, agent, timeout: REQUEST_TIMEOUT_MS,
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', (err) => done(`network error ${err.code ?? err.message}`));
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const s = res.statusCode;
          if (r.expect === 200) {
            if (s < 200 || s > 299) return done(`status ${s}`, body.slice(0, 200));
            let seen;
            try {
              seen = JSON.parse(body);
            } catch {
              return done('2xx without the upstream echo', body.slice(0, 200));
            }
            if (seen.headers?.['x-gatehouse-profile-id'] !== r.profile) {
              return done('wrong identity at the upstream', `${seen.headers?.['x-gatehouse-profile-id']} != ${r.profile}`);
            }
            if (seen.path !== r.upstreamPath) return done('wrong upstream path', `${seen.path} != ${r.upstreamPath}`);
            return done(null);
          }
          if (s !== r.expect) return done(`status ${s} (expected ${r.expect})`, body.slice(0, 200));
          if (s === 401 && !/^Bearer realm="gatehouse"/.test(res.headers['www-authenticate'] ?? '')) {
            return done('401 without WWW-Authenticate');
          }
          return done(null);
        });
      });
      req.on('socket', (sock) => {
        if (!sock.soakCounted) {
          sock.soakCounted = true;
          stats.sockets += 1;
        }
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => done(`network error ${err.code ?? err.message}`));
      req.end();
    });
  }

  async function worker() {
    while (running) await send(pickRequest());
  }

  // ---- the configuration, through the admin API ----

  let admin;
  async function api(method, path, body, want) {
    stats.admin += 1;
    const r = await adminRequest(admin.url, admin.token, method, path, body);
    if (r.status !== want) {
      unexpected('admin API', `${method} ${path.replace(/_[0-9A-Za-z]+/g, '_…')} answered ${r.status}`, r.text.slice(0, 200));
      throw new Error(`${method} ${path} answered ${r.status}: ${r.text}`);
    }
    return r.json;
  }

  async function refreshOidcPool() {
    const fresh = await Promise.all([...Array(8)].map(() => idp.getToken()));
    state.oidcPool = fresh;
    events.add('oidc token pool refreshed');
  }
  async function refreshExpired() {
    const now = Math.floor(Date.now() / 1000);
    state.oidcExpired = await Promise.all([...Array(4)].map(() => idp.sign({ iat: now - 7200, exp: now - 3600 })));
  }

  async function configure(upstreamUrl) {
    const col = (name, path) => api('POST', '/v1/collections', { name, path, upstream: upstreamUrl }, 201);
    state.collections.orders = await col('orders', '/orders/v1');
    state.collections.billing = await col('billing', '/billing/v1');
    await api('POST', `/v1/collections/${state.collections.orders.id}/endpoints`, { method: 'GET', path: '/items/:id' }, 201);
    await api('POST', `/v1/collections/${state.collections.billing.id}/endpoints`, { method: 'GET', path: '/invoices' }, 201);
    const client = await api('POST', '/v1/clients', { name: 'soak' }, 201);
    const grants = [state.collections.orders.id, state.collections.billing.id];
    state.oidcProfile = await api('POST', '/v1/profiles', {
      client_id: client.id, name: 'soak-oidc', auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl,
      audiences: [idp.resource], collection_ids: grants,
    }, 201);
    state.oidcKey = state.oidcProfile.key;
    state.tokenProfile = await api('POST', '/v1/profiles', {
      client_id: client.id, name: 'soak-token', auth_type: 'token', collection_ids: grants,
    }, 201);
    state.tokenKey = ref({ key: state.tokenProfile.key });
    state.jwtProfile = await api('POST', '/v1/profiles', {
      client_id: client.id, name: 'soak-jwt', auth_type: 'jwt', algorithms: ['ES256'],
      jwt_key: createPublicKey(jwtKeys.privateKey).export({ type: 'spki', format: 'pem' }), collection_ids: grants,
    }, 201);
    await refreshOidcPool();
    await refreshExpired();
  }

  // Every ~20 s: a new client with its token profile, a new endpoint, and the previous ones
  // deleted; the token profile's key rotated with a grace period.
  async function configChange(n) {
    const name = `churn-${n}`;
    const client = await api('POST', '/v1/clients', { name }, 201);
    const profile = await api('POST', '/v1/profiles', {
      client_id: client.id, name, auth_type: 'token', collection_ids: [state.collections.orders.id],
    }, 201);
    const endpoint = await api('POST', `/v1/collections/${state.collections.orders.id}/endpoints`,
      { method: 'GET', path: `/${name}/*` }, 201);
    const oldClient = state.churnClient;
    const oldEndpoint = state.churnEndpoint;
    state.churnClient = ref({ key: profile.key, profileId: profile.id, clientId: client.id });
    state.churnEndpoint = ref({ id: endpoint.id, seg: name });
    events.add('client + profile + endpoint created');
    if (oldClient) {
      oldClient.retired = true;
      await drained(oldClient);
      await api('DELETE', `/v1/profiles/${oldClient.profileId}`, undefined, 204);
      await api('DELETE', `/v1/clients/${oldClient.clientId}`, undefined, 204);
      remember(state.revokedKeys, oldClient.key);
      events.add('client + profile deleted');
    }
    if (oldEndpoint) {
      oldEndpoint.retired = true;
      await drained(oldEndpoint);
      await api('DELETE', `/v1/endpoints/${oldEndpoint.id}`, undefined, 204);
      remember(state.gonePaths, oldEndpoint.seg);
      events.add('endpoint deleted');
    }

    // the token profile's key: a new one, the old one valid for GRACE_SECONDS more
    const previous = state.tokenKey;
    const fresh = await api('POST', `/v1/profiles/${state.tokenProfile.id}/keys`, { grace_seconds: GRACE_SECONDS }, 201);
    const rotatedAt = Date.now();
    state.tokenKey = ref({ key: fresh.key });
    events.add('token profile key rotated (grace)');
    const grace = ref({ key: previous.key });
    state.graceKey = grace;
    previous.retired = true; // still valid: it is the grace key now
    (async () => {
      const aborted = !await sleep(GRACE_SECONDS * 1000 - MARGIN_MS);
      grace.retired = true;
      if (aborted) return;
      await drained(grace);
      if (!await sleep(Math.max(0, rotatedAt + GRACE_SECONDS * 1000 + MARGIN_MS - Date.now()))) return;
      remember(state.revokedKeys, grace.key); // past its grace: must be refused now
      events.add('old token key past its grace');
    })();
  }

  // Every ~60 s: publish a new key, sign with it 40 s later, drop the old one 10 s after that.
  async function idpRotation(startMs) {
    const { kid, previousKid } = await idp.rotate({ activate: false });
    events.add('IdP key published');
    note(`IdP published key ${kid.slice(0, 8)}…`);
    if (!await sleepUntil(startMs + IDP_USE_AFTER_MS)) return;
    idp.useKey(kid);
    await refreshOidcPool();
    await refreshExpired();
    events.add('IdP signs with the new key');
    note(`IdP signs with ${kid.slice(0, 8)}…`);
    if (!await sleepUntil(startMs + IDP_USE_AFTER_MS + IDP_DROP_AFTER_MS)) return;
    await idp.dropKey(previousKid);
    events.add('IdP old key dropped');
    note(`IdP dropped ${previousKid.slice(0, 8)}…`);
  }

  async function periodic(firstMs, periodMs, fn) {
    for (let n = 1, at = firstMs; running; n++, at += periodMs) {
      if (!await sleepUntil(at) || !running) return;
      try {
        await fn(n, at);
      } catch (err) {
        if (!running) return;
        fail(`background task failed: ${err.message}`);
        note(`!! ${err.message}`);
      }
    }
  }

  async function sampler() {
    let lastRequests = 0;
    let lastAt = Date.now();
    for (let at = 0; ; at += SAMPLE_MS) {
      if (at > 0 && !await sleepUntil(at)) return;
      if (!running) return;
      await takeSample();
      if (at % 30000 === 0) {
        const s = samples[samples.length - 1];
        const rate = ((s.requests - lastRequests) * 1000) / Math.max(1, Date.now() - lastAt);
        lastRequests = s.requests;
        lastAt = Date.now();
        note(`rss ${mib(s.rss)} MiB  fds ${s.fds}  threads ${s.threads}  requests ${s.requests} (${rate.toFixed(0)}/s)  unexpected ${s.unexpected}`);
      }
    }
  }
  async function takeSample() {
    try {
      const m = await memoryOf(gh.pid);
      samples.push({ t: elapsed(), ...m, requests: stats.requests, unexpected: stats.unexpected });
    } catch (err) {
      fail(`cannot read /proc/${gh.pid}: ${err.message}`);
    }
  }

  // ---- the run ----

  return (async () => {
    let exit = null;
    const outFile = opts.out ? resolve(opts.out) : join(tmpdir(), `gatehouse-soak-${new Date().toISOString().replace(/[:.]/g, '-')}.csv`);
    try {
      dir = await mkdtemp(join(tmpdir(), 'gatehouse-soak-'));
      say(`gatehouse soak: ${MINUTES} min, ${CLIENTS} keep-alive clients, binary ${BIN}`);
      idp = await startIdp({ profileKey: () => state.oidcKey });
      up = await startUpstream();
      upTrim = setInterval(() => { up.requests.length = 0; }, 1000); // the echo keeps every request
      gh = startGatehouse(dir, Number(opts.threads));
      await gh.ready;
      admin = { url: `http://${gh.listening.admin}`, token: (await readFile(join(dir, 'admin-token'), 'utf8')).trim() };
      gatewayPort = Number(gh.listening.gateway.split(':')[1]);
      say(`  IdP ${idp.issuer}   upstream ${up.url}   gateway ${gh.listening.gateway}   admin ${gh.listening.admin}   pid ${gh.pid}`);
      await configure(up.url);
      say(`  configured oidc, token and jwt profiles in ${((Date.now() - t0) / 1000).toFixed(1)} s; the load starts (t = 0)`);
      t0 = Date.now();

      const tasks = [
        sampler(),
        periodic(POOL_REFRESH_MS, POOL_REFRESH_MS, refreshOidcPool),
        periodic(10000, CONFIG_PERIOD_MS, configChange),
        periodic(5000, IDP_PERIOD_MS, (n, at) => idpRotation(at)),
      ];
      const workers = [...Array(CLIENTS)].map(() => worker());
      await sleep(DURATION_MS);
      running = false;
      stop.abort();
      await Promise.all(workers);
      await Promise.allSettled(tasks);
      await takeSample();
      note('load stopped');

      const metrics = await adminRequest(admin.url, admin.token, 'GET', '/metrics', undefined, { raw: true });
      report.metrics = metrics.text.split('\n').filter((l) => /^gatehouse_(access_log_dropped|provider_fetches|provider_failures|parked_requests|token_cache_hits|upstream_errors|config_generation|invalid_token_total)/.test(l));
      const keys = await adminRequest(admin.url, admin.token, 'GET', `/v1/profiles/${state.tokenProfile.id}/keys?limit=1000`);
      report.tokenKeysLeft = keys.json?.data?.length;
    } catch (err) {
      fail(`soak aborted: ${err.stack ?? err.message}`);
      running = false;
      stop.abort();
    } finally {
      // SIGTERM with the idle keep-alive connections still open; it must drain and exit 0
      if (gh && gh.child.exitCode === null && gh.child.signalCode === null) {
        const sent = Date.now();
        process.kill(gh.pid, 'SIGTERM');
        const timer = setTimeout(() => {
          try { process.kill(gh.pid, 'SIGKILL'); } catch { /* gone */ }
        }, DRAIN_LIMIT_MS);
        exit = await gh.exited;
        clearTimeout(timer);
        exit.ms = Date.now() - sent;
      } else if (gh) {
        exit = await gh.exited;
        exit.early = true;
      }
      agent.destroy();
      clearInterval(upTrim);
      await up?.close();
      await idp?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    }

    // ---- the report ----

    const csv = ['time_s,rss_kib,requests,unexpected',
      ...samples.map((s) => `${s.t.toFixed(1)},${s.rss},${s.requests},${s.unexpected}`)].join('\n');
    await writeFile(outFile, `${csv}\n`);

    say('\nRSS curve (every sample in the CSV; ~20 rows here)');
    say('   time_s   rss_MiB   fds  requests  unexpected');
    const step = Math.max(1, Math.ceil(samples.length / 20));
    samples.forEach((s, i) => {
      if (i % step === 0 || i === samples.length - 1) {
        say(`  ${s.t.toFixed(0).padStart(7)}  ${mib(s.rss).padStart(8)}  ${String(s.fds).padStart(4)}  ${String(s.requests).padStart(8)}  ${String(s.unexpected).padStart(10)}`);
      }
    });

    const median = (xs) => {
      const a = [...xs].sort((x, y) => x - y);
      return a.length ? (a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2) : NaN;
    };
    const D = DURATION_MS / 1000;
    const q2 = samples.filter((s) => s.t >= D / 4 && s.t < D / 2).map((s) => s.rss);
    const q4 = samples.filter((s) => s.t >= (3 * D) / 4).map((s) => s.rss);
    const m2 = median(q2);
    const m4 = median(q4);
    const growth = m4 - m2;
    const limit = Math.min(GROWTH_RATIO * m2, GROWTH_MIB * 1024);
    const post = samples.filter((s) => s.t >= D / 4);
    let slope = NaN; // KiB per minute, least squares over the samples after warm-up
    if (post.length >= 2) {
      const mt = post.reduce((a, s) => a + s.t, 0) / post.length;
      const mr = post.reduce((a, s) => a + s.rss, 0) / post.length;
      const num = post.reduce((a, s) => a + (s.t - mt) * (s.rss - mr), 0);
      const den = post.reduce((a, s) => a + (s.t - mt) ** 2, 0);
      slope = den ? (num / den) * 60 : NaN;
    }
    const flat = q2.length > 0 && q4.length > 0 && growth < limit;
    if (!(q2.length > 0 && q4.length > 0)) fail('too few samples for the growth rule');
    else if (!flat) fail(`RSS grew ${mib(growth)} MiB after warm-up (limit ${mib(limit)} MiB)`);
    if (stats.unexpected > 0) fail(`${stats.unexpected} unexpected answer(s)`);
    if (!exit || exit.code !== 0 || exit.early) {
      fail(`unclean exit: ${exit ? `code ${exit.code} signal ${exit.signal}${exit.early ? ' (before SIGTERM)' : ''}` : 'never started'}`);
    } else if (exit.ms > DRAIN_LIMIT_MS) {
      fail(`exit took ${exit.ms} ms`);
    }
    if (/Sanitizer|runtime error/.test(gh?.stderr ?? '')) fail('sanitizer report on stderr');
    if (interrupted) fail('interrupted');

    const first = samples[0];
    const last = samples[samples.length - 1];
    const duration = last ? last.t - (first?.t ?? 0) : 0;
    say('\nsummary');
    say(`  run                 ${MINUTES} min of load, ${CLIENTS} keep-alive clients, gatehouse --threads ${opts.threads}`);
    say(`  requests            ${stats.requests} (${(stats.requests / Math.max(1, duration)).toFixed(0)}/s), ${stats.sockets} connections opened`);
    say(`  latency             p50 <= ${percentile(0.5)} ms, p99 <= ${percentile(0.99)} ms, max ${stats.maxLatencyMs.toFixed(1)} ms`);
    say(`  unexpected answers  ${stats.unexpected}`);
    for (const [k, n] of stats.unexpectedWhat.map) say(`    ${String(n).padStart(7)}  ${k}`);
    for (const e of stats.examples.slice(0, 10)) say(`      e.g. ${e}`);
    say('  by kind (requests / unexpected)');
    for (const [name] of kinds) say(`    ${name.padEnd(26)} ${String(stats.byKind.get(name)).padStart(9)} / ${stats.unexpectedByKind.get(name)}`);
    say(`  admin API calls     ${stats.admin} (unexpected ${stats.unexpectedByKind.get('admin API')})`);
    say('  events');
    for (const [k, n] of events.map) say(`    ${String(n).padStart(4)}  ${k}`);
    if (idp) say(`  IdP requests        discovery ${idp.requests.discovery}, jwks ${idp.requests.jwks}, token ${idp.requests.token}`);
    if (gh) {
      const byStatus = [...gh.accessByStatus].sort().map(([s, n]) => `${s}:${n}`).join(' ');
      say(`  access-log lines    ${gh.accessLines} (${byStatus}); requests sent ${stats.requests}`);
      say('  other log lines');
      for (const [k, n] of [...gh.messages].sort((a, b) => b[1] - a[1])) say(`    ${String(n).padStart(7)}  ${k}`);
      if (gh.stderr) say(`  stderr: ${gh.stderr.slice(0, 2000)}`);
    }
    for (const l of report.metrics ?? []) say(`  metric  ${l}`);
    if (report.tokenKeysLeft !== undefined) say(`  token profile keys  ${report.tokenKeysLeft} listed at the end`);
    say(`  RSS                 start ${first ? mib(first.rss) : '?'} MiB, end ${last ? mib(last.rss) : '?'} MiB, peak (VmHWM) ${last ? mib(last.hwm) : '?'} MiB`);
    say(`  fds                 start ${first?.fds}, end ${last?.fds}; threads ${last?.threads}`);
    say(`  growth rule         median Q2 ${mib(m2)} MiB, median Q4 ${mib(m4)} MiB, growth ${mib(growth)} MiB `
      + `(limit: < ${GROWTH_RATIO * 100}% and < ${GROWTH_MIB} MiB = ${mib(limit)} MiB) -> ${flat ? 'flat' : 'NOT FLAT'}`);
    say(`  slope after warm-up ${Number.isFinite(slope) ? slope.toFixed(1) : '?'} KiB/min (least squares, reported only)`);
    say(`  exit                ${exit ? `code ${exit.code}, signal ${exit.signal}, ${exit.ms ?? '?'} ms after SIGTERM` : 'none'}`);
    say(`  csv                 ${outFile}`);
    if (!report.ok && gh) {
      say('  last log lines of gatehouse:');
      for (const l of gh.recent.slice(-15)) say(`    ${l}`);
    }
    say(report.ok ? '\nsoak passed' : `\nsoak FAILED: ${report.reasons.join('; ')}`);
    return report.ok ? 0 : 1;
  })();
}

main().then((code) => {
  process.exitCode = code;
}, (err) => {
  console.error(`soak failed: ${err.stack ?? err}`);
  process.exitCode = 1;
});
