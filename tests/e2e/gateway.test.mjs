// SPDX-License-Identifier: Apache-2.0
// The gateway (SPEC §2, §3, §5) end to end: the real `gatehouse serve` with its data plane on an
// ephemeral port, a real OpenID Provider (lib/idp.mjs), and upstreams that echo what they received
// (lib/upstream.mjs), so every test sees both what the client got and what the upstream got.
// Configuration goes through the admin API, as an operator's would.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import https from 'node:https';
import { join } from 'node:path';

import { start as startIdp, tamperSignature } from './lib/idp.mjs';
import { gatehouseBin, haveGatehouse, run } from './lib/run.mjs';
import {
  makeTempDir, sleep, startServer, unusedPort, waitUntil,
} from './lib/server.mjs';
import { startUpstream } from './lib/upstream.mjs';

// No skipping: `make test` builds the binary first, and a run without it must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const GATEWAY_LISTENING = /^(\{.*"msg":"gateway listening".*\})\r?\n/m;
const GENERATED_ID = /^[0-9a-f]{32}$/;

/** `gatehouse serve` with its gateway address known: gh.gw is http://127.0.0.1:<port>. */
async function startGateway(options = {}) {
  const gh = await startServer({ ...options, args: ['--threads', '2', ...(options.args ?? [])] });
  const [, line] = await gh.proc.waitFor(GATEWAY_LISTENING, { stream: 'stdout' });
  gh.gatewayAddress = JSON.parse(line).address;
  assert.match(gh.gatewayAddress, /^127\.0\.0\.1:\d+$/);
  gh.gw = `http://${gh.gatewayAddress}`;
  return gh;
}

/** SIGTERM; the process must drain and exit 0 without a sanitizer report (CI runs it under ASan). */
async function stopClean(gh) {
  const result = await gh?.stop();
  if (!result) return;
  assert.equal(result.code, 0, `gatehouse exited with ${result.code} ${result.signal ?? ''}\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /Sanitizer|runtime error/, result.stderr);
}

async function create(gh, path, body) {
  const r = await gh.api('POST', path, body);
  assert.equal(r.status, 201, `POST ${path}: ${r.text}`);
  return r.json;
}

async function patch(gh, path, body) {
  const r = await gh.api('PATCH', path, body);
  assert.equal(r.status, 200, `PATCH ${path}: ${r.text}`);
  return r.json;
}

/** One gateway request; resolves to { status, headers, text, json }. */
async function call(gh, method, path, { headers = {}, body, duplex } = {}) {
  const res = await fetch(`${gh.gw}${path}`, { method, headers, body, ...(duplex ? { duplex } : {}) });
  const text = await res.text();
  let json;
  if ((res.headers.get('content-type') ?? '').includes('json') && text.length > 0) json = JSON.parse(text);
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * One request with node:http, for what fetch refuses to send (Connection, repeated headers).
 * headers: an object or an array of [name, value] pairs. Resolves like call().
 */
function raw(gh, method, path, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gh.gw}${path}`, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        const json = (res.headers['content-type'] ?? '').includes('json') ? JSON.parse(text) : undefined;
        resolve({ status: res.statusCode, headers: new Headers(res.headers), text, json });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Asserts a SPEC §5 error answer and returns its body. */
function expectError(r, status, code) {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text}`);
  assert.equal(r.headers.get('content-type'), 'application/json');
  assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.text));
  assert.deepEqual(Object.keys(r.json).sort(), ['error', 'message', 'request_id']);
  assert.equal(r.json.error, code);
  assert.ok(r.json.message.length > 0);
  assert.equal(r.json.request_id, r.headers.get('x-request-id'));
  return r.json;
}

/** What the upstream echoed (a 200 through the gateway). */
function echoed(r) {
  assert.equal(r.status, 200, `expected 200, got ${r.status}: ${r.text}`);
  return r.json;
}

function accessLines(gh) {
  return gh.output().stdout.split('\n').filter((l) => l.includes('"msg":"access"')).map((l) => JSON.parse(l));
}

/** The access-log line of a request id (the log is written by its own thread, so poll). */
function accessLine(gh, requestId) {
  return waitUntil(() => accessLines(gh).find((l) => l.request_id === requestId), {
    what: `the access-log line of ${requestId}`,
  });
}

function b64urlDecode(s) {
  return Buffer.from(s, 'base64url').toString('utf8');
}

// ---------------------------------------------------------------------------------------------

describe('gateway: requests through to the upstream and every refusal', () => {
  let gh;
  let idp;
  let up;
  let up2;
  let oidcKey = null; // the oidc profile's key, which the IdP puts into its tokens
  const ids = {};
  const keys = {};

  before(async () => {
    idp = await startIdp({ profileKey: () => oidcKey });
    up = await startUpstream();
    up2 = await startUpstream();
    gh = await startGateway({ args: ['--max-body', '1KiB'] });
    const downPort = await unusedPort();

    const orders = await create(gh, '/v1/collections', { name: 'orders', path: '/orders/v1', upstream: `${up.url}/base` });
    const billing = await create(gh, '/v1/collections', {
      name: 'billing', path: '/billing/v1', upstream: up.url, forward_authorization: false,
    });
    const down = await create(gh, '/v1/collections', { name: 'down', path: '/down/v1', upstream: `http://127.0.0.1:${downPort}` });
    ids.orders = orders.id;
    ids.billing = billing.id;
    for (const [method, path, extra] of [['GET', '/items/:id'], ['POST', '/items'], ['ANY', '/any/*'],
      ['GET', '/slow', { timeout_ms: 500 }]]) {
      const ep = await create(gh, `/v1/collections/${orders.id}/endpoints`, { method, path, ...extra });
      ids[`${method} ${path}`] = ep.id;
    }
    await create(gh, `/v1/collections/${billing.id}/endpoints`, { method: 'GET', path: '/invoices' });
    await create(gh, `/v1/collections/${down.id}/endpoints`, { method: 'GET', path: '/x' });

    const acme = await create(gh, '/v1/clients', { name: 'acme' });
    ids.acme = acme.id;
    const token = await create(gh, '/v1/profiles', {
      client_id: acme.id, name: 'acme-token', auth_type: 'token', collection_ids: [orders.id, billing.id, down.id],
    });
    ids.token = token.id;
    keys.token = token.key;
    const narrow = await create(gh, '/v1/profiles', {
      client_id: acme.id, name: 'acme-orders-only', auth_type: 'token', collection_ids: [orders.id],
    });
    keys.narrow = narrow.key;
    const oidc = await create(gh, '/v1/profiles', {
      client_id: acme.id,
      name: 'acme-oidc',
      auth_type: 'oidc',
      oidc_discovery_url: idp.discoveryUrl,
      audiences: [idp.resource],
      collection_ids: [orders.id, billing.id],
    });
    ids.oidc = oidc.id;
    oidcKey = oidc.key;
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
      await up2?.close();
      await idp?.stop();
    }
  });

  test('an api-token reaches the upstream with the identity headers; path and query as mapped', async () => {
    const r = await call(gh, 'GET', '/orders/v1/items/42?a=1&b=%20x&a=2', { headers: { 'api-token': keys.token } });
    const seen = echoed(r);
    assert.equal(seen.method, 'GET');
    assert.equal(seen.path, '/base/items/42');
    assert.equal(seen.query, 'a=1&b=%20x&a=2');
    assert.equal(seen.headers['x-gatehouse-client-id'], ids.acme);
    assert.equal(seen.headers['x-gatehouse-profile-id'], ids.token);
    assert.equal(seen.headers['x-gatehouse-claims'], undefined, 'claims only for JWT auth');
    assert.equal(seen.headers['api-token'], undefined, 'api-token is never forwarded');
    assert.match(r.headers.get('x-request-id'), GENERATED_ID);
    assert.equal(seen.headers['x-request-id'], r.headers.get('x-request-id'));
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-forwarded-host'], gh.gatewayAddress);
    assert.equal(seen.headers.host, `127.0.0.1:${up.port}`);
  });

  test('client bytes that are not UTF-8 (User-Agent) are escaped: the access log stays strict UTF-8 JSON; a target with them is refused', async () => {
    // fetch and node:http would encode these; a raw socket sends them as they are
    const bad = [
      [0xff], [0xc0, 0xaf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80],
    ];
    const marker = `utf8-${Date.now()}`;
    const junk = Buffer.from(bad.flat());
    const raw = (request) => new Promise((resolve, reject) => {
      let text = '';
      const sock = net.connect(Number(gh.gatewayAddress.split(':')[1]), '127.0.0.1', () => sock.end(request));
      sock.on('data', (d) => { text += d.toString('latin1'); });
      sock.on('error', reject);
      sock.on('close', () => resolve(text));
    });
    // a request target is ASCII (RFC 9112 3.2): raw bytes over 0x7f in it are refused, 400
    const refused = await raw(Buffer.concat([Buffer.from(`GET /${marker}/`), junk,
      Buffer.from('/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]));
    assert.match(refused, /^HTTP\/1\.1 400 /);
    await raw(Buffer.concat([
      Buffer.from(`GET /${marker}/%C3%A9 HTTP/1.1\r\nHost: x\r\nUser-Agent: ua-`), junk,
      Buffer.from('-\u00e9\r\nConnection: close\r\n\r\n'),
    ]));
    const escaped = bad.flat().map((b) => `\\u00${b.toString(16)}`).join('');
    await waitUntil(() => gh.proc.stdoutBytes().includes(marker), { what: 'the access-log line' });
    const bytes = gh.proc.stdoutBytes();
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); // throws on invalid UTF-8
    const line = text.split('\n').find((l) => l.includes(marker));
    assert.ok(line.includes(`"user_agent":"ua-${escaped}-\u00e9"`), line); // valid UTF-8 stays as is
    const parsed = JSON.parse(line);
    assert.equal(parsed.msg, 'access');
    assert.equal(parsed.path, `/${marker}/%C3%A9`);
  });

  test('Basic auth with user api-token is a credential too', async () => {
    const basic = Buffer.from(`api-token:${keys.token}`).toString('base64');
    const seen = echoed(await call(gh, 'GET', '/orders/v1/items/1', { headers: { authorization: `Basic ${basic}` } }));
    assert.equal(seen.headers['x-gatehouse-profile-id'], ids.token);
  });

  test('upstream connections are kept alive and reused', async () => {
    const before = up.accepted();
    for (let i = 0; i < 12; i++) echoed(await call(gh, 'GET', `/orders/v1/items/${i}`, { headers: { 'api-token': keys.token } }));
    assert.ok(up.accepted() - before <= 2, `${up.accepted() - before} new connections for 12 requests on 2 threads`);
  });

  test('a Location into the upstream base is turned back into the public path', async () => {
    up.setMode('status', { status: 302, headers: { location: `${up.url}/base/items/9?from=up` } });
    try {
      const res = await fetch(`${gh.gw}/orders/v1/items/8`, { headers: { 'api-token': keys.token }, redirect: 'manual' });
      assert.equal(res.status, 302);
      assert.equal(res.headers.get('location'), `${gh.gw}/orders/v1/items/9?from=up`);
    } finally {
      up.setMode('echo');
    }
  });

  test('spoofed X-Gatehouse-* and hop-by-hop headers never reach the upstream', async () => {
    const seen = echoed(await raw(gh, 'GET', '/orders/v1/any/thing', {
        'api-token': keys.token,
        'X-Gatehouse-Client-Id': 'cli_spoofed000000',
        'x-gatehouse-profile-id': 'ap_spoofed000000',
        'X-GATEHOUSE-CLAIMS': 'eyJzdWIiOiJhZG1pbiJ9',
        'x-gatehouse-anything': 'x',
        'X-Forwarded-For': '203.0.113.9',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        connection: 'x-hop',
        'x-hop': 'secret',
        'x-kept': 'yes',
    }));
    const gatehouseHeaders = Object.keys(seen.headers).filter((h) => h.startsWith('x-gatehouse-')).sort();
    assert.deepEqual(gatehouseHeaders, ['x-gatehouse-client-id', 'x-gatehouse-profile-id']);
    assert.equal(seen.headers['x-gatehouse-client-id'], ids.acme);
    assert.equal(seen.headers['x-gatehouse-profile-id'], ids.token);
    // a header name repeated in another case would show as a second raw header
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());
    assert.equal(names.filter((h) => h === 'x-gatehouse-client-id').length, 1);
    // the caller is no trusted proxy (--trusted-proxies): its own X-Forwarded-For is replaced
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'the caller\'s X-Forwarded-For is replaced');
    assert.equal(seen.headers['x-forwarded-host'], gh.gatewayAddress);
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(seen.headers['x-hop'], undefined, 'named by Connection: hop-by-hop');
    assert.equal(seen.headers['x-kept'], 'yes');
  });

  test('X-Request-Id: a sane one is kept, any other is replaced', async () => {
    const sane = 'req-2024.01_ABC';
    let r = await call(gh, 'GET', '/orders/v1/items/1', { headers: { 'api-token': keys.token, 'x-request-id': sane } });
    assert.equal(r.headers.get('x-request-id'), sane);
    assert.equal(echoed(r).headers['x-request-id'], sane);
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', 'a%2Fb', '']) {
      r = await call(gh, 'GET', '/orders/v1/items/1', { headers: { 'api-token': keys.token, 'x-request-id': bad } });
      assert.match(r.headers.get('x-request-id'), GENERATED_ID, `replaced: ${bad}`);
      assert.equal(echoed(r).headers['x-request-id'], r.headers.get('x-request-id'));
    }
    // errors carry it too
    r = await call(gh, 'GET', '/nowhere', { headers: { 'x-request-id': sane } });
    assert.equal(expectError(r, 404, 'not_found').request_id, sane);
  });

  test('a real IdP token passes; X-Gatehouse-Claims is its verified payload', async () => {
    const token = await idp.getToken();
    const seen = echoed(await call(gh, 'POST', '/orders/v1/items', {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"sku":"A-1","qty":2}',
    }));
    assert.equal(seen.body, '{"sku":"A-1","qty":2}');
    assert.equal(seen.path, '/base/items');
    assert.equal(seen.headers['x-gatehouse-profile-id'], ids.oidc);
    assert.equal(seen.headers['x-gatehouse-client-id'], ids.acme);
    assert.equal(seen.headers['x-gatehouse-claims'], token.split('.')[1], 'the payload bytes, base64url');
    const claims = JSON.parse(b64urlDecode(seen.headers['x-gatehouse-claims']));
    assert.equal(claims['https://gatehouse.dev/key'], oidcKey);
    assert.equal(claims.iss, idp.issuer);
    assert.equal(seen.headers.authorization, `Bearer ${token}`, 'forwarded by default');
  });

  test('forward_authorization false keeps Authorization from the upstream', async () => {
    const token = await idp.getToken();
    const seen = echoed(await call(gh, 'GET', '/billing/v1/invoices', { headers: { authorization: `Bearer ${token}` } }));
    assert.equal(seen.path, '/invoices');
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers['x-gatehouse-profile-id'], ids.oidc);
  });

  test('token_types ["at+jwt"]: the IdP\'s access token passes, an ID-token-shaped JWT of the same key and issuer does not', async () => {
    const access = await idp.getToken();
    assert.equal(JSON.parse(b64urlDecode(access.split('.')[0])).typ, 'at+jwt', 'oidc-provider types its access tokens');
    // what an IdP that signs ID tokens with its access-token key hands a browser: typ JWT, same iss and key
    const idToken = await idp.sign({ sub: 'alice', nonce: 'n-1' }, { header: { typ: 'JWT' } });
    const get = (token) => call(gh, 'GET', '/orders/v1/items/5', { headers: { authorization: `Bearer ${token}` } });
    echoed(await get(idToken)); // the default (token_types []) takes any type: IdPs that write JWT keep working
    try {
      const updated = await patch(gh, `/v1/profiles/${ids.oidc}`, { token_types: ['at+jwt'] });
      assert.deepEqual(updated.token_types, ['at+jwt']);
      echoed(await get(access));
      echoed(await get(await idp.sign({}, { header: { typ: 'application/AT+JWT' } })));
      for (const [token, what] of [[idToken, 'typ JWT (it passed a moment ago: no cached pass)'],
        [await idp.sign({ sub: 'bob' }, { header: { typ: 'JWT' } }), 'typ JWT'],
        [await idp.sign({}, { header: { typ: undefined } }), 'no typ']]) {
        const r = await get(token);
        const body = expectError(r, 401, 'invalid_token');
        assert.equal(r.headers.get('www-authenticate'),
          'Bearer realm="gatehouse", error="invalid_token", error_description="unsupported_header"', what);
        assert.match(body.message, what === 'no typ' ? /no type \(typ\).*at\+jwt/ : /token type 'JWT' is not accepted by this profile \(accepted: at\+jwt\)/, what);
      }
      const explained = await gh.api('POST', '/v1/explain', {
        method: 'GET', path: '/orders/v1/items/5', headers: { authorization: `Bearer ${idToken}` },
      });
      assert.equal(explained.status, 200, explained.text);
      assert.match(JSON.stringify(explained.json), /unsupported_header: token type 'JWT' is not accepted/);
      const exported = await gh.api('GET', '/v1/config');
      assert.deepEqual(exported.json.profiles.find((p) => p.id === ids.oidc).token_types, ['at+jwt']);
      const refused = await gh.api('PATCH', `/v1/profiles/${ids.oidc}`, { token_types: ['at jwt'] });
      assert.equal(refused.status, 422, refused.text);
      assert.equal(refused.json.field, 'token_types');
    } finally {
      await patch(gh, `/v1/profiles/${ids.oidc}`, { token_types: [] });
    }
    echoed(await get(idToken));
  });

  test('404 for unknown paths, 405 for a known path with another method', async () => {
    expectError(await call(gh, 'GET', '/nowhere/v1/items/1', { headers: { 'api-token': keys.token } }), 404, 'not_found');
    expectError(await call(gh, 'GET', '/orders/v1/unknown', { headers: { 'api-token': keys.token } }), 404, 'not_found');
    expectError(await call(gh, 'GET', '/orders/v1/%2e%2e/admin', { headers: { 'api-token': keys.token } }), 404, 'not_found');
    const deleted = await call(gh, 'DELETE', '/orders/v1/items/1', { headers: { 'api-token': keys.token } });
    expectError(deleted, 405, 'method_not_allowed');
    // RFC 9110 §15.5.6: a 405 says what the path takes; HEAD is not routed to GET endpoints
    assert.equal(deleted.headers.get('allow'), 'GET');
    const before = up.requests.length;
    const put = await call(gh, 'PUT', '/orders/v1/items');
    expectError(put, 405, 'method_not_allowed');
    assert.equal(put.headers.get('allow'), 'POST');
    expectError(await call(gh, 'PUT', '/orders/v1/slow'), 405, 'method_not_allowed');
    assert.equal(up.requests.length, before, 'nothing refused reaches the upstream');
    assert.equal((await call(gh, 'GET', '/orders/v1/unknown')).headers.get('allow'), null, 'a 404 has no Allow');
  });

  test('401 without a credential, with WWW-Authenticate', async () => {
    const r = await call(gh, 'GET', '/orders/v1/items/1');
    expectError(r, 401, 'unauthorized');
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="gatehouse"');
  });

  test('401 invalid_token names the reason: bad signature, expired, unknown key', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases = [
      [tamperSignature(await idp.getToken()), 'bad_signature'],
      [await idp.sign({ iat: now - 7200, exp: now - 3600 }), 'expired'],
      [await idp.sign({ aud: 'https://someone-else.test' }), 'wrong_audience'],
      [await idp.sign({ 'https://gatehouse.dev/key': 'gk_not_a_real_key' }), 'unknown_profile_key'],
      ['not.a.jwt', 'malformed'],
    ];
    for (const [token, reason] of cases) {
      const r = await call(gh, 'GET', '/orders/v1/items/1', { headers: { authorization: `Bearer ${token}` } });
      const body = expectError(r, 401, 'invalid_token');
      assert.equal(r.headers.get('www-authenticate'),
        `Bearer realm="gatehouse", error="invalid_token", error_description="${reason}"`);
      assert.ok(!body.message.includes(token), 'the message never echoes the token');
    }
    const r = await call(gh, 'GET', '/orders/v1/items/1', { headers: { 'api-token': 'gk_unknownunknownunknownunknownunknownunknown' } });
    expectError(r, 401, 'invalid_token');
    assert.match(r.headers.get('www-authenticate'), /error_description="unknown_profile_key"/);
  });

  test('403 when the profile does not grant the collection', async () => {
    const r = await call(gh, 'GET', '/billing/v1/invoices', { headers: { 'api-token': keys.narrow } });
    expectError(r, 403, 'forbidden');
    echoed(await call(gh, 'GET', '/orders/v1/items/1', { headers: { 'api-token': keys.narrow } }));
  });

  test('400 for a repeated credential header', async () => {
    const r = await raw(gh, 'GET', '/orders/v1/items/1', [['api-token', keys.token], ['api-token', keys.narrow]]);
    expectError(r, 400, 'bad_request');
    const token = await idp.getToken();
    const twice = await raw(gh, 'GET', '/orders/v1/items/1', [['authorization', `Bearer ${token}`], ['authorization', 'Bearer x']]);
    expectError(twice, 400, 'bad_request');
  });

  test('502 when the upstream is down, resets the connection or answers garbage', async () => {
    let r = await call(gh, 'GET', '/down/v1/x', { headers: { 'api-token': keys.token } });
    expectError(r, 502, 'bad_gateway');
    let line = await accessLine(gh, r.json.request_id);
    assert.equal(line.status, 502);
    assert.equal(line.upstream_status, null);
    assert.equal(line.error, 'bad_gateway');
    up.setMode('reset');
    try {
      r = await call(gh, 'GET', '/orders/v1/items/1', { headers: { 'api-token': keys.token } });
      expectError(r, 502, 'bad_gateway');
    } finally {
      up.setMode('echo');
    }
    // an upstream's own 502 is its answer, passed through as is
    up.setMode('status', { status: 502 });
    try {
      r = await call(gh, 'GET', '/orders/v1/items/1', { headers: { 'api-token': keys.token } });
      assert.equal(r.status, 502);
      assert.equal(r.json.path, '/base/items/1', 'the upstream body, not ours');
      line = await accessLine(gh, r.headers.get('x-request-id'));
      assert.equal(line.upstream_status, 502);
    } finally {
      up.setMode('echo');
    }
    echoed(await call(gh, 'GET', '/orders/v1/items/1', { headers: { 'api-token': keys.token } }));
  });

  test('504 when the upstream is slower than the endpoint timeout_ms (500)', async () => {
    up.setMode('hang');
    try {
      const started = Date.now();
      const r = await call(gh, 'GET', '/orders/v1/slow', { headers: { 'api-token': keys.token } });
      const took = Date.now() - started;
      expectError(r, 504, 'upstream_timeout');
      assert.ok(took >= 450 && took < 3000, `answered after ${took} ms`);
      const line = await accessLine(gh, r.json.request_id);
      assert.equal(line.status, 504);
      assert.equal(line.upstream_error, 'I/O timeout');
    } finally {
      up.setMode('echo');
    }
    up.setMode('delay', { ms: 200 });
    try {
      echoed(await call(gh, 'GET', '/orders/v1/slow', { headers: { 'api-token': keys.token } }));
    } finally {
      up.setMode('echo');
    }
  });

  test('an upstream that breaks off its answer: the client sees it cut, the log says so', async () => {
    up.setMode('truncate');
    let requestId;
    try {
      const res = await fetch(`${gh.gw}/orders/v1/items/7`, { headers: { 'api-token': keys.token } });
      assert.equal(res.status, 200, 'the status was sent before the upstream broke');
      requestId = res.headers.get('x-request-id');
      await assert.rejects(res.text());
    } finally {
      up.setMode('echo');
    }
    const line = await accessLine(gh, requestId);
    assert.equal(line.upstream_status, 200);
    assert.match(line.upstream_error, /I\/O error/);
  });

  test('413 over --max-body (announced or chunked); smaller bodies are forwarded', async () => {
    const small = 'x'.repeat(1000);
    assert.equal(echoed(await call(gh, 'POST', '/orders/v1/items', { headers: { 'api-token': keys.token }, body: small })).body, small);
    // announced: h2o refuses before the body is sent (Expect: 100-continue keeps the client honest)
    const announced = await new Promise((resolve, reject) => {
      const req = http.request(`${gh.gw}/orders/v1/items`, {
        method: 'POST',
        headers: { 'api-token': keys.token, 'content-length': 2000, expect: '100-continue' },
      }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode, headers: new Headers(res.headers), text, json: JSON.parse(text) }));
      });
      req.on('continue', () => req.end('y'.repeat(2000)));
      req.on('error', reject);
      req.flushHeaders();
    });
    expectError(announced, 413, 'payload_too_large');
    assert.match(announced.json.message, /1024 bytes/);
    // chunked: counted as it arrives
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('z'.repeat(1500)));
        controller.close();
      },
    });
    const chunked = await call(gh, 'POST', '/orders/v1/items', { headers: { 'api-token': keys.token }, body: stream, duplex: 'half' });
    expectError(chunked, 413, 'payload_too_large');
    const line = await accessLine(gh, chunked.json.request_id);
    assert.equal(line.status, 413);
  });

  test('a new signing key at the IdP: the first request using it waits for the refetch and passes', async () => {
    const { kid } = await idp.rotate();
    const token = await idp.getToken();
    assert.equal(JSON.parse(b64urlDecode(token.split('.')[0])).kid, kid);
    const before = idp.requests.jwks;
    // several at once: all parked on one refetch, all resumed
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => call(gh, 'GET', '/orders/v1/items/9', {
      headers: { authorization: `Bearer ${token}` },
    })));
    for (const r of results) assert.equal(echoed(r).headers['x-gatehouse-profile-id'], ids.oidc);
    assert.ok(idp.requests.jwks > before, 'the key set was fetched again');
    assert.ok(idp.requests.jwks - before <= 2, `one refetch for all of them, not ${idp.requests.jwks - before}`);
    const line = await accessLine(gh, results[0].headers.get('x-request-id'));
    assert.equal(line.auth, 'ok');
  });

  test('a kid still unknown after a refetch: 401 unknown_kid, then at once and without a fetch (remembered 30 s)', async () => {
    // a token of the IdP's own key under a kid it never published
    const token = await idp.sign({}, { header: { kid: 'never-published' } });
    const headers = { authorization: `Bearer ${token}` };
    // a never-seen kid refetches, unless the previous refetch was less than 5 s ago: ask until
    // one refetch has happened for it
    const before = idp.requests.jwks;
    await waitUntil(async () => {
      const r = await call(gh, 'GET', '/orders/v1/items/9', { headers });
      expectError(r, 401, 'invalid_token');
      assert.match(r.headers.get('www-authenticate'), /error_description="unknown_kid"/);
      return idp.requests.jwks > before;
    }, { timeoutMs: 8000, intervalMs: 250, what: 'a refetch for the unknown kid' });
    const fetched = idp.requests.jwks;
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const r = await call(gh, 'GET', '/orders/v1/items/9', { headers });
      expectError(r, 401, 'invalid_token');
      assert.match(r.headers.get('www-authenticate'), /error_description="unknown_kid"/);
      assert.ok(Date.now() - started < 2000, 'no wait');
    }
    assert.equal(idp.requests.jwks, fetched, 'no fetch for a kid remembered as unknown');
  });

  test('a configuration change through the admin API takes effect on the next request', async () => {
    const headers = { 'api-token': keys.token };
    await patch(gh, `/v1/collections/${ids.orders}`, { upstream: `${up2.url}/v2` });
    let seen = echoed(await call(gh, 'GET', '/orders/v1/items/5', { headers }));
    assert.equal(seen.path, '/v2/items/5');
    assert.equal(up2.last().path, '/v2/items/5', 'the new upstream got it');
    await patch(gh, `/v1/endpoints/${ids['GET /items/:id']}`, { active: false });
    expectError(await call(gh, 'GET', '/orders/v1/items/5', { headers }), 404, 'not_found');
    await patch(gh, `/v1/endpoints/${ids['GET /items/:id']}`, { active: true });
    await patch(gh, `/v1/collections/${ids.orders}`, { upstream: `${up.url}/base` });
    seen = echoed(await call(gh, 'GET', '/orders/v1/items/5', { headers }));
    assert.equal(seen.path, '/base/items/5');
    // a revoked grant
    await patch(gh, `/v1/profiles/${ids.token}`, { collection_ids: [ids.billing] });
    expectError(await call(gh, 'GET', '/orders/v1/items/5', { headers }), 403, 'forbidden');
    await patch(gh, `/v1/profiles/${ids.token}`, { collection_ids: [ids.orders, ids.billing] });
    echoed(await call(gh, 'GET', '/orders/v1/items/5', { headers }));
  });

  test('rate limits: RateLimit-* on allowed answers, then 429 with Retry-After', async () => {
    const policy = await create(gh, '/v1/policies', { name: 'two-per-minute', rate_limit: { requests: 2, per_seconds: 60 } });
    const client = await create(gh, '/v1/clients', { name: 'limited' });
    const profile = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'limited', auth_type: 'token', collection_ids: [ids.orders], policy_id: policy.id,
    });
    const headers = { 'api-token': profile.key };
    const first = await call(gh, 'GET', '/orders/v1/items/1', { headers });
    echoed(first);
    assert.equal(first.headers.get('ratelimit-limit'), '2');
    assert.equal(first.headers.get('ratelimit-remaining'), '1');
    const second = await call(gh, 'GET', '/orders/v1/items/1', { headers });
    echoed(second);
    assert.equal(second.headers.get('ratelimit-limit'), '2');
    const third = await call(gh, 'GET', '/orders/v1/items/1', { headers });
    expectError(third, 429, 'rate_limited');
    assert.ok(Number(third.headers.get('retry-after')) >= 1);
    assert.equal(third.headers.get('ratelimit-limit'), '2');
    assert.equal(third.headers.get('ratelimit-remaining'), '0');
    assert.ok(Number(third.headers.get('ratelimit-reset')) >= 1);
    // other profiles are not limited
    const other = await call(gh, 'GET', '/orders/v1/items/1', { headers: { 'api-token': keys.token } });
    echoed(other);
    assert.equal(other.headers.get('ratelimit-limit'), null);
  });

  test('the access log: one JSON line per request with the fields of SPEC §5, never a secret', async () => {
    const token = await idp.getToken();
    const r = await call(gh, 'GET', '/orders/v1/items/77?secret=query', { headers: { authorization: `Bearer ${token}` } });
    echoed(r);
    const line = await accessLine(gh, r.headers.get('x-request-id'));
    for (const field of ['time', 'request_id', 'method', 'path', 'status', 'duration_us', 'collection_id',
      'endpoint_id', 'client_id', 'profile_id', 'auth', 'upstream_status', 'bytes']) {
      assert.ok(field in line, `field ${field}`);
    }
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/orders/v1/items/77', 'no query string');
    assert.equal(line.status, 200);
    assert.equal(line.collection_id, ids.orders);
    assert.equal(line.endpoint_id, ids['GET /items/:id']);
    assert.equal(line.client_id, ids.acme);
    assert.equal(line.profile_id, ids.oidc);
    assert.equal(line.auth, 'ok');
    assert.equal(line.upstream_status, 200);
    assert.equal(line.bytes, Buffer.byteLength(r.text));
    assert.ok(Number.isInteger(line.duration_us) && line.duration_us > 0);
    assert.equal(line.client_ip, '127.0.0.1');
    assert.equal(typeof line.user_agent, 'string', 'fetch sends a user agent');
    const refused = await call(gh, 'GET', '/orders/v1/items/1', { headers: { authorization: `Bearer ${tamperSignature(token)}` } });
    assert.equal((await accessLine(gh, refused.json.request_id)).auth, 'bad_signature');
    // the user agent as sent, JSON-escaped (quotes, backslashes, tabs), cut at 256 bytes
    const agent = 'probe/1.0 "quoted" \\back\tslash';
    const agented = await raw(gh, 'GET', '/orders/v1/items/2', { 'user-agent': agent, 'api-token': keys.token });
    assert.equal((await accessLine(gh, agented.headers.get('x-request-id'))).user_agent, agent);
    const long = `long/${'x'.repeat(1000)}`;
    const longer = await raw(gh, 'GET', '/orders/v1/items/3', { 'user-agent': long, 'api-token': keys.token });
    assert.equal((await accessLine(gh, longer.headers.get('x-request-id'))).user_agent, long.slice(0, 256));
    const bare = await raw(gh, 'GET', '/orders/v1/items/4', { 'api-token': keys.token });
    const bareLine = await accessLine(gh, bare.headers.get('x-request-id'));
    assert.equal(bareLine.user_agent, null, 'no User-Agent: null');
    assert.equal(bareLine.client_ip, '127.0.0.1');
    const stdout = gh.output().stdout;
    for (const secret of [keys.token, keys.narrow, oidcKey, token, token.split('.')[2], 'secret=query']) {
      assert.ok(!stdout.includes(secret), 'no token, key or query in the log');
    }
    // every request id but the one the X-Request-Id test sent twice on purpose is generated
    const lines = accessLines(gh).filter((l) => GENERATED_ID.test(l.request_id));
    assert.ok(lines.length > 40);
    assert.equal(new Set(lines.map((l) => l.request_id)).size, lines.length, 'one line per request');
  });
});

// ---------------------------------------------------------------------------------------------

describe('gateway: HTTPS with HTTP/2 and HTTP/1.1 (ALPN), and https upstreams', () => {
  let gh;
  let up;
  let secure;
  let untrusted;
  let ca;
  let key;

  /** A self-signed certificate for 127.0.0.1 and localhost in dir: { cert, key } file names. */
  function makeCert(dir, name) {
    const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', files.key, '-out', files.cert, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    return files;
  }

  before(async () => {
    const dir = await makeTempDir();
    const mine = makeCert(dir, 'gateway');
    const other = makeCert(dir, 'other');
    ca = await readFile(mine.cert);
    up = await startUpstream();
    secure = await startUpstream({ tls: { cert: ca, key: await readFile(mine.key) } });
    untrusted = await startUpstream({ tls: { cert: await readFile(other.cert), key: await readFile(other.key) } });
    // OpenSSL's default verify paths honour SSL_CERT_FILE: the gateway trusts its own certificate
    gh = await startGateway({
      dir,
      env: { SSL_CERT_FILE: mine.cert },
      args: ['--threads', '1', '--tls-cert', mine.cert, '--tls-key', mine.key],
    });
    const client = await create(gh, '/v1/clients', { name: 'tls' });
    const ids = [];
    for (const [name, path, upstream] of [['tls', '/tls/v1', up.url], ['secure', '/secure/v1', `${secure.url}/s`],
      ['untrusted', '/untrusted/v1', untrusted.url]]) {
      const col = await create(gh, '/v1/collections', { name, path, upstream });
      await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'ANY', path: '/*' });
      ids.push(col.id);
    }
    key = (await create(gh, '/v1/profiles', { client_id: client.id, name: 'tls', auth_type: 'token', collection_ids: ids })).key;
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
      await secure?.close();
      await untrusted?.close();
    }
  });

  /** GET over HTTPS/1.1 with the gateway's CA: { status, text, alpn }. */
  function httpsGet(path, headers = {}) {
    return new Promise((resolve, reject) => {
      https.get(`https://${gh.gatewayAddress}${path}`, { ca, headers, ALPNProtocols: ['http/1.1'] }, (res) => {
        const alpn = res.socket.alpnProtocol;
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode, text, alpn, json: text ? JSON.parse(text) : undefined }));
      }).on('error', reject);
    });
  }

  test('HTTP/2 through ALPN h2: proxied, refused, and the forwarded proto is https', async () => {
    const session = http2.connect(`https://${gh.gatewayAddress}`, { ca });
    try {
      const get = (path, headers = {}) => new Promise((resolve, reject) => {
        const stream = session.request({ ':path': path, ...headers });
        let text = '';
        let head;
        stream.on('response', (h) => { head = h; });
        stream.on('data', (d) => { text += d; });
        stream.on('end', () => resolve({ head, text }));
        stream.on('error', reject);
        stream.end();
      });
      const ok = await get('/tls/v1/hello?x=1', { 'api-token': key });
      assert.equal(ok.head[':status'], 200);
      assert.equal(session.alpnProtocol, 'h2');
      const seen = JSON.parse(ok.text);
      assert.equal(seen.path, '/hello');
      assert.equal(seen.query, 'x=1');
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.match(ok.head['x-request-id'], GENERATED_ID);
      const refused = await get('/tls/v1/hello');
      assert.equal(refused.head[':status'], 401);
      assert.equal(refused.head['www-authenticate'], 'Bearer realm="gatehouse"');
      assert.equal(JSON.parse(refused.text).error, 'unauthorized');
    } finally {
      session.close();
    }
  });

  test('HTTP/2 request parts HTTP/1.1 cannot carry are refused, never written upstream', async () => {
    // written as they are into the upstream's HTTP/1.1 request line or headers, a space or a line
    // break in :path or :authority would split it (h2o 2.2 checked neither)
    const session = http2.connect(`https://${gh.gatewayAddress}`, { ca });
    session.on('error', () => {});
    try {
      const send = (headers) => new Promise((resolve) => {
        const stream = session.request({ 'api-token': key, ...headers });
        let text = '';
        let status;
        stream.on('response', (h) => { status = h[':status']; });
        stream.on('data', (d) => { text += d; });
        stream.on('end', () => resolve({ status, text }));
        stream.on('error', (e) => resolve({ status: 'reset', text: e.code }));
        stream.end();
      });
      const before = up.requests.length;
      for (const headers of [
        { ':path': '/tls/v1/a b' },
        { ':path': '/tls/v1/x HTTP/1.1\r\nhost: evil\r\n\r\nGET /tls/v1/y' },
        { ':path': '/tls/v1/\x01' },
        { ':path': '/tls/v1/ok', ':authority': 'evil\r\nx-gatehouse-client-id: forged' },
      ]) {
        const r = await send(headers);
        // malformed for HTTP/2 itself (RFC 9113 8.2.1): nghttp2 resets the stream; anything it lets
        // through is refused by the gateway with 400
        if (r.status === 'reset') continue;
        assert.equal(r.status, 400, `${JSON.stringify(headers)}: ${r.status} ${r.text}`);
        assert.equal(JSON.parse(r.text).error, 'bad_request');
      }
      assert.equal(up.requests.length, before, 'nothing reached the upstream');
      const ok = await send({ ':path': '/tls/v1/fine' });
      assert.equal(ok.status, 200, 'the connection still serves');
    } finally {
      session.close();
    }
  });

  test('HTTP/1.1 over TLS for clients that do not offer h2', async () => {
    const r = await httpsGet('/tls/v1/plain', { 'api-token': key });
    assert.equal(r.status, 200);
    assert.equal(r.alpn, 'http/1.1');
    assert.equal(r.json.path, '/plain');
  });

  test('an https upstream is verified: trusted passes, untrusted is 502', async () => {
    const ok = await httpsGet('/secure/v1/deep/er?q=1', { 'api-token': key });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.path, '/s/deep/er');
    assert.equal(ok.json.query, 'q=1');
    assert.equal(ok.json.headers.host, `127.0.0.1:${secure.port}`);
    const bad = await httpsGet('/untrusted/v1/x', { 'api-token': key });
    assert.equal(bad.status, 502, bad.text);
    assert.equal(bad.json.error, 'bad_gateway');
    assert.equal(untrusted.requests.length, 0, 'nothing was sent to it');
  });

  test('an HTTP/2 connection left open does not hold the stop up', async () => {
    const session = http2.connect(`https://${gh.gatewayAddress}`, { ca });
    await new Promise((resolve, reject) => {
      const stream = session.request({ ':path': '/tls/v1/idle', 'api-token': key });
      stream.on('response', (h) => (h[':status'] === 200 ? resolve() : reject(new Error(`status ${h[':status']}`))));
      stream.resume();
      stream.end();
    });
    // still open when the suite's after() sends SIGTERM; stopClean checks the exit
    session.on('error', () => {});
    session.unref();
  });
});

// ---------------------------------------------------------------------------------------------

describe('gateway: https upstreams behind a private CA (--upstream-ca-file, a collection\'s upstream_ca)', () => {
  let dir;
  let up;
  let caPem;
  let caFile;
  const started = [];

  /** A CA of the test's own and a certificate it signed for localhost and 127.0.0.1. */
  function makePrivateCa() {
    const f = (name) => join(dir, name);
    const ssl = (...args) => execFileSync('openssl', args, { stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=gatehouse test private CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    ssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', f('up.key'), '-out', f('up.csr'), '-subj', '/CN=localhost');
    return writeFile(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n').then(() => {
      ssl('x509', '-req', '-in', f('up.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
        '-days', '1', '-out', f('up.crt'), '-extfile', f('ext.cnf'));
    });
  }

  /** A gateway with two collections on the same upstream: one trusting the CA, one not. */
  async function gatewayWith(options) {
    const gh = await startGateway(options);
    started.push(gh);
    const client = await create(gh, '/v1/clients', { name: 'ca' });
    const ids = [];
    for (const [name, extra] of [['pinned', { upstream_ca: caPem }], ['plain', {}]]) {
      const col = await create(gh, '/v1/collections', { name, path: `/${name}/v1`, upstream: `${up.url}/p`, ...extra });
      await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/*' });
      ids.push(col.id);
    }
    gh.key = (await create(gh, '/v1/profiles', { client_id: client.id, name: 'ca', auth_type: 'token', collection_ids: ids })).key;
    gh.ids = ids;
    return gh;
  }

  before(async () => {
    dir = await makeTempDir('gatehouse-ca-');
    await makePrivateCa();
    caFile = join(dir, 'ca.crt');
    caPem = await readFile(caFile, 'utf8');
    up = await startUpstream({ tls: { cert: await readFile(join(dir, 'up.crt')), key: await readFile(join(dir, 'up.key')) } });
  });

  after(async () => {
    try {
      for (const gh of started) await stopClean(gh);
    } finally {
      await up?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('without the CA: 502 naming the verification failure; a collection with upstream_ca: 200', async () => {
    const gh = await gatewayWith();
    const get = (path) => call(gh, 'GET', path, { headers: { 'api-token': gh.key } });
    // the trusted one first: its pooled connection must not serve the collection that trusts less
    const ok = echoed(await get('/pinned/v1/a'));
    assert.equal(ok.path, '/p/a');
    const bad = await get('/plain/v1/b');
    const body = expectError(bad, 502, 'bad_gateway');
    assert.match(body.message, /TLS certificate could not be verified: unable to get local issuer certificate/);
    const line = await accessLine(gh, body.request_id);
    assert.match(line.upstream_error, /unable to get local issuer certificate/);
    // counted as what it is: a certificate to fix, not an upstream that refused or reset
    const metrics = (await gh.api('GET', '/metrics', undefined, { raw: true })).text;
    assert.match(metrics, /^gatehouse_upstream_errors_total\{kind="tls"\} 1$/m, metrics);
    assert.match(metrics, /^gatehouse_upstream_errors_total\{kind="refused_or_reset"\} 0$/m);
    echoed(await get('/pinned/v1/c'));
    assert.equal(up.requests.length, 2, 'nothing was sent over the unverified connection');

    // the field survives an export and an apply, and is no secret
    const exported = (await gh.api('GET', '/v1/config')).json;
    assert.equal(exported.collections.find((c) => c.id === gh.ids[0]).upstream_ca, caPem);
    assert.equal(exported.collections.find((c) => c.id === gh.ids[1]).upstream_ca, null);
    const applied = await gh.api('PUT', '/v1/config', exported);
    assert.equal(applied.status, 200, applied.text);
    echoed(await get('/pinned/v1/d'));

    // written: a PEM bundle of certificates, nothing else
    for (const value of ['not a certificate', caPem.replace(/CERTIFICATE/g, 'PRIVATE KEY'),
      await readFile(join(dir, 'ca.key'), 'utf8'), `${caPem}${await readFile(join(dir, 'ca.key'), 'utf8')}`,
      caPem.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!')]) {
      const r = await gh.api('PATCH', `/v1/collections/${gh.ids[1]}`, { upstream_ca: value });
      assert.equal(r.status, 422, `${value.slice(0, 40)}: ${r.text}`);
      assert.equal(r.json.field, 'upstream_ca');
    }
    // and then the plain one trusts the CA too, at the next request
    await patch(gh, `/v1/collections/${gh.ids[1]}`, { upstream_ca: caPem });
    echoed(await get('/plain/v1/e'));
    await patch(gh, `/v1/collections/${gh.ids[1]}`, { upstream_ca: null });
    expectError(await get('/plain/v1/f'), 502, 'bad_gateway');
  });

  test('GATEHOUSE_UPSTREAM_CA_FILE (--upstream-ca-file): every collection trusts the CA beside the system store', async () => {
    const gh = await gatewayWith({ env: { GATEHOUSE_UPSTREAM_CA_FILE: caFile } });
    echoed(await call(gh, 'GET', '/plain/v1/x', { headers: { 'api-token': gh.key } }));
    echoed(await call(gh, 'GET', '/pinned/v1/y', { headers: { 'api-token': gh.key } }));
  });

  test('--upstream-ca-file that is not a CA bundle: serve refuses to start', async () => {
    for (const file of [join(dir, 'missing.pem'), join(dir, 'ext.cnf')]) {
      const r = await run(['serve', '--db', `sqlite:${join(dir, 'bad.db')}`, '--listen', '127.0.0.1:0',
        '--admin-listen', '127.0.0.1:0', '--upstream-ca-file', file], { cwd: dir, env: { GATEHOUSE_ADMIN_TOKEN: 'x'.repeat(32) } });
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr + r.stdout, /upstream CA file/);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('gateway: requests parked on a slow key refetch, and clients that leave meanwhile', () => {
  let gh;
  let idp;
  let up;
  let jwks;
  let jwksDelayMs = 0;
  let profileKey;
  let ca;

  before(async () => {
    idp = await startIdp();
    up = await startUpstream();
    // the IdP's key set, served with a delay we control (the IdP itself answers at once)
    jwks = http.createServer((req, res) => {
      const body = JSON.stringify(idp.publicJwks());
      setTimeout(() => res.end(body), jwksDelayMs);
    });
    await new Promise((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const dir = await makeTempDir();
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    ca = await readFile(join(dir, 'cert.pem'));
    gh = await startGateway({ dir, args: ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')] });
    const col = await create(gh, '/v1/collections', { name: 'parked', path: '/parked/v1', upstream: up.url });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/*' });
    const client = await create(gh, '/v1/clients', { name: 'parked' });
    profileKey = (await create(gh, '/v1/profiles', {
      client_id: client.id,
      name: 'parked',
      auth_type: 'oidc',
      oidc_jwks_uri: `http://127.0.0.1:${jwks.address().port}/jwks`,
      collection_ids: [col.id],
    })).key;
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
      jwks?.closeAllConnections();
      await new Promise((resolve) => (jwks ? jwks.close(resolve) : resolve()));
      await idp?.stop();
    }
  });

  test('HTTP/2 streams reset while parked are let go; the others pass once the keys arrive', async () => {
    const sign = () => idp.sign({ 'https://gatehouse.dev/key': profileKey });
    const session = http2.connect(`https://${gh.gatewayAddress}`, { ca });
    const get = (token, resetAfterMs) => new Promise((resolve) => {
      const stream = session.request({ ':path': '/parked/v1/x', authorization: `Bearer ${token}` });
      let status = null;
      let text = '';
      stream.on('response', (h) => { status = h[':status']; });
      stream.on('data', (d) => { text += d; });
      stream.on('close', () => resolve({ status, text }));
      stream.on('error', () => {});
      stream.end();
      if (resetAfterMs !== undefined) setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), resetAfterMs);
    });
    try {
      assert.equal((await get(await sign())).status, 200, 'the first key is known');
      await idp.rotate();
      jwksDelayMs = 800;
      const token = await sign();
      // resets spread before, around and after the moment the refetch answers
      const results = await Promise.all([...Array(16).keys()].map((i) => get(token, i % 2 === 0 ? 100 + i * 60 : undefined)));
      for (const [i, r] of results.entries()) {
        if (i % 2 === 1) assert.equal(r.status, 200, `stream ${i}: ${r.text}`);
      }
      jwksDelayMs = 0;
      assert.equal((await get(token)).status, 200, 'the new key is known now');
      // the streams reset before the keys came were disposed of while parked: logged, not answered
      const left = await waitUntil(() => {
        const lines = accessLines(gh).filter((l) => l.status === 499 && l.auth === 'pending');
        return lines.length > 0 ? lines : null;
      }, { what: 'access-log lines of the streams reset while parked' });
      assert.ok(left.length >= 1 && left.length <= 8, `${left.length} reset while parked`);
    } finally {
      session.close();
    }
  });

  test('an HTTP/1 client that gives up while parked does not disturb the worker', async () => {
    await idp.rotate();
    jwksDelayMs = 30000; // longer than the provider's wait limit (5 s): the wait ends by itself
    const token = await idp.sign({ 'https://gatehouse.dev/key': profileKey });
    const controller = new AbortController();
    const gone = https.get(`https://${gh.gatewayAddress}/parked/v1/y`, {
      ca, headers: { authorization: `Bearer ${token}` }, signal: controller.signal,
    });
    gone.on('error', () => {});
    await sleep(300);
    controller.abort();
    jwksDelayMs = 0;
    // the worker keeps serving meanwhile (the refetch for this provider is still running)
    const other = await new Promise((resolve, reject) => {
      https.get(`https://${gh.gatewayAddress}/parked/v1/z`, { ca }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      }).on('error', reject);
    });
    assert.equal(other, 401);
  });
});

// ---------------------------------------------------------------------------------------------

describe('gateway: SIGTERM drains requests in flight, then exits', () => {
  let gh;
  let up;

  before(async () => {
    up = await startUpstream();
    gh = await startGateway();
  });

  after(async () => {
    try {
      await gh?.stop(); // stopped by the test already; removes the directory
    } finally {
      await up?.close();
    }
  });

  test('a slow request started before SIGTERM is answered; the process exits 0', async () => {
    const col = await create(gh, '/v1/collections', { name: 'slow', path: '/slow/v1', upstream: up.url });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/*' });
    const client = await create(gh, '/v1/clients', { name: 'slow' });
    const { key } = await create(gh, '/v1/profiles', { client_id: client.id, name: 'slow', auth_type: 'token', collection_ids: [col.id] });
    // a keep-alive connection left idle must not hold the drain up
    echoed(await call(gh, 'GET', '/slow/v1/warm', { headers: { 'api-token': key } }));
    up.setMode('delay', { ms: 1500 });
    const inFlight = call(gh, 'GET', '/slow/v1/x', { headers: { 'api-token': key } });
    await waitUntil(() => up.requests.some((r) => r.path === '/x'), { what: 'the upstream got the request' });
    const ready = await gh.api('GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    const started = Date.now();
    const exit = gh.kill('SIGTERM');
    await sleep(200);
    await assert.rejects(fetch(`${gh.gw}/slow/v1/late`, { headers: { 'api-token': key } }), 'no new connections');
    // the admin API still answers during the drain, and says the node is not ready: a load
    // balancer stops sending it requests
    const draining = await gh.api('GET', '/readyz');
    assert.equal(draining.status, 503, draining.text);
    assert.match(draining.json.reasons.join(' '), /gateway is not listening/);
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.equal(r.json.path, '/x');
    assert.equal(r.headers.get('connection'), 'close', 'answered during the drain: the connection ends cleanly');
    const result = await exit;
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stderr, /Sanitizer|runtime error/, result.stderr);
    assert.ok(Date.now() - started < 5000, 'the drain ends when the work does');
    assert.match(result.stdout, /"msg":"stopped"/);
  });
});
