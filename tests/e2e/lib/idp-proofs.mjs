// SPDX-License-Identifier: Apache-2.0
// Helpers of idp-proofs.test.mjs: gatehouse with its data plane configured through the admin API,
// a load generator that classifies every answer, and an upstream that refuses, hangs and breaks off
// answers on one address.
//
//   const gh = await startGateway({ args: ['--max-stale', '1s'] });   // gh.gw: http://127.0.0.1:<port>
//   const { profile } = await setupOidc(gh, idp, { collections: [{ name: 'orders', path: '/orders/v1', upstream }] });
//   await restartGateway(gh);              // SIGTERM, a clean exit, a new process on the same --db
//   const load = startLoad({ base: gh.gw, clients: 8, next: (i) => ({ path, headers, label }) });
//   const stats = await load.stop();
//   const up = await startFaultyUpstream(); await up.refuse(); await up.listen('hang'); up.setMode('cut');

import assert from 'node:assert/strict';
import http from 'node:http';
import { performance } from 'node:perf_hooks';

import { startServer } from './server.mjs';

// ---- gatehouse ----------------------------------------------------------------------------------

const GATEWAY_LISTENING = /^(\{.*"msg":"gateway listening".*\})\r?\n/m;

async function readGatewayAddress(gh) {
  const [, line] = await gh.proc.waitFor(GATEWAY_LISTENING, { stream: 'stdout' });
  gh.gatewayAddress = JSON.parse(line).address;
  assert.match(gh.gatewayAddress, /^127\.0\.0\.1:\d+$/);
  gh.gw = `http://${gh.gatewayAddress}`;
}

/** startServer with the gateway's address known (gh.gw); 2 worker threads. */
export async function startGateway(options = {}) {
  const gh = await startServer({ ...options, args: ['--threads', '2', ...(options.args ?? [])] });
  try {
    await readGatewayAddress(gh);
  } catch (err) {
    await gh.stop();
    throw err;
  }
  return gh;
}

function assertCleanExit(result, what) {
  assert.equal(result.code, 0, `${what}: gatehouse exited with ${result.code} ${result.signal ?? ''}\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /Sanitizer|runtime error/, result.stderr);
}

/**
 * SIGTERM, a clean exit (asserted), then `gatehouse serve` again with the same flags on the same
 * data directory and store. The gateway listens on a new ephemeral port: gh.gw is updated.
 */
export async function restartGateway(gh) {
  const result = await gh.kill('SIGTERM');
  assertCleanExit(result, 'restart');
  await gh.start();
  await readGatewayAddress(gh);
  return result;
}

/** SIGTERM (by pid), a clean exit asserted, the directory removed. */
export async function stopClean(gh) {
  if (!gh) return;
  const result = await gh.stop();
  if (result) assertCleanExit(result, 'stop');
}

/** POST that must answer 201; its JSON. */
export async function create(gh, path, body) {
  const r = await gh.api('POST', path, body);
  assert.equal(r.status, 201, `POST ${path}: ${r.status} ${r.text}`);
  return r.json;
}

/**
 * Collections (each with one endpoint ANY /*) and one client with an oidc access profile on the
 * IdP's discovery URL and resource, granting the collections named in `grant` (default: all).
 * collections: [{ name, path, upstream, timeout_ms? }]. Resolves to { collections: {name: obj},
 * client, profile } where profile.key is what the IdP must put in its claim.
 */
export async function setupOidc(gh, idp, { client = 'acme', collections = [], grant } = {}) {
  const made = {};
  for (const c of collections) {
    made[c.name] = await create(gh, '/v1/collections', c);
    await create(gh, `/v1/collections/${made[c.name].id}/endpoints`, { method: 'ANY', path: '/*' });
  }
  const cli = await create(gh, '/v1/clients', { name: client });
  const prof = await create(gh, '/v1/profiles', {
    client_id: cli.id,
    name: `${client}-oidc`,
    auth_type: 'oidc',
    oidc_discovery_url: idp.discoveryUrl,
    audiences: [idp.resource],
    collection_ids: (grant ?? Object.keys(made)).map((n) => made[n].id),
  });
  return { collections: made, client: cli, profile: prof };
}

/** The one provider of a gatehouse (GET /v1/providers). */
export async function onlyProvider(gh) {
  const r = await gh.api('GET', '/v1/providers');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data.length, 1, `one provider: ${r.text}`);
  return r.json.data[0];
}

/** A provider's status (GET /v1/providers/{id}). */
export async function providerStatus(gh, id) {
  const r = await gh.api('GET', `/v1/providers/${id}`);
  assert.equal(r.status, 200, r.text);
  return r.json;
}

/** /metrics as { 'name{labels}': value }. */
export async function metrics(gh) {
  const res = await fetch(`${gh.url}/metrics`, { headers: { authorization: `Bearer ${gh.token}` } });
  assert.equal(res.status, 200);
  const out = {};
  for (const line of (await res.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}

// ---- a load generator ----------------------------------------------------------------------------
//
// `clients` keep-alive HTTP/1.1 connections, each sending its next request as soon as the previous
// one is answered (or at a paced rate), until stopped or a request budget is spent. Every answer is
// classified, none is dropped, and a request that gets no answer in time counts as a failure (a
// hang), never as a pass. next(i) gives request i (or a promise of it): { path, headers, label }
// (the label groups the statistics, e.g. by the key that signed its token).

const REASON = /error_description="([^"]*)"/;

function once(agent, url, headers, timeoutMs) {
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    const finish = (result) => {
      if (settled) return;
      settled = true;
      resolve({ ...result, ms: performance.now() - started });
    };
    const req = http.request(url, { agent, headers, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => finish({
        status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'),
      }));
      res.on('error', (err) => finish({ error: `answer broken off (${res.statusCode}): ${err.message}` }));
      res.on('close', () => {
        if (!res.complete) finish({ error: `answer broken off (${res.statusCode})` });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => finish({ error: err.message }));
    req.end();
  });
}

function emptyCounts() {
  return { requests: 0, ok: 0, failures: 0 };
}

/**
 * Starts the load. options:
 *   base        the gateway's URL (http://127.0.0.1:port)
 *   next(i)     { path, headers, label } of request i, or a promise of it
 *   clients     concurrent keep-alive connections (8)
 *   rate        requests per second over all clients (default: as fast as answered)
 *   maxRequests stop after that many (default: until stop())
 *   timeoutMs   an answer slower than this is a failure (10000)
 *   keepSamples how many unexpected answers to keep for messages (10)
 * Returns { stats, stop(): Promise<stats>, done: Promise<stats> }.
 */
export function startLoad(options) {
  const {
    base, next, clients = 8, rate, maxRequests = Infinity, timeoutMs = 10000, keepSamples = 10,
  } = options;
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients, scheduling: 'fifo' });
  const sockets = new Set();
  const origCreate = agent.createConnection.bind(agent);
  agent.createConnection = (...args) => {
    const s = origCreate(...args);
    sockets.add(s);
    return s;
  };
  const stats = {
    requests: 0,
    ok: 0, // 2xx
    failures: 0, // no complete answer: refused, reset, broken off or timed out
    statuses: {},
    reasons: {}, // error_description of WWW-Authenticate, for 401s
    byLabel: {},
    samples: [], // the first unexpected answers: { label, status, reason, body } or { label, error }
    maxLatencyMs: 0,
    latencies: [],
    durationMs: 0,
    connections: 0,
  };
  let issued = 0;
  let stopping = false;
  const started = performance.now();

  async function worker() {
    while (!stopping && issued < maxRequests) {
      const i = issued++;
      if (rate) {
        const slot = started + (i * 1000) / rate;
        const wait = slot - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (stopping) break;
      }
      const { path, headers, label = 'all' } = await next(i);
      const r = await once(agent, `${base}${path}`, headers, timeoutMs);
      const byLabel = stats.byLabel[label] ?? (stats.byLabel[label] = emptyCounts());
      stats.requests += 1;
      byLabel.requests += 1;
      stats.latencies.push(r.ms);
      if (r.ms > stats.maxLatencyMs) stats.maxLatencyMs = r.ms;
      if (r.error) {
        stats.failures += 1;
        byLabel.failures += 1;
        if (stats.samples.length < keepSamples) stats.samples.push({ label, error: r.error });
        continue;
      }
      stats.statuses[r.status] = (stats.statuses[r.status] ?? 0) + 1;
      const reason = (r.headers['www-authenticate'] ?? '').match(REASON)?.[1];
      if (reason) stats.reasons[reason] = (stats.reasons[reason] ?? 0) + 1;
      if (r.status >= 200 && r.status < 300) {
        stats.ok += 1;
        byLabel.ok += 1;
      } else if (stats.samples.length < keepSamples) {
        stats.samples.push({ label, status: r.status, reason, body: r.body.slice(0, 300) });
      }
    }
  }

  const done = Promise.all(Array.from({ length: clients }, worker)).then(() => {
    stats.durationMs = performance.now() - started;
    stats.connections = sockets.size;
    agent.destroy();
    return stats;
  });
  return {
    stats,
    done,
    stop() {
      stopping = true;
      return done;
    },
  };
}

/** The p-th percentile (0..100) of the latencies of `stats`, in ms. */
export function percentile(stats, p) {
  if (stats.latencies.length === 0) return 0;
  const sorted = [...stats.latencies].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** One line for a test's diagnostic output. */
export function describeStats(name, stats) {
  const rps = stats.durationMs > 0 ? Math.round((stats.requests * 1000) / stats.durationMs) : 0;
  return `${name}: ${stats.requests} requests in ${(stats.durationMs / 1000).toFixed(1)} s (${rps}/s) `
    + `over ${stats.connections} connections; statuses ${JSON.stringify(stats.statuses)}; `
    + `failures ${stats.failures}; p99 ${percentile(stats, 99).toFixed(1)} ms, max ${stats.maxLatencyMs.toFixed(1)} ms`;
}

// ---- an upstream that fails ---------------------------------------------------------------------

// One address for its whole life, so that a gateway configured once sees it refuse connections
// (refuse(): nothing listens on the port), hang and break off answers in turn (listen(mode) listens
// on the same port again).
// Modes: 'echo' (200 with what was received as JSON), 'hang' (reads the request, never answers),
// 'cut' (a head promising 1000 bytes, 16 of them, then the connection is destroyed).


export async function startFaultyUpstream() {
  let mode = 'echo';
  let port = 0;
  let listening = false;
  const sockets = new Set();
  const seen = { echo: 0, hang: 0, cut: 0 };

  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      seen[mode] += 1;
      if (mode === 'hang') return; // the socket is destroyed by refuse() or close()
      if (mode === 'cut') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"partial":"abcd');
        setTimeout(() => req.socket.destroy(), 30);
        return;
      }
      const body = JSON.stringify({ method: req.method, path: req.url, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 5000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function listen(newMode) {
    if (newMode) mode = newMode;
    if (listening) return;
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    port = server.address().port;
    listening = true;
  }

  async function refuse() {
    if (!listening) return;
    const closed = new Promise((resolve) => server.close(() => resolve()));
    for (const s of sockets) s.destroy();
    await closed;
    listening = false;
  }

  await listen();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    /** Requests answered (or not) per mode. */
    seen,
    setMode(m) {
      if (!['echo', 'hang', 'cut'].includes(m)) throw new Error(`unknown mode ${m}`);
      mode = m;
    },
    listen,
    refuse,
    close: refuse,
  };
}
