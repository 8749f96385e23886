// SPDX-License-Identifier: Apache-2.0
// /metrics on the admin listener counts the data plane (SPEC §5): requests by collection and status
// class, refusals by code, the latency histogram. Real binary, real upstream, all on loopback.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { startServer, waitUntil } from './lib/server.mjs';
import { startUpstream } from './lib/upstream.mjs';

let gh;
let up;
let gateway;
let collection;
let key;

before(async () => {
  up = await startUpstream();
  gh = await startServer();
  await waitUntil(() => gh.output().stdout.includes('"gateway listening"'), { what: 'the gateway listener' });
  const line = gh.output().stdout.split('\n').find((l) => l.includes('"gateway listening"'));
  gateway = `http://${JSON.parse(line).address}`;
  const col = await gh.api('POST', '/v1/collections', { name: 'metrics', path: '/m/v1', upstream: up.url });
  assert.equal(col.status, 201, col.text);
  collection = col.json.id;
  assert.equal((await gh.api('POST', `/v1/collections/${collection}/endpoints`, { method: 'GET', path: '/items' })).status, 201);
  const client = await gh.api('POST', '/v1/clients', { name: 'metrics client' });
  const profile = await gh.api('POST', '/v1/profiles', {
    client_id: client.json.id, name: 'metrics profile', auth_type: 'token', collection_ids: [collection],
  });
  assert.equal(profile.status, 201, profile.text);
  key = profile.json.key;
});

after(async () => {
  await gh?.stop();
  await up?.close();
});

/** The value of one sample line of the metrics text, or null. */
function sample(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : null;
}

test('requests are counted by collection and status class, and in the latency histogram', async () => {
  const call = (method, path, headers = {}) => fetch(`${gateway}${path}`, { method, headers });
  for (let i = 0; i < 3; i++) assert.equal((await call('GET', '/m/v1/items', { 'api-token': key })).status, 200);
  assert.equal((await call('GET', '/m/v1/items')).status, 401);
  assert.equal((await call('POST', '/m/v1/items', { 'api-token': key })).status, 405);
  assert.equal((await call('GET', '/elsewhere')).status, 404);

  const metrics = await gh.api('GET', '/metrics');
  assert.equal(metrics.status, 200);
  const text = metrics.text;
  assert.equal(sample(text, `gatehouse_collection_requests_total{collection="${collection}",class="2xx"}`), 3);
  assert.equal(sample(text, `gatehouse_collection_requests_total{collection="${collection}",class="4xx"}`), 2);
  assert.equal(sample(text, 'gatehouse_requests_total{class="2xx"}'), 3);
  assert.equal(sample(text, 'gatehouse_requests_total{class="4xx"}'), 3);
  assert.equal(sample(text, 'gatehouse_refusals_total{code="not_found"}'), 1);
  assert.equal(sample(text, 'gatehouse_refusals_total{code="unauthorized"}'), 1);
  assert.equal(sample(text, 'gatehouse_refusals_total{code="method_not_allowed"}'), 1);
  assert.equal(sample(text, 'gatehouse_request_duration_seconds_count'), 6);
  assert.equal(sample(text, 'gatehouse_request_duration_seconds_bucket{le="+Inf"}'), 6);
  assert.ok(!text.includes(key), 'metrics never show a key');
});

test('the front end counts its connections and what each limit refused', async () => {
  const before = await gh.api('GET', '/metrics');
  const refusedBefore = sample(before.text, 'gatehouse_limit_refusals_total{limit="header_count"}');
  assert.equal(typeof refusedBefore, 'number', 'every limit has its sample');
  const headers = { 'api-token': key };
  for (let i = 0; i < 120; i++) headers[`x-field-${i}`] = 'v';
  assert.equal((await fetch(`${gateway}/m/v1/items`, { headers })).status, 431);
  const text = (await gh.api('GET', '/metrics')).text;
  assert.equal(sample(text, 'gatehouse_limit_refusals_total{limit="header_count"}'), refusedBefore + 1);
  assert.ok(sample(text, 'gatehouse_connections_total') >= 1);
  assert.equal(typeof sample(text, 'gatehouse_connections'), 'number');
  assert.equal(sample(text, 'gatehouse_refusals_total{code="headers_too_large"}') >= 1, true);
});
