// SPDX-License-Identifier: Apache-2.0
// Issue 11, "callers escape their collection" and "ANY": request targets and methods that an
// upstream could read otherwise than the gateway routed them. Sent over a raw socket (node:net),
// since fetch and node:http's URL parsing resolve "..", drop "#" and check methods; the upstream is
// lib/rawupstream.mjs, which records every byte it receives, so "nothing reached it" is exact.
// Everything on 127.0.0.1 with ephemeral ports; processes are stopped by pid.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { create, startGateway, stopClean } from './lib/proofs-http.mjs';
import { startRawUpstream } from './lib/rawupstream.mjs';
import { gatehouseBin, haveGatehouse, run } from './lib/run.mjs';

// No skipping: a run without the binary must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const SPEC_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/**
 * One request written as these exact bytes on a connection of its own (Connection: close), read
 * to the end: { status, headers (lower-case names), json }. Rejects when no answer came in 10 s.
 */
function rawRequest(address, method, target, headers = {}) {
  const [host, port] = address.split(':');
  const head = [`${method} ${target} HTTP/1.1`, `Host: ${address}`, 'Connection: close',
    ...Object.entries(headers).map(([n, v]) => `${n}: ${v}`), '', ''].join('\r\n');
  return new Promise((resolve, reject) => {
    const chunks = [];
    const sock = net.connect({ host, port: Number(port) }, () => sock.end(head, 'latin1'));
    sock.setTimeout(10000, () => sock.destroy(new Error(`no answer to ${method} ${target} within 10 s`)));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
      if (!m || end < 0) {
        reject(new Error(`no HTTP answer to ${method} ${target}: ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      const fields = {};
      for (const line of text.slice(0, end).split('\r\n').slice(1)) {
        const colon = line.indexOf(':');
        fields[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      let json;
      try {
        json = JSON.parse(text.slice(end + 4));
      } catch { /* left undefined: the assertions show the status */ }
      resolve({ status: Number(m[1]), headers: fields, json, text });
    });
  });
}

function expectError(r, status, code, message) {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text.slice(0, 400)}`);
  assert.equal(r.json?.error, code, r.text.slice(0, 400));
  if (message) assert.match(r.json.message, message);
}

describe('issue 11: targets and methods an upstream could read as another request', () => {
  let gh;
  let up;
  let key;

  before(async () => {
    up = await startRawUpstream();
    gh = await startGateway();
    // the reproducer's layout: two collections on one upstream (a servlet container would serve
    // both under /api), the caller granted the orders one only
    const orders = await create(gh, '/v1/collections', { name: 'orders', path: '/t-orders/v1', upstream: `${up.url}/api/orders` });
    const billing = await create(gh, '/v1/collections', { name: 'billing', path: '/t-billing/v1', upstream: `${up.url}/api/billing` });
    for (const col of [orders, billing]) await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'ANY', path: '/*' });
    const client = await create(gh, '/v1/clients', { name: 'caller' });
    const profile = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'orders only', auth_type: 'token', collection_ids: [orders.id],
    });
    key = profile.key;
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
    }
  });

  /** Sends it and asserts that the upstream received no request at all. */
  async function refused(method, target) {
    const before = up.requests.length;
    const r = await rawRequest(gh.gatewayAddress, method, target, { 'api-token': key });
    assert.equal(up.requests.length, before, `${method} ${target} reached the upstream`);
    return r;
  }

  test('controls: the granted collection is proxied, the other one is 403', async () => {
    const r = await rawRequest(gh.gatewayAddress, 'GET', '/t-orders/v1/items/1;v=2?q=a;b', { 'api-token': key });
    assert.equal(r.status, 200, r.text);
    assert.equal(up.requests.at(-1).target, '/api/orders/items/1;v=2?q=a;b');
    expectError(await refused('GET', '/t-billing/v1/items/secret'), 403, 'forbidden');
  });

  test('"..;" segments (read as ".." by servlet containers) are 400 before routing; nothing is forwarded', async () => {
    expectError(await refused('GET', '/t-orders/v1/items/..;/..;/..;/api/billing/items/secret'), 400, 'bad_request', /'\.' or '\.\.' segment/);
    for (const target of ['/t-orders/v1/items/.;x/a', '/t-orders/v1/items/..;jsessionid=1/x', '/t-orders/v1/items/..%3B/x',
      '/t-orders/v1/..;/..;/t-billing/v1/items/secret', '/t-orders/v1/items/..', '/t-orders/v1/items/%2e%2e/x']) {
      expectError(await refused('GET', target), 400, 'bad_request');
    }
  });

  test('a "#" in the target, in the path or the query, is 400; nothing is forwarded', async () => {
    // the front end's strict parser refuses it as a target no request may have (RFC 9112 3.2);
    // explain, which sees no HTTP, names the '#' itself (below)
    for (const target of ['/t-orders/v1/items/1#/x', '/t-orders/v1/items#', '/t-orders/v1/items?q=1#x']) {
      expectError(await refused('GET', target), 400, 'bad_request', /target/);
    }
  });

  test('ANY takes the seven methods of the spec only: CONNECT, TRACE and extensions get 405 with Allow', async () => {
    for (const method of ['TRACE', 'PROPFIND', 'FOO', 'ANY']) {
      const r = await refused(method, '/t-orders/v1/items/1');
      expectError(r, 405, 'method_not_allowed');
      assert.equal(r.headers.allow, SPEC_METHODS, method);
    }
    // CONNECT takes an authority, never a path (RFC 9112 3.2.3): the front end refuses it first
    expectError(await refused('CONNECT', '/t-orders/v1/items/1'), 400, 'bad_request');
    for (const method of ['PUT', 'PATCH', 'OPTIONS', 'HEAD']) {
      const r = await rawRequest(gh.gatewayAddress, method, '/t-orders/v1/items/1', { 'api-token': key });
      assert.equal(r.status, 200, `${method}: ${r.text}`);
      assert.equal(up.requests.at(-1).method, method);
    }
  });

  test('explain (the API and the CLI) gives the same answers', async () => {
    const cases = [
      ['GET', '/t-orders/v1/items/..;/..;/..;/api/billing/items/secret', 400, 'bad_request'],
      ['GET', '/t-orders/v1/items?q=1#x', 400, 'bad_request'],
      ['TRACE', '/t-orders/v1/items/1', 405, 'method_not_allowed'],
    ];
    for (const [method, path, status, error] of cases) {
      const r = await gh.api('POST', '/v1/explain', { method, path, headers: { 'api-token': key } });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual([r.json.status, r.json.error], [status, error], `${method} ${path}`);
      assert.deepEqual(r.json.steps.map((st) => [st.step, st.ok]), [['route', false]]);
      const cli = await run(['explain', '--method', method, '--path', path, '--header', `api-token: ${key}`, '--json',
        '--admin-url', gh.url], { env: { GATEHOUSE_ADMIN_TOKEN: gh.token, GATEHOUSE_ADMIN_URL: undefined } });
      assert.equal(cli.code, 0, cli.stderr);
      assert.deepEqual(cli.json(), r.json);
    }
  });
});
