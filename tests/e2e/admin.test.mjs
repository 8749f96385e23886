// SPDX-License-Identifier: Apache-2.0
// The admin API of SPEC §6, through HTTP against the real `gatehouse serve`: every route, every
// error class, oidc profiles checked against a real OpenID Provider (lib/idp.mjs), export/apply,
// restart, and strange input stored byte for byte. Each describe has its own server (and data
// directory), so no describe depends on another.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { start as startIdp } from './lib/idp.mjs';
import { gatehouseBin, haveGatehouse } from './lib/run.mjs';
import {
  sleep, startHttpServer, startServer, unusedPort, waitUntil,
} from './lib/server.mjs';
import {
  assertUnchanged, configOf, expectError, expectList, expectStatus, idPattern, listAll, PLAIN_KEY,
  TIME,
} from './lib/check.mjs';

// No skipping: `make test` builds the binary first, and a run without it must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const UPSTREAM = 'http://127.0.0.1:9/base';
const ALL_ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

function rsaPublicPem(bits = 2048) {
  return generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  }).publicKey;
}

function sha256Hex(text) {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Waits until the wall clock is in a later second than `time` (timestamps have 1 s resolution). */
async function nextSecondAfter(time) {
  const target = Date.parse(time) + 1000;
  const wait = target - Date.now() + 50;
  if (wait > 0) await sleep(wait);
}

async function create(gh, path, body) {
  return expectStatus(await gh.api('POST', path, body), 201);
}

/** Creates the objects most tests need: a collection, a client and a token profile granting it. */
async function seed(gh, tag) {
  const collection = await create(gh, '/v1/collections', { name: `${tag}-col`, path: `/${tag}`, upstream: UPSTREAM });
  const client = await create(gh, '/v1/clients', { name: `${tag}-client` });
  const profile = await create(gh, '/v1/profiles', {
    client_id: client.id, name: `${tag}-profile`, auth_type: 'token', collection_ids: [collection.id],
  });
  return { collection, client, profile };
}

// ---------------------------------------------------------------------------------------------

describe('admin API: create, get, list, update and delete of every kind', () => {
  let gh;
  before(async () => {
    gh = await startServer();
  });
  after(async () => {
    await gh?.stop();
  });

  test('collections: defaults on create, get, list, delete then 404', async () => {
    const body = await create(gh, '/v1/collections', { name: 'orders', path: '/orders/v1', upstream: 'https://orders.internal:8443/api' });
    assert.match(body.id, idPattern('col'));
    assert.equal(body.name, 'orders');
    assert.equal(body.version, 'v1');
    assert.equal(body.path, '/orders/v1');
    assert.equal(body.upstream, 'https://orders.internal:8443/api');
    assert.equal(body.active, true);
    assert.equal(body.forward_authorization, true);
    assert.equal(body.timeout_ms, 30000);
    assert.match(body.created_at, TIME);
    assert.equal(body.updated_at, body.created_at);

    assert.deepEqual(expectStatus(await gh.api('GET', `/v1/collections/${body.id}`), 200), body);
    const list = expectList(await gh.api('GET', '/v1/collections'));
    assert.deepEqual(list.data.find((c) => c.id === body.id), body);

    expectStatus(await gh.api('DELETE', `/v1/collections/${body.id}`), 204);
    expectError(await gh.api('GET', `/v1/collections/${body.id}`), 404, 'not_found');
    expectError(await gh.api('DELETE', `/v1/collections/${body.id}`), 404, 'not_found');
    assert.equal(expectList(await gh.api('GET', '/v1/collections')).data.some((c) => c.id === body.id), false);
  });

  test('endpoints under a collection: create, get, list, delete; 404 for an unknown collection', async () => {
    const col = await create(gh, '/v1/collections', { name: 'items', path: '/items', upstream: UPSTREAM });
    const ep = await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/items/:id', name: 'get item' });
    assert.match(ep.id, idPattern('ep'));
    assert.equal(ep.collection_id, col.id);
    assert.equal(ep.method, 'GET');
    assert.equal(ep.path, '/items/:id');
    assert.equal(ep.name, 'get item');
    assert.equal(ep.active, true);
    assert.equal(ep.timeout_ms, null, 'timeout_ms inherits from the collection');
    assert.match(ep.created_at, TIME);

    const other = await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'ANY', path: '/files/*' });
    assert.deepEqual(expectStatus(await gh.api('GET', `/v1/endpoints/${ep.id}`), 200), ep);
    const list = expectList(await gh.api('GET', `/v1/collections/${col.id}/endpoints`));
    assert.deepEqual(list.data.map((e) => e.id).sort(), [ep.id, other.id].sort());
    assert.equal(list.next, null);

    const missing = 'col_AAAAAAAAAAAAAAAA';
    expectError(await gh.api('POST', `/v1/collections/${missing}/endpoints`, { method: 'GET', path: '/x' }), 404, 'not_found');
    expectError(await gh.api('GET', `/v1/collections/${missing}/endpoints`), 404, 'not_found');

    expectStatus(await gh.api('DELETE', `/v1/endpoints/${ep.id}`), 204);
    expectError(await gh.api('GET', `/v1/endpoints/${ep.id}`), 404, 'not_found');
    assert.deepEqual(expectList(await gh.api('GET', `/v1/collections/${col.id}/endpoints`)).data.map((e) => e.id), [other.id]);
  });

  test('clients: create with defaults, get, list, delete then 404', async () => {
    const c = await create(gh, '/v1/clients', { name: 'Acme Corp' });
    assert.match(c.id, idPattern('cli'));
    assert.deepEqual(Object.keys(c).sort(), ['active', 'created_at', 'description', 'id', 'name', 'updated_at']);
    assert.equal(c.description, '');
    assert.equal(c.active, true);
    assert.deepEqual(expectStatus(await gh.api('GET', `/v1/clients/${c.id}`), 200), c);
    assert.ok(expectList(await gh.api('GET', '/v1/clients')).data.some((x) => x.id === c.id));
    expectStatus(await gh.api('DELETE', `/v1/clients/${c.id}`), 204);
    expectError(await gh.api('GET', `/v1/clients/${c.id}`), 404, 'not_found');
  });

  test('profiles of auth type token and jwt (a real PEM key, write-only), with defaults', async () => {
    const { collection, client } = await seed(gh, 'prof');
    const tok = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'token-profile', auth_type: 'token', collection_ids: [collection.id],
    });
    assert.match(tok.id, idPattern('ap'));
    assert.equal(tok.client_id, client.id);
    assert.deepEqual(tok.collection_ids, [collection.id]);
    assert.equal(tok.active, true);
    assert.equal(tok.policy_id, null);
    assert.deepEqual(tok.required_claims, ['exp']);
    assert.deepEqual(tok.allowed_issuers, []);
    assert.deepEqual(tok.audiences, []);
    assert.deepEqual(tok.algorithms, ALL_ASYMMETRIC);
    assert.equal(tok.leeway_seconds, 60);
    assert.deepEqual(tok.ip_allow, []);
    assert.deepEqual(tok.ip_deny, []);
    assert.match(tok.key, PLAIN_KEY);

    const pem = rsaPublicPem();
    const jwt = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'jwt-profile', auth_type: 'jwt', jwt_key: pem, algorithms: ['RS256'],
      audiences: ['https://api.example'], ip_allow: ['10.0.0.0/8', '2001:db8::/32'],
    });
    assert.equal(jwt.auth_type, 'jwt');
    assert.equal('jwt_key' in jwt, false, 'jwt_key is write-only');
    assert.deepEqual(jwt.algorithms, ['RS256']);
    assert.deepEqual(jwt.ip_allow, ['10.0.0.0/8', '2001:db8::/32']);
    const got = expectStatus(await gh.api('GET', `/v1/profiles/${jwt.id}`), 200);
    assert.equal('jwt_key' in got, false, 'GET does not show jwt_key');
    assert.equal('key' in got, false, 'GET does not show a key');
    const { key: _k, ...shown } = jwt;
    assert.deepEqual(got, shown);
    const plain = expectStatus(await gh.api('GET', '/v1/config'), 200);
    assert.equal(plain.profiles.find((p) => p.id === jwt.id).jwt_key, undefined, 'no jwt_key without ?secrets=true');
    const secret = await configOf(gh);
    assert.equal(secret.profiles.find((p) => p.id === jwt.id).jwt_key, pem, 'jwt_key with ?secrets=true');

    const list = expectList(await gh.api('GET', `/v1/profiles?limit=1000`));
    assert.ok(list.data.some((p) => p.id === tok.id) && list.data.some((p) => p.id === jwt.id));
    expectStatus(await gh.api('DELETE', `/v1/profiles/${jwt.id}`), 204);
    expectError(await gh.api('GET', `/v1/profiles/${jwt.id}`), 404, 'not_found');
    expectError(await gh.api('GET', `/v1/profiles/${jwt.id}/keys`), 404, 'not_found');
    assert.equal((await configOf(gh)).keys.some((k) => k.profile_id === jwt.id), false, "a deleted profile's keys go with it");
  });

  test('policies: create, get, list, used by a profile (409 on delete), then delete', async () => {
    const pol = await create(gh, '/v1/policies', { name: 'gold', rate_limit: { requests: 100, per_seconds: 60 } });
    assert.match(pol.id, idPattern('pol'));
    assert.deepEqual(pol.rate_limit, { requests: 100, per_seconds: 60 });
    assert.equal(pol.quota, null);
    assert.deepEqual(expectStatus(await gh.api('GET', `/v1/policies/${pol.id}`), 200), pol);
    assert.ok(expectList(await gh.api('GET', '/v1/policies')).data.some((p) => p.id === pol.id));

    const client = await create(gh, '/v1/clients', { name: 'policy-user' });
    const prof = await create(gh, '/v1/profiles', { client_id: client.id, name: 'p', auth_type: 'token', policy_id: pol.id });
    assert.equal(prof.policy_id, pol.id);
    expectError(await gh.api('DELETE', `/v1/policies/${pol.id}`), 409, 'conflict');
    expectStatus(await gh.api('PATCH', `/v1/profiles/${prof.id}`, { policy_id: null }), 200);
    expectStatus(await gh.api('DELETE', `/v1/policies/${pol.id}`), 204);
    expectError(await gh.api('GET', `/v1/policies/${pol.id}`), 404, 'not_found');
  });

  test('PATCH changes the given fields, keeps the others and moves updated_at, for every kind', async () => {
    const col = await create(gh, '/v1/collections', { name: 'patch-col', path: '/patch', upstream: UPSTREAM, timeout_ms: 5000 });
    const ep = await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'POST', path: '/orders', name: 'make order' });
    const cli = await create(gh, '/v1/clients', { name: 'patch-client', description: 'before' });
    const pem = rsaPublicPem();
    const prof = await create(gh, '/v1/profiles', { client_id: cli.id, name: 'patch-profile', auth_type: 'jwt', jwt_key: pem, algorithms: ['RS256'] });
    const pol = await create(gh, '/v1/policies', { name: 'patch-policy', quota: { requests: 1000, per_seconds: 86400 } });
    await nextSecondAfter(pol.updated_at);

    const cases = [
      [`/v1/collections/${col.id}`, col, { upstream: 'https://patched.example/v2' }],
      [`/v1/endpoints/${ep.id}`, ep, { active: false }],
      [`/v1/clients/${cli.id}`, cli, { description: 'after' }],
      [`/v1/profiles/${prof.id}`, prof, { leeway_seconds: 120 }],
      [`/v1/policies/${pol.id}`, pol, { rate_limit: { requests: 5, per_seconds: 1 } }],
    ];
    for (const [path, original, patch] of cases) {
      const updated = expectStatus(await gh.api('PATCH', path, patch), 200);
      const { key: _k, ...base } = original;
      const expected = { ...base, ...patch, updated_at: updated.updated_at };
      assert.deepEqual(updated, expected, `PATCH ${path}: only the patched fields change`);
      assert.match(updated.updated_at, TIME);
      assert.ok(updated.updated_at > original.updated_at, `PATCH ${path}: updated_at moves (${original.updated_at} → ${updated.updated_at})`);
      assert.equal(updated.created_at, original.created_at);
      assert.deepEqual(expectStatus(await gh.api('GET', path), 200), updated, `GET ${path} after PATCH`);
    }
    const secret = await configOf(gh);
    assert.equal(secret.profiles.find((p) => p.id === prof.id).jwt_key, pem, 'a PATCH without jwt_key keeps it');
    // A patch that breaks a rule is refused and changes nothing.
    await assertUnchanged(gh, async () => {
      expectError(await gh.api('PATCH', `/v1/profiles/${prof.id}`, { leeway_seconds: 301 }), 422, 'validation_failed', 'leeway_seconds');
      expectError(await gh.api('PATCH', `/v1/endpoints/${ep.id}`, { collection_id: col.id }), 422, 'validation_failed', 'collection_id');
      expectError(await gh.api('PATCH', `/v1/clients/${cli.id}`, { id: 'cli_BBBBBBBBBBBBBBBB' }), 422, 'validation_failed', 'id');
      expectError(await gh.api('PATCH', '/v1/clients/cli_BBBBBBBBBBBBBBBB', { description: 'x' }), 404, 'not_found');
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('lists: paging with limit, next and after', () => {
  let gh;
  let ids;
  before(async () => {
    gh = await startServer();
    ids = [];
    for (let i = 0; i < 25; i++) {
      ids.push((await create(gh, '/v1/clients', { name: `page-client-${String(i).padStart(2, '0')}` })).id);
    }
    ids.sort();
  });
  after(async () => {
    await gh?.stop();
  });

  test('25 clients, ?limit=10: three pages of 10, 10 and 5 by next, in id order, each once', async () => {
    const pages = [];
    let path = '/v1/clients?limit=10';
    for (;;) {
      const body = expectList(await gh.api('GET', path));
      pages.push(body);
      if (body.next === null) break;
      assert.equal(body.next, body.data[body.data.length - 1].id, 'next is the last id of the page');
      path = `/v1/clients?limit=10&after=${encodeURIComponent(body.next)}`;
      assert.ok(pages.length < 5, 'the pages end');
    }
    assert.deepEqual(pages.map((p) => p.data.length), [10, 10, 5]);
    assert.deepEqual(pages.flatMap((p) => p.data.map((c) => c.id)), ids);
  });

  test('?after= alone continues after that id; without limit everything fits one page', async () => {
    const body = expectList(await gh.api('GET', `/v1/clients?after=${ids[4]}`));
    assert.deepEqual(body.data.map((c) => c.id), ids.slice(5));
    assert.equal(body.next, null);
    const all = expectList(await gh.api('GET', '/v1/clients'));
    assert.deepEqual(all.data.map((c) => c.id), ids);
    const last = expectList(await gh.api('GET', `/v1/clients?after=${ids[24]}`));
    assert.deepEqual(last.data, []);
    assert.equal(last.next, null);
    const exact = expectList(await gh.api('GET', '/v1/clients?limit=25'));
    assert.equal(exact.data.length, 25);
    assert.equal(exact.next, null, 'no next page when the page ends exactly at the last item');
  });

  test('a bad limit is refused with 422 naming limit', async () => {
    for (const limit of ['0', '-1', '1001', 'ten', '']) {
      expectError(await gh.api('GET', `/v1/clients?limit=${limit}`), 422, 'validation_failed', 'limit');
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('every list route pages the same way', () => {
  let gh;
  let routes;
  before(async () => {
    gh = await startServer();
    const a = await seed(gh, 'pa');
    const b = await seed(gh, 'pb');
    for (const path of ['/one', '/two', '/three']) {
      await create(gh, `/v1/collections/${a.collection.id}/endpoints`, { method: 'GET', path });
    }
    await create(gh, `/v1/collections/${b.collection.id}/endpoints`, { method: 'GET', path: '/other' });
    await create(gh, `/v1/profiles/${a.profile.id}/keys`, { grace_seconds: 60 });
    await create(gh, `/v1/profiles/${a.profile.id}/keys`, { grace_seconds: 60 });
    await create(gh, '/v1/policies', { name: 'pa-policy' });
    await create(gh, '/v1/policies', { name: 'pb-policy' });
    routes = {
      '/v1/collections': 2,
      [`/v1/collections/${a.collection.id}/endpoints`]: 3,
      '/v1/endpoints': 4,
      '/v1/clients': 2,
      '/v1/profiles': 2,
      [`/v1/profiles/${a.profile.id}/keys`]: 3,
      '/v1/policies': 2,
    };
  });
  after(async () => {
    await gh?.stop();
  });

  test('?limit=1 gives one item and a next per page, ?after= follows it, and the pages are the whole list', async () => {
    for (const [path, count] of Object.entries(routes)) {
      const whole = expectList(await gh.api('GET', path));
      assert.equal(whole.data.length, count, `${path} lists ${count}`);
      assert.equal(whole.next, null);
      const ids = [];
      let page = expectList(await gh.api('GET', `${path}?limit=1`));
      for (let i = 0; ; i++) {
        assert.equal(page.data.length, 1, `${path}: page ${i} has one item`);
        ids.push(page.data[0].id);
        if (page.next === null) break;
        assert.equal(page.next, page.data[0].id);
        assert.ok(i < count, `${path}: the pages end`);
        page = expectList(await gh.api('GET', `${path}?limit=1&after=${encodeURIComponent(page.next)}`));
      }
      assert.deepEqual(ids, whole.data.map((x) => x.id), `${path}: the pages hold the list in order`);
      assert.deepEqual((await listAll(gh, path, 2)).map((x) => x.id), ids);
    }
  });
});

describe('access profile keys', () => {
  let gh;
  let profile;
  let other;
  before(async () => {
    gh = await startServer();
    ({ profile } = await seed(gh, 'keys'));
    other = (await seed(gh, 'keys-other')).profile;
  });
  after(async () => {
    await gh?.stop();
  });

  test('POST /v1/profiles answers the first key once; GET profile, GET keys and GET /v1/config never show it', async () => {
    const key = profile.key;
    assert.match(key, PLAIN_KEY);
    const keys = expectList(await gh.api('GET', `/v1/profiles/${profile.id}/keys`));
    assert.equal(keys.data.length, 1);
    const [k] = keys.data;
    assert.match(k.id, idPattern('key'));
    assert.equal(k.profile_id, profile.id);
    assert.equal(k.prefix, key.slice(0, 8));
    assert.match(k.created_at, TIME);
    assert.equal(k.expires_at, null);
    assert.equal('hash' in k, false);
    assert.equal('key' in k, false);
    for (const path of [`/v1/profiles/${profile.id}`, `/v1/profiles/${profile.id}/keys`, '/v1/profiles',
      '/v1/config', '/v1/config?secrets=true']) {
      const r = await gh.api('GET', path);
      expectStatus(r, 200);
      assert.equal(r.text.includes(key), false, `${path} does not show the plain key`);
      assert.equal(r.text.includes(key.slice(3)), false, `${path} does not show the key's random part`);
    }
    const plain = expectStatus(await gh.api('GET', '/v1/config'), 200);
    assert.equal(plain.keys.find((x) => x.id === k.id).hash, undefined, 'no hash without ?secrets=true');
    const secret = await configOf(gh);
    assert.equal(secret.keys.find((x) => x.id === k.id).hash, sha256Hex(key), '?secrets=true shows the SHA-256 only');
  });

  test('POST .../keys without grace_seconds leaves exactly the new key', async () => {
    const r = await create(gh, `/v1/profiles/${profile.id}/keys`);
    assert.match(r.key, PLAIN_KEY);
    assert.notEqual(r.key, profile.key);
    assert.equal(r.prefix, r.key.slice(0, 8));
    assert.equal(r.expires_at, null);
    const keys = expectList(await gh.api('GET', `/v1/profiles/${profile.id}/keys`)).data;
    assert.deepEqual(keys.map((k) => k.id), [r.id]);
    const again = await create(gh, `/v1/profiles/${profile.id}/keys`, {});
    assert.deepEqual(expectList(await gh.api('GET', `/v1/profiles/${profile.id}/keys`)).data.map((k) => k.id), [again.id]);
  });

  test('POST .../keys {"grace_seconds":300} keeps the old key until about now + 300 s', async () => {
    const before = expectList(await gh.api('GET', `/v1/profiles/${profile.id}/keys`)).data;
    assert.equal(before.length, 1);
    const t0 = Date.now();
    const fresh = await create(gh, `/v1/profiles/${profile.id}/keys`, { grace_seconds: 300 });
    const keys = expectList(await gh.api('GET', `/v1/profiles/${profile.id}/keys`)).data;
    assert.equal(keys.length, 2);
    const old = keys.find((k) => k.id === before[0].id);
    assert.ok(old, 'the old key is still there');
    assert.match(old.expires_at, TIME);
    const expires = Date.parse(old.expires_at);
    assert.ok(Math.abs(expires - (t0 + 300000)) <= 5000, `expires_at ${old.expires_at} is about now + 300 s`);
    assert.equal(keys.find((k) => k.id === fresh.id).expires_at, null);

    // DELETE .../keys/{key_id}: 204, then gone; another profile's key is 404 and stays.
    expectStatus(await gh.api('DELETE', `/v1/profiles/${profile.id}/keys/${old.id}`), 204);
    assert.deepEqual(expectList(await gh.api('GET', `/v1/profiles/${profile.id}/keys`)).data.map((k) => k.id), [fresh.id]);
    expectError(await gh.api('DELETE', `/v1/profiles/${profile.id}/keys/${old.id}`), 404, 'not_found');
    const otherKey = expectList(await gh.api('GET', `/v1/profiles/${other.id}/keys`)).data[0];
    await assertUnchanged(gh, async () => {
      expectError(await gh.api('DELETE', `/v1/profiles/${profile.id}/keys/${otherKey.id}`), 404, 'not_found');
      expectError(await gh.api('DELETE', `/v1/profiles/${profile.id}/keys/key_AAAAAAAAAAAAAAAA`), 404, 'not_found');
      expectError(await gh.api('POST', '/v1/profiles/ap_AAAAAAAAAAAAAAAA/keys'), 404, 'not_found');
      expectError(await gh.api('POST', `/v1/profiles/${profile.id}/keys`, { grace_seconds: '300' }), 400, 'bad_request');
      expectError(await gh.api('POST', `/v1/profiles/${profile.id}/keys`, { grace_seconds: -1 }), 422, 'validation_failed', 'grace_seconds');
      expectError(await gh.api('POST', `/v1/profiles/${profile.id}/keys`, { grace: 300 }), 422, 'validation_failed', 'grace');
    });
    assert.equal(expectList(await gh.api('GET', `/v1/profiles/${other.id}/keys`)).data[0].id, otherKey.id);
  });
});

// ---------------------------------------------------------------------------------------------

describe('error classes, and a rejected write changes nothing', () => {
  let gh;
  let seeded;
  let withEndpoint;
  let policy;
  before(async () => {
    gh = await startServer();
    seeded = await seed(gh, 'err');
    withEndpoint = await create(gh, '/v1/collections', { name: 'with-endpoint', path: '/with/endpoint', upstream: UPSTREAM });
    await create(gh, `/v1/collections/${withEndpoint.id}/endpoints`, { method: 'GET', path: '/' });
    policy = await create(gh, '/v1/policies', { name: 'used', rate_limit: { requests: 1, per_seconds: 1 } });
    expectStatus(await gh.api('PATCH', `/v1/profiles/${seeded.profile.id}`, { policy_id: policy.id }), 200);
  });
  after(async () => {
    await gh?.stop();
  });

  test('400 bad_request: not JSON, a JSON array or string, empty, wrong types', async () => {
    await assertUnchanged(gh, async () => {
      expectError(await gh.api('POST', '/v1/clients', 'this is not JSON'), 400, 'bad_request');
      expectError(await gh.api('POST', '/v1/clients', '{"name": "x"'), 400, 'bad_request');
      expectError(await gh.api('POST', '/v1/clients', '[{"name":"x"}]'), 400, 'bad_request');
      expectError(await gh.api('POST', '/v1/clients', '"x"'), 400, 'bad_request');
      expectError(await gh.api('POST', '/v1/clients', ''), 400, 'bad_request');
      expectError(await gh.api('POST', '/v1/clients', '{"name":"a","name":"b"}'), 400, 'bad_request');
      expectError(await gh.api('POST', '/v1/clients', { name: 'x', active: 'yes' }), 400, 'bad_request', 'active');
      expectError(await gh.api('POST', '/v1/clients', { name: 42 }), 400, 'bad_request', 'name');
      expectError(await gh.api('POST', '/v1/collections', { name: 'x', path: '/x', upstream: UPSTREAM, timeout_ms: '30000' }), 400, 'bad_request', 'timeout_ms');
      expectError(await gh.api('PATCH', `/v1/clients/${seeded.client.id}`, { active: 1 }), 400, 'bad_request', 'active');
      expectError(await gh.api('PATCH', `/v1/clients/${seeded.client.id}`, '[]'), 400, 'bad_request');
      expectError(await gh.api('PUT', '/v1/config', '[]'), 400, 'bad_request');
    });
  });

  test('401 unauthorized: no token, a wrong token, Basic auth; the message never holds a token', async () => {
    const wrong = `${gh.token}x`;
    const basic = Buffer.from(`admin:${gh.token}`).toString('base64');
    expectStatus(await gh.api('GET', '/v1/clients'), 200);
    await assertUnchanged(gh, async () => {
      const cases = [
        await gh.api('GET', '/v1/clients', undefined, { token: null }),
        await gh.api('POST', '/v1/clients', { name: 'sneaky' }, { token: null }),
        await gh.api('GET', '/v1/clients', undefined, { token: wrong }),
        await gh.api('GET', '/v1/clients', undefined, { token: 'gha_wrong-token-that-is-long-enough' }),
        await gh.api('GET', '/v1/clients', undefined, { token: null, headers: { authorization: `Basic ${basic}` } }),
        await gh.api('GET', '/v1/clients', undefined, { token: null, headers: { authorization: gh.token } }),
        await gh.api('GET', '/v1/config', undefined, { token: null }),
        await gh.api('GET', '/readyz', undefined, { token: null }),
        await gh.api('GET', '/metrics', undefined, { token: null }),
      ];
      for (const r of cases) {
        const body = expectError(r, 401, 'unauthorized');
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm=/, `${r.request}: WWW-Authenticate`);
        for (const secret of [gh.token, wrong, basic, gh.token.slice(4)]) {
          assert.equal(r.text.includes(secret), false, `${r.request}: the answer does not echo a token`);
        }
        for (const [, value] of r.headers) assert.equal(value.includes(gh.token.slice(4)), false, 'no header echoes the token');
        assert.ok(body.message.length < 200);
      }
    });
  });

  test('404 not_found: unknown ids of every kind, unknown paths', async () => {
    await assertUnchanged(gh, async () => {
      for (const path of ['/v1/collections/col_AAAAAAAAAAAAAAAA', '/v1/endpoints/ep_AAAAAAAAAAAAAAAA',
        '/v1/clients/cli_AAAAAAAAAAAAAAAA', '/v1/profiles/ap_AAAAAAAAAAAAAAAA', '/v1/policies/pol_AAAAAAAAAAAAAAAA',
        '/v1/providers/prv_AAAAAAAAAAAAAAAA', '/v1/clients/not-an-id', `/v1/clients/${seeded.collection.id}`]) {
        expectError(await gh.api('GET', path), 404, 'not_found');
      }
      expectError(await gh.api('PATCH', '/v1/clients/cli_AAAAAAAAAAAAAAAA', { name: 'x' }), 404, 'not_found');
      expectError(await gh.api('DELETE', '/v1/policies/pol_AAAAAAAAAAAAAAAA'), 404, 'not_found');
      expectError(await gh.api('POST', '/v1/providers/prv_AAAAAAAAAAAAAAAA/refresh'), 404, 'not_found');
      for (const path of ['/v1/nothing', '/v2/clients', '/', '/v1/clients/x/y', '/v1/clients/', '/v1']) {
        expectError(await gh.api('GET', path), 404, 'not_found');
      }
    });
  });

  test('405 on a known path with another method, with Allow', async () => {
    await assertUnchanged(gh, async () => {
      const cases = [
        ['PUT', '/v1/clients', ['GET', 'POST']],
        ['DELETE', '/v1/collections', ['GET', 'POST']],
        ['POST', `/v1/clients/${seeded.client.id}`, ['DELETE', 'GET', 'PATCH']],
        ['PUT', `/v1/profiles/${seeded.profile.id}`, ['DELETE', 'GET', 'PATCH']],
        ['DELETE', '/v1/config', ['GET', 'PUT']],
        ['POST', '/healthz', ['GET']],
        ['DELETE', '/v1/providers', ['GET']],
        ['GET', '/v1/providers/prv_AAAAAAAAAAAAAAAA/refresh', ['POST']],
        ['PATCH', `/v1/profiles/${seeded.profile.id}/keys`, ['GET', 'POST']],
      ];
      for (const [method, path, allow] of cases) {
        const r = await gh.api(method, path, method === 'PUT' || method === 'POST' || method === 'PATCH' ? {} : undefined);
        expectError(r, 405, 'method_not_allowed');
        const got = (r.headers.get('allow') ?? '').split(',').map((m) => m.trim()).filter(Boolean).sort();
        assert.deepEqual(got, allow, `${method} ${path}: Allow`);
      }
    });
  });

  test('409 conflict: duplicate name or path, overlapping paths, deleting what is in use', async () => {
    const { collection, client, profile } = seeded;
    await assertUnchanged(gh, async () => {
      expectError(await gh.api('POST', '/v1/collections', { name: 'another', path: collection.path, upstream: UPSTREAM }), 409, 'conflict', 'path');
      expectError(await gh.api('POST', '/v1/collections', { name: collection.name, path: '/unique-path', upstream: UPSTREAM }), 409, 'conflict', 'name');
      expectError(await gh.api('POST', '/v1/clients', { name: client.name }), 409, 'conflict', 'name');
      expectError(await gh.api('POST', '/v1/policies', { name: policy.name }), 409, 'conflict', 'name');
      expectError(await gh.api('POST', '/v1/profiles', { client_id: client.id, name: profile.name, auth_type: 'token' }), 409, 'conflict');
      expectError(await gh.api('POST', `/v1/collections/${withEndpoint.id}/endpoints`, { method: 'GET', path: '/' }), 409, 'conflict');
      // /a and /a/b overlap by segments, whichever comes first
      expectError(await gh.api('POST', '/v1/collections', { name: 'below', path: `${collection.path}/b`, upstream: UPSTREAM }), 409, 'conflict', 'path');
      expectError(await gh.api('POST', '/v1/collections', { name: 'above', path: '/with', upstream: UPSTREAM }), 409, 'conflict', 'path');
      expectError(await gh.api('PATCH', `/v1/collections/${withEndpoint.id}`, { path: `${collection.path}/sub` }), 409, 'conflict', 'path');
      // deleting what is still in use
      expectError(await gh.api('DELETE', `/v1/collections/${withEndpoint.id}`), 409, 'conflict');
      expectError(await gh.api('DELETE', `/v1/collections/${collection.id}`), 409, 'conflict');
      expectError(await gh.api('DELETE', `/v1/clients/${client.id}`), 409, 'conflict');
      expectError(await gh.api('DELETE', `/v1/policies/${policy.id}`), 409, 'conflict');
    });
    // renaming to another client's name is a conflict too
    const second = await create(gh, '/v1/clients', { name: 'second-client' });
    await assertUnchanged(gh, async () => {
      expectError(await gh.api('PATCH', `/v1/clients/${second.id}`, { name: client.name }), 409, 'conflict', 'name');
    });
    expectStatus(await gh.api('PATCH', `/v1/clients/${second.id}`, { name: 'second-client' }), 200);
    expectStatus(await gh.api('DELETE', `/v1/clients/${second.id}`), 204);
    // a path that only shares a prefix of characters, not of segments, is fine
    const fine = await create(gh, '/v1/collections', { name: 'sibling', path: `${collection.path}x`, upstream: UPSTREAM });
    expectStatus(await gh.api('DELETE', `/v1/collections/${fine.id}`), 204);
  });

  test('413 for a body of 1 MiB + 1 byte (1 MiB itself is read)', async () => {
    await assertUnchanged(gh, async () => {
      const filler = (n) => {
        const head = '{"name":"big","description":"';
        const tail = '"}';
        return head + 'x'.repeat(n - head.length - tail.length) + tail;
      };
      expectError(await gh.api('POST', '/v1/clients', filler(1024 * 1024 + 1)), 413, 'payload_too_large');
      expectError(await gh.api('PUT', '/v1/config', filler(1024 * 1024 + 1)), 413, 'payload_too_large');
      const atLimit = await gh.api('POST', '/v1/clients', filler(1024 * 1024));
      assert.notEqual(atLimit.status, 413, '1 MiB is within the limit');
      expectError(atLimit, 422, 'validation_failed', 'description');
    });
  });

  test('422 validation_failed naming the field', async () => {
    const { client } = seeded;
    const weakPem = rsaPublicPem(1024);
    await assertUnchanged(gh, async () => {
      const cases = [
        ['/v1/clients', { name: 'x', colour: 'red' }, 'colour'],
        ['/v1/clients', { description: 'no name' }, 'name'],
        ['/v1/clients', { name: '' }, 'name'],
        ['/v1/clients', { name: 'x', id: 'cli_AAAAAAAAAAAAAAAA' }, 'id'],
        ['/v1/collections', { name: 'x', path: '/x' }, 'upstream'],
        ['/v1/collections', { name: 'x', upstream: UPSTREAM }, 'path'],
        ['/v1/collections', { name: 'x', path: '/x', upstream: 'ftp://files.example/x' }, 'upstream'],
        ['/v1/collections', { name: 'x', path: '/x', upstream: 'not a url' }, 'upstream'],
        ['/v1/collections', { name: 'x', path: '/x', upstream: 'http://user:pw@host.example/' }, 'upstream'],
        ['/v1/collections', { name: 'x', path: '/x', upstream: '/relative' }, 'upstream'],
        ['/v1/collections', { name: 'x', path: 'x', upstream: UPSTREAM }, 'path'],
        ['/v1/collections', { name: 'x', path: '/x/', upstream: UPSTREAM }, 'path'],
        ['/v1/collections', { name: 'x', path: '/x y', upstream: UPSTREAM }, 'path'],
        ['/v1/collections', { name: 'x', path: '/x', upstream: UPSTREAM, timeout_ms: 0 }, 'timeout_ms'],
        [`/v1/collections/${seeded.collection.id}/endpoints`, { method: 'FETCH', path: '/x' }, 'method'],
        [`/v1/collections/${seeded.collection.id}/endpoints`, { method: 'GET', path: 'x' }, 'path'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'token', leeway_seconds: 301 }, 'leeway_seconds'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'token', ip_allow: ['10.0.0.1/33'] }, 'ip_allow'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'token', ip_deny: ['10.0.0.1/8'] }, 'ip_deny'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'token', ip_allow: ['not-an-address'] }, 'ip_allow'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'jwt', jwt_key: weakPem, algorithms: ['RS256'] }, 'jwt_key'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'jwt', jwt_key: 'not a key at all' }, 'jwt_key'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'jwt' }, 'jwt_key'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'jwt', jwt_key: 'short-secret', algorithms: ['HS256'] }, 'jwt_key'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'magic' }, 'auth_type'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'token', algorithms: ['none'] }, 'algorithms'],
        ['/v1/profiles', { client_id: 'cli_AAAAAAAAAAAAAAAA', name: 'x', auth_type: 'token' }, 'client_id'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'token', collection_ids: ['col_AAAAAAAAAAAAAAAA'] }, 'collection_ids'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'token', policy_id: 'pol_AAAAAAAAAAAAAAAA' }, 'policy_id'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'oidc' }, 'oidc_discovery_url'],
        ['/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'oidc', oidc_discovery_url: 'http://127.0.0.1:1/not-discovery' }, 'oidc_discovery_url'],
        ['/v1/policies', { name: 'x', rate_limit: { requests: 0, per_seconds: 1 } }, 'rate_limit'],
        ['/v1/policies', { name: 'x', quota: { requests: 1 } }, 'quota'],
      ];
      for (const [path, body, field] of cases) {
        expectError(await gh.api('POST', path, body), 422, 'validation_failed', field);
      }
      // a valid leeway of 300 with a bad CIDR is still refused as a whole
      expectError(await gh.api('POST', '/v1/profiles', { client_id: client.id, name: 'x', auth_type: 'token', leeway_seconds: 300, ip_allow: ['300.1.1.1/8'] }), 422, 'validation_failed', 'ip_allow');
    });
    // the boundaries themselves are accepted
    const ok = await create(gh, '/v1/profiles', { client_id: client.id, name: 'leeway-300', auth_type: 'token', leeway_seconds: 300, ip_allow: ['10.0.0.0/8'] });
    assert.equal(ok.leeway_seconds, 300);
    expectStatus(await gh.api('DELETE', `/v1/profiles/${ok.id}`), 204);
  });
});

// ---------------------------------------------------------------------------------------------

describe('oidc profiles are checked against their IdP when saved (SPEC §4)', () => {
  let idp;
  let gh;
  let client;
  let fake;
  before(async () => {
    idp = await startIdp();
    gh = await startServer();
    client = await create(gh, '/v1/clients', { name: 'oidc-client' });
    // A discovery document whose issuer is not its own URL's.
    fake = await startHttpServer((req, res) => {
      const base = `http://127.0.0.1:${req.socket.localPort}`;
      if (req.url.endsWith('/.well-known/openid-configuration')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ issuer: 'https://someone-else.example', jwks_uri: idp.jwksUrl, token_endpoint: `${base}/token` }));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
  });
  after(async () => {
    await gh?.stop();
    await fake?.stop();
    await idp?.stop();
  });

  test('saving with the real discovery URL succeeds and the provider then has its keys', async () => {
    const prof = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'real-idp', auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl, audiences: [idp.resource],
    });
    assert.equal(prof.oidc_discovery_url, idp.discoveryUrl);
    assert.equal(prof.oidc_jwks_uri, null);
    assert.ok(idp.requests.discovery >= 1 && idp.requests.jwks >= 1, 'gatehouse fetched discovery and the key set');

    const providers = expectList(await gh.api('GET', '/v1/providers')).data;
    const p = providers.find((x) => x.issuer === idp.issuer);
    assert.ok(p, `a provider with issuer ${idp.issuer} in ${JSON.stringify(providers)}`);
    assert.match(p.id, idPattern('prv'));
    assert.equal(p.jwks_uri, idp.jwksUrl);
    assert.equal(p.url, idp.discoveryUrl);
    const published = idp.publicJwks().keys;
    assert.deepEqual(p.keys.map((k) => k.kid).sort(), published.map((k) => k.kid).sort());
    for (const jwk of published) {
      const k = p.keys.find((x) => x.kid === jwk.kid);
      assert.equal(k.kty, jwk.kty);
      assert.equal(k.alg, jwk.alg);
      if (jwk.crv) assert.equal(k.crv, jwk.crv);
    }
    assert.match(p.fetched_at, TIME);
    assert.match(p.next_refresh_at, TIME);
    assert.ok(p.next_refresh_at > p.fetched_at, 'the next refresh is later than the fetch');
    assert.equal(p.stale, false);
    assert.equal(p.last_error ?? null, null);

    assert.deepEqual(expectStatus(await gh.api('GET', `/v1/providers/${p.id}`), 200).keys, p.keys);
  });

  test('POST /v1/providers/{id}/refresh fetches now: a rotated key shows', async () => {
    const p = expectList(await gh.api('GET', '/v1/providers')).data.find((x) => x.issuer === idp.issuer);
    const jwksBefore = idp.requests.jwks;
    const { kid } = await idp.rotate();
    const refreshed = expectStatus(await gh.api('POST', `/v1/providers/${p.id}/refresh`), 200);
    assert.ok(idp.requests.jwks > jwksBefore, 'the key set was fetched again');
    assert.equal(refreshed.id, p.id);
    assert.ok(refreshed.keys.some((k) => k.kid === kid), `the new kid ${kid} is listed`);
    assert.equal(refreshed.stale, false);
    const again = expectStatus(await gh.api('GET', `/v1/providers/${p.id}`), 200);
    assert.ok(again.keys.some((k) => k.kid === kid));
  });

  test('a discovery document whose issuer does not match its URL: 422 on oidc_discovery_url; ?validate=false saves', async () => {
    const url = `${fake.url}/tenant/.well-known/openid-configuration`;
    const body = { client_id: client.id, name: 'wrong-issuer', auth_type: 'oidc', oidc_discovery_url: url };
    const err = await assertUnchanged(gh, async () => expectError(await gh.api('POST', '/v1/profiles', body), 422, 'validation_failed', 'oidc_discovery_url'));
    assert.match(err.message, /issuer/, 'the message names the issuer problem');
    assert.match(err.message, /someone-else\.example/, 'the message says which issuer the document has');

    const saved = await create(gh, '/v1/profiles?validate=false', body);
    assert.equal(saved.oidc_discovery_url, url);
    expectStatus(await gh.api('GET', `/v1/profiles/${saved.id}`), 200);
  });

  test('a jwks_uri where nothing listens: 422 on oidc_jwks_uri; ?validate=false saves', async () => {
    const jwks = `http://127.0.0.1:${await unusedPort()}/jwks`;
    const body = { client_id: client.id, name: 'dead-jwks', auth_type: 'oidc', oidc_jwks_uri: jwks };
    await assertUnchanged(gh, async () => expectError(await gh.api('POST', '/v1/profiles', body), 422, 'validation_failed', 'oidc_jwks_uri'));
    const saved = await create(gh, '/v1/profiles?validate=false', body);
    assert.equal(saved.oidc_jwks_uri, jwks);
  });

  test('PUT /v1/config checks the IdP of new or changed oidc profiles; ?validate=false applies; unchanged ones are not checked again', async () => {
    const jwks = `http://127.0.0.1:${await unusedPort()}/jwks`;
    const base = await configOf(gh);
    const withDead = structuredClone(base);
    withDead.profiles.push({ id: 'ap_0000000000000000', client_id: client.id, name: 'applied-dead', auth_type: 'oidc', oidc_jwks_uri: jwks });
    const err = await assertUnchanged(gh, async () => expectError(await gh.api('PUT', '/v1/config', withDead), 422, 'validation_failed', 'profiles'));
    assert.match(err.message, /^profile ap_0000000000000000: oidc_jwks_uri: /, 'names the profile and its field');
    // the real IdP passes the same check
    const withReal = structuredClone(base);
    withReal.profiles.push({ id: 'ap_0000000000000001', client_id: client.id, name: 'applied-real', auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl });
    expectStatus(await gh.api('PUT', '/v1/config', withReal), 200);
    // ?validate=false applies the dead one; applying that configuration again checks nothing
    const now = await configOf(gh);
    now.profiles.push(withDead.profiles.at(-1));
    expectStatus(await gh.api('PUT', '/v1/config?validate=false', now), 200);
    const again = await configOf(gh);
    expectStatus(await gh.api('PUT', '/v1/config', again), 200);
    // but pointing a saved profile at another dead IdP is checked
    again.profiles.find((p) => p.id === 'ap_0000000000000000').oidc_jwks_uri = `${jwks}/moved`;
    await assertUnchanged(gh, async () => expectError(await gh.api('PUT', '/v1/config', again), 422, 'validation_failed', 'profiles'));
  });

  test('GET /v1/providers pages like every list (?limit=, next, ?after=)', async () => {
    const all = expectList(await gh.api('GET', '/v1/providers')).data;
    assert.ok(all.length >= 2, `at least two providers by now (${all.length})`);
    const seen = [];
    let path = '/v1/providers?limit=1';
    for (let i = 0; i <= all.length; i++) {
      const page = expectList(await gh.api('GET', path));
      assert.ok(page.data.length <= 1, `${path}: at most 1 item, got ${page.data.length}`);
      seen.push(...page.data.map((p) => p.id));
      if (page.next === null) break;
      path = `/v1/providers?limit=1&after=${encodeURIComponent(page.next)}`;
    }
    assert.deepEqual(seen.sort(), all.map((p) => p.id).sort(), 'the pages hold every provider once');
    expectError(await gh.api('GET', '/v1/providers?limit=0'), 422, 'validation_failed', 'limit');
  });

  test('PATCH of an oidc profile to a bad discovery URL is checked too (422, nothing changed)', async () => {
    const prof = expectList(await gh.api('GET', '/v1/profiles')).data.find((p) => p.name === 'real-idp');
    const url = `${fake.url}/patched/.well-known/openid-configuration`;
    await assertUnchanged(gh, async () => expectError(await gh.api('PATCH', `/v1/profiles/${prof.id}`, { oidc_discovery_url: url }), 422, 'validation_failed', 'oidc_discovery_url'));
  });
});

// ---------------------------------------------------------------------------------------------

describe('health, readiness and metrics', () => {
  let idp;
  let gh;
  let client;
  before(async () => {
    idp = await startIdp();
    gh = await startServer();
    client = await create(gh, '/v1/clients', { name: 'ready-client' });
  });
  after(async () => {
    await gh?.stop();
    await idp?.stop();
  });

  test('/healthz answers 200 without a token; /readyz 200 {"ready":true}; /metrics has gatehouse_store_up 1', async () => {
    expectStatus(await gh.api('GET', '/healthz', undefined, { token: null }), 200);
    const ready = expectStatus(await gh.api('GET', '/readyz'), 200);
    assert.equal(ready.ready, true);
    const m = await gh.api('GET', '/metrics', undefined, { raw: true });
    expectStatus(m, 200);
    assert.match(m.headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(m.text, /^gatehouse_store_up 1$/m);
    assert.match(m.text, /^# TYPE gatehouse_store_up gauge$/m);
  });

  test('an oidc profile adds provider lines to /metrics', async () => {
    await create(gh, '/v1/profiles', { client_id: client.id, name: 'good', auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl });
    const p = expectList(await gh.api('GET', '/v1/providers')).data.find((x) => x.issuer === idp.issuer);
    const m = await gh.api('GET', '/metrics', undefined, { raw: true });
    assert.match(m.text, new RegExp(`^gatehouse_provider_fetches_total\\{provider="${p.id}"\\} [1-9]\\d*$`, 'm'));
    assert.match(m.text, new RegExp(`^gatehouse_provider_available\\{provider="${p.id}"\\} 1$`, 'm'));
    assert.equal(expectStatus(await gh.api('GET', '/readyz'), 200).ready, true);
  });

  // Issue 10 item 5: one customer's broken IdP took the whole node out of its load balancer.
  test('/readyz stays 200 when an IdP is down and its provider has no keys; ?verbose lists it as unavailable', async () => {
    const jwks = `http://127.0.0.1:${await unusedPort()}/jwks`;
    await create(gh, '/v1/profiles?validate=false', { client_id: client.id, name: 'down', auth_type: 'oidc', oidc_jwks_uri: jwks });
    const p = await waitUntil(async () => expectList(await gh.api('GET', '/v1/providers')).data.find((x) => x.url === jwks), { what: 'the provider' });
    assert.deepEqual(p.keys, []);
    assert.equal(p.stale, true);
    // its health is in /v1/providers and /metrics ...
    await waitUntil(async () => {
      const x = await gh.api('GET', `/v1/providers/${p.id}`);
      return x.json?.last_error ? x : null;
    }, { what: 'last_error of the unreachable provider' });
    const m = await gh.api('GET', '/metrics', undefined, { raw: true });
    assert.match(m.text, new RegExp(`^gatehouse_provider_available\\{provider="${p.id}"\\} 0$`, 'm'));
    // ... and never in the node's readiness: the store and the configuration are fine
    const r = await gh.api('GET', '/readyz');
    assert.equal(r.status, 200, `/readyz: ${r.text}`);
    assert.deepEqual({ ready: r.json.ready, reasons: r.json.reasons, reachable: r.json.store?.reachable },
      { ready: true, reasons: [], reachable: true });
    // ?verbose says which providers are in trouble, and the status stays what it is
    for (const query of ['?verbose', '?verbose=true', '?verbose=1']) {
      const v = await gh.api('GET', `/readyz${query}`);
      assert.equal(v.status, 200, `/readyz${query}: ${v.text}`);
      assert.equal(v.json.ready, true);
      assert.deepEqual(v.json.reasons, []);
      assert.ok(Array.isArray(v.json.providers), `providers in ${v.text}`);
      const down = v.json.providers.find((x) => x.id === p.id);
      assert.ok(down, `the provider ${p.id} is listed: ${v.text}`);
      assert.equal(down.url, jwks);
      assert.equal(down.state, 'unavailable');
      assert.equal(down.available, false);
      assert.equal(down.keys, 0);
      assert.ok(down.last_error, `its last error: ${v.text}`);
      const good = v.json.providers.find((x) => x.issuer === idp.issuer);
      assert.ok(good, `the good provider is listed too: ${v.text}`);
      assert.equal(good.state, 'ok');
      assert.equal(good.available, true);
      assert.ok(good.keys >= 1);
    }
    const quiet = await gh.api('GET', '/readyz?verbose=false');
    assert.equal(quiet.json.providers, undefined, `?verbose=false is not verbose: ${quiet.text}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('providers follow the profiles that use them (SPEC §1: one per URL used by oidc profiles)', () => {
  // Each test has its own server: a provider left behind by one must not blur another's /readyz.
  let fake;
  before(async () => {
    fake = await startHttpServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer: 'https://not-this-one.example', jwks_uri: 'https://not-this-one.example/jwks' }));
    });
  });
  after(async () => {
    await fake?.stop();
  });

  /** The ids of providers with this URL, and the /readyz status: what the tests compare. */
  async function traces(gh, url) {
    const providers = expectList(await gh.api('GET', '/v1/providers')).data;
    const ready = await gh.api('GET', '/readyz');
    return { providers: providers.filter((p) => p.url === url).map((p) => p.id), readyz: ready.status, reasons: ready.json?.reasons ?? [] };
  }

  async function withServer(fn) {
    const gh = await startServer();
    try {
      const client = await create(gh, '/v1/clients', { name: 'prv-client' });
      await fn(gh, client);
    } finally {
      await gh.stop();
    }
  }

  test('a refused oidc profile (422) leaves no provider behind and /readyz stays 200', async () => {
    await withServer(async (gh, client) => {
      const url = `${fake.url}/refused/.well-known/openid-configuration`;
      expectError(await gh.api('POST', '/v1/profiles', { client_id: client.id, name: 'refused', auth_type: 'oidc', oidc_discovery_url: url }), 422, 'validation_failed', 'oidc_discovery_url');
      assert.deepEqual(await traces(gh, url), { providers: [], readyz: 200, reasons: [] },
        'a rejected write changes nothing: no provider for a URL that no saved profile uses');
    });
  });

  test('deleting the only profile of a provider removes the provider and its /readyz reason', async () => {
    await withServer(async (gh, client) => {
      const jwks = `http://127.0.0.1:${await unusedPort()}/jwks`;
      const prof = await create(gh, '/v1/profiles?validate=false', { client_id: client.id, name: 'gone', auth_type: 'oidc', oidc_jwks_uri: jwks });
      assert.equal((await traces(gh, jwks)).providers.length, 1, 'the saved profile has its provider');
      expectStatus(await gh.api('DELETE', `/v1/profiles/${prof.id}`), 204);
      assert.deepEqual(await traces(gh, jwks), { providers: [], readyz: 200, reasons: [] },
        'no provider for a URL that no profile uses any more');
    });
  });

  test('moving a profile to another jwks_uri drops the provider of the old one', async () => {
    await withServer(async (gh, client) => {
      const [a, b] = [`http://127.0.0.1:${await unusedPort()}/a/jwks`, `http://127.0.0.1:${await unusedPort()}/b/jwks`];
      const prof = await create(gh, '/v1/profiles?validate=false', { client_id: client.id, name: 'moves', auth_type: 'oidc', oidc_jwks_uri: a });
      expectStatus(await gh.api('PATCH', `/v1/profiles/${prof.id}?validate=false`, { oidc_jwks_uri: b }), 200);
      const urls = expectList(await gh.api('GET', '/v1/providers')).data.map((p) => p.url);
      assert.deepEqual(urls, [b], 'only the provider of the URL in use');
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('GET /v1/config, edit, PUT /v1/config', () => {
  let gh;
  let objs;
  before(async () => {
    gh = await startServer();
    const policy = await create(gh, '/v1/policies', { name: 'silver', rate_limit: { requests: 10, per_seconds: 1 } });
    const col = await create(gh, '/v1/collections', { name: 'catalog', path: '/catalog', upstream: UPSTREAM });
    const col2 = await create(gh, '/v1/collections', { name: 'billing', version: 'v2', path: '/billing/v2', upstream: 'https://billing.internal' });
    const ep = await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/products/:id' });
    const keep = await create(gh, '/v1/clients', { name: 'keeps-profiles', description: 'has a profile' });
    const lonely = await create(gh, '/v1/clients', { name: 'no-profiles', description: 'to be removed' });
    const pem = rsaPublicPem();
    const tok = await create(gh, '/v1/profiles', { client_id: keep.id, name: 'tok', auth_type: 'token', collection_ids: [col.id, col2.id], policy_id: policy.id });
    const jwt = await create(gh, '/v1/profiles', { client_id: keep.id, name: 'jwt', auth_type: 'jwt', jwt_key: pem, algorithms: ['RS256'] });
    const rotated = await create(gh, `/v1/profiles/${tok.id}/keys`, { grace_seconds: 600 });
    objs = { policy, col, col2, ep, keep, lonely, tok, jwt, rotated, pem };
  });
  after(async () => {
    await gh?.stop();
  });

  test('without ?secrets=true: no key hash and no jwt_key; with it: hashes (never plain keys) and jwt_key', async () => {
    const plain = await gh.api('GET', '/v1/config');
    const doc = expectStatus(plain, 200);
    for (const kind of ['policies', 'clients', 'collections', 'endpoints', 'profiles', 'keys']) {
      assert.ok(Array.isArray(doc[kind]), `${kind} is an array`);
    }
    assert.equal(typeof doc.generation, 'number');
    assert.equal(doc.keys.length, 3);
    for (const k of doc.keys) assert.equal(k.hash, undefined);
    assert.equal(plain.text.includes('jwt_key'), false);
    const secret = await gh.api('GET', '/v1/config?secrets=true');
    const sdoc = expectStatus(secret, 200);
    const hashes = new Map(sdoc.keys.map((k) => [k.id, k.hash]));
    assert.equal(hashes.get(objs.rotated.id), sha256Hex(objs.rotated.key));
    for (const key of [objs.tok.key, objs.jwt.key, objs.rotated.key]) {
      assert.equal(secret.text.includes(key), false, 'never a plain key');
      assert.ok([...hashes.values()].includes(sha256Hex(key)), 'its SHA-256 instead');
    }
    assert.equal(sdoc.profiles.find((p) => p.id === objs.jwt.id).jwt_key, objs.pem);
  });

  test('export, rename a collection and drop a client without profiles, apply: exactly that changes', async () => {
    const before = await configOf(gh);
    // so that any rewrite of an untouched object's updated_at would show
    await nextSecondAfter(before.keys.map((k) => k.created_at).sort().pop());
    const edited = structuredClone(before);
    edited.collections.find((c) => c.id === objs.col.id).name = 'catalog-renamed';
    edited.clients = edited.clients.filter((c) => c.id !== objs.lonely.id);
    // leaving an object out deletes it only with ?prune=true (issue 10, item 13)
    await assertUnchanged(gh, async () => expectError(await gh.api('PUT', '/v1/config', edited), 409, 'conflict'));
    const applied = await gh.api('PUT', '/v1/config?prune=true', edited);
    const summary = expectStatus(applied, 200);
    assert.equal(summary.collections, 2);
    assert.equal(summary.clients, 1);

    const now = await configOf(gh);
    assert.equal(now.generation, before.generation + 1, 'one apply is one generation');
    assert.deepEqual(now.clients.map((c) => c.id), [objs.keep.id]);
    expectError(await gh.api('GET', `/v1/clients/${objs.lonely.id}`), 404, 'not_found');
    const renamed = now.collections.find((c) => c.id === objs.col.id);
    assert.equal(renamed.name, 'catalog-renamed');
    const was = before.collections.find((c) => c.id === objs.col.id);
    assert.deepEqual({ ...renamed, name: was.name, updated_at: was.updated_at }, was, 'only the name (and updated_at) of the renamed collection change');
    assert.ok(renamed.updated_at >= was.updated_at);
    // everything else is exactly as exported, timestamps included
    const untouched = (doc) => ({
      ...doc,
      generation: 0,
      collections: doc.collections.filter((c) => c.id !== objs.col.id),
      clients: doc.clients.filter((c) => c.id !== objs.lonely.id),
    });
    const withoutUpdatedAt = (doc) => JSON.parse(JSON.stringify(doc, (k, v) => (k === 'updated_at' ? undefined : v)));
    assert.deepEqual(withoutUpdatedAt(untouched(now)), withoutUpdatedAt(untouched(before)),
      'every other object, keys and hashes included, is unchanged');
    assert.deepEqual(untouched(now), untouched(before),
      'the updated_at of the objects the apply did not change is kept (an apply that changes one name did not update everything)');
    // the keys, with their hashes, survived: the plain keys made before still hash to them
    for (const key of [objs.tok.key, objs.rotated.key, objs.jwt.key]) {
      assert.ok(now.keys.some((k) => k.hash === sha256Hex(key) && k.prefix === key.slice(0, 8)));
    }
    assert.deepEqual(expectList(await gh.api('GET', `/v1/profiles/${objs.tok.id}/keys`)).data.map((k) => k.id).sort(),
      before.keys.filter((k) => k.profile_id === objs.tok.id).map((k) => k.id).sort());
    assert.equal(expectStatus(await gh.api('GET', `/v1/collections/${objs.col.id}`), 200).name, 'catalog-renamed');
  });

  test('a PUT with one invalid object is refused and changes nothing', async () => {
    const before = await configOf(gh);
    const bad = (edit) => {
      const doc = structuredClone(before);
      edit(doc);
      return doc;
    };
    await assertUnchanged(gh, async () => {
      // a valid rename plus one bad upstream
      let r = await gh.api('PUT', '/v1/config', bad((d) => {
        d.clients[0].name = 'would-be-renamed';
        d.collections[0].upstream = 'ftp://nope.example';
      }));
      assert.ok(r.status >= 400 && r.status < 500, `4xx for a bad upstream: ${r.status} ${r.text}`);
      expectError(r, 422, 'validation_failed');
      // a client removed while a profile still names it
      r = await gh.api('PUT', '/v1/config', bad((d) => { d.clients = []; }));
      assert.ok(r.status >= 400 && r.status < 500, `4xx for a dangling client_id: ${r.status} ${r.text}`);
      // two collections whose paths overlap
      r = await gh.api('PUT', '/v1/config', bad((d) => { d.collections[1].path = `${d.collections[0].path}/below`; }));
      assert.ok(r.status >= 400 && r.status < 500, `4xx for overlapping paths: ${r.status} ${r.text}`);
      // an unknown member, a member of the wrong type, a body that is no object
      expectError(await gh.api('PUT', '/v1/config', bad((d) => { d.gateways = []; })), 422, 'validation_failed', 'gateways');
      expectError(await gh.api('PUT', '/v1/config', bad((d) => { d.clients = {}; })), 400, 'bad_request', 'clients');
      expectError(await gh.api('PUT', '/v1/config', 'nope'), 400, 'bad_request');
      // a key with neither its hash nor the id of a key the store has (an export without secrets
      // re-applies because its keys keep their stored hash by id; a new key cannot come that way)
      r = await gh.api('PUT', '/v1/config', bad((d) => { delete d.keys[0].hash; d.keys[0].id = 'key_ZZZZZZZZZZZZZZZZ'; }));
      assert.ok(r.status >= 400 && r.status < 500, `4xx for a new key without hash: ${r.status} ${r.text}`);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('restart on the same data directory', () => {
  let idp;
  let gh;
  let made;
  before(async () => {
    idp = await startIdp();
    gh = await startServer();
    const policy = await create(gh, '/v1/policies', { name: 'p', quota: { requests: 5, per_seconds: 60 } });
    const col = await create(gh, '/v1/collections', { name: 'c', path: '/c', upstream: UPSTREAM });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'DELETE', path: '/things/:id' });
    const client = await create(gh, '/v1/clients', { name: 'Ünïcødé "client" \\ 🚀', description: "'; DROP TABLE clients; --" });
    const tok = await create(gh, '/v1/profiles', { client_id: client.id, name: 'tok', auth_type: 'token', collection_ids: [col.id], policy_id: policy.id });
    await create(gh, '/v1/profiles', { client_id: client.id, name: 'jwt', auth_type: 'jwt', jwt_key: rsaPublicPem(), algorithms: ['RS256'] });
    await create(gh, '/v1/profiles', { client_id: client.id, name: 'oidc', auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl });
    made = { tok };
  });
  after(async () => {
    await gh?.stop();
    await idp?.stop();
  });

  test('every object is still there and the same admin token file is used', async () => {
    const tokenFile = join(gh.dir, 'admin-token');
    const tokenBefore = await readFile(tokenFile, 'utf8');
    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600, 'admin-token is 0600');
    assert.equal(tokenBefore.trim(), gh.token);
    const before = await configOf(gh);
    const providersBefore = expectList(await gh.api('GET', '/v1/providers')).data;

    const oldPid = gh.pid;
    const stopped = await gh.kill('SIGTERM');
    assert.equal(stopped.code, 0, `SIGTERM ends serve with status 0\n${stopped.stderr}`);
    await gh.start();
    assert.notEqual(gh.pid, oldPid);

    assert.equal(await readFile(tokenFile, 'utf8'), tokenBefore, 'the token file is not rewritten');
    assert.equal(gh.token, tokenBefore.trim());
    assert.equal(gh.output().stdout.includes('admin token written'), false, 'no new token is made');
    const afterwards = await configOf(gh);
    assert.deepEqual(afterwards, before);
    assert.ok(afterwards.keys.some((k) => k.hash === sha256Hex(made.tok.key)));

    const p = await waitUntil(async () => expectList(await gh.api('GET', '/v1/providers')).data.find((x) => x.issuer === idp.issuer && x.keys.length > 0), { what: 'the provider with keys' });
    assert.equal(p.id, providersBefore.find((x) => x.issuer === idp.issuer).id, 'provider ids are stable across restarts');
    assert.equal(expectStatus(await gh.api('GET', '/readyz'), 200).ready, true);
  });

  test('a restart while the IdP is down serves the keys kept in the store', async () => {
    const before = expectList(await gh.api('GET', '/v1/providers')).data.find((x) => x.issuer === idp.issuer);
    idp.setFailure(503);
    try {
      await gh.restart();
      const p = expectList(await gh.api('GET', '/v1/providers')).data.find((x) => x.id === before.id);
      assert.ok(p, 'the provider is known at once');
      assert.deepEqual(p.keys.map((k) => k.kid).sort(), before.keys.map((k) => k.kid).sort());
      assert.equal(p.issuer, idp.issuer);
      assert.equal(expectStatus(await gh.api('GET', '/readyz'), 200).ready, true);
    } finally {
      idp.setFailure(null);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('strange input is stored and returned byte for byte', () => {
  let gh;
  before(async () => {
    gh = await startServer();
  });
  after(async () => {
    await gh?.stop();
  });

  const STRANGE = [
    'double "quotes" and \'single\' ones',
    'back\\slash \\\\ \\n \\u0041 (literal backslashes)',
    "'; DROP TABLE clients; --",
    "Robert'); DELETE FROM collections;--",
    '" OR 1=1 --',
    '%s %n %x %% {0} ${env} $(id) `id`',
    '<script>alert(1)</script> &amp; &#x27;',
    'emoji 🚀🔥👩‍👩‍👧‍👦 🇫🇷 (ZWJ sequence and flags)',
    'RTL: שלום עולם — مرحبا بالعالم \u202e reversed \u202c',
    'combining: e\u0301 a\u0308 n\u0303 Z\u0351\u0352\u0353 (not normalized)',
    'CJK 漢字かなカナ 한국어 𠀋𠂢 (astral)',
    'zero\u200bwidth\ufeffBOM and \u00a0nbsp',
    'tab\tnew\nline\rcarriage',
    '   leading and trailing spaces   ',
    '\u2028line separator\u2029paragraph',
    'ⓤⓝⓘⓒⓞⓓⓔ ∑∫√ ½ ©®™',
  ];

  test('names and descriptions with quotes, backslashes, SQL, Unicode come back the same, everywhere', async () => {
    const made = [];
    for (const [i, text] of STRANGE.entries()) {
      // control characters are not allowed in names (they may be in descriptions)
      const name = /[\t\n\r]/.test(text) ? `strange ${i}` : text;
      const r = await gh.api('POST', '/v1/clients', { name, description: text });
      const c = expectStatus(r, 201);
      assert.equal(c.name, name);
      assert.equal(c.description, text);
      assert.ok(Buffer.from(c.description, 'utf8').equals(Buffer.from(text, 'utf8')), 'same bytes');
      made.push({ id: c.id, name, description: text });
    }
    const col = await create(gh, '/v1/collections', { name: STRANGE[3], path: '/strange', upstream: UPSTREAM });
    assert.equal(col.name, STRANGE[3]);
    const pol = await create(gh, '/v1/policies', { name: STRANGE[8] });
    assert.equal(pol.name, STRANGE[8]);

    const listed = expectList(await gh.api('GET', '/v1/clients?limit=1000')).data;
    const config = await configOf(gh);
    for (const m of made) {
      const got = expectStatus(await gh.api('GET', `/v1/clients/${m.id}`), 200);
      for (const c of [got, listed.find((x) => x.id === m.id), config.clients.find((x) => x.id === m.id)]) {
        assert.ok(c, `client ${m.id} is listed`);
        assert.ok(Buffer.from(c.name, 'utf8').equals(Buffer.from(m.name, 'utf8')), `name of ${m.id} byte-exact`);
        assert.ok(Buffer.from(c.description, 'utf8').equals(Buffer.from(m.description, 'utf8')), `description of ${m.id} byte-exact`);
      }
    }
    // the SQL fragments did nothing: the tables are all still there
    assert.equal(listed.length, STRANGE.length);
    assert.equal(config.collections.length, 1);

    // and the bytes survive a restart
    await gh.restart();
    for (const m of made) {
      const got = expectStatus(await gh.api('GET', `/v1/clients/${m.id}`), 200);
      assert.equal(got.name, m.name);
      assert.equal(got.description, m.description);
    }
  });

  test('a 1000-byte name is accepted, 1001 bytes is 422', async () => {
    const name1000 = 'é'.repeat(500); // 2 bytes each
    assert.equal(Buffer.byteLength(name1000), 1000);
    const ok = await create(gh, '/v1/clients', { name: name1000 });
    assert.equal(ok.name, name1000);
    assert.equal(expectStatus(await gh.api('GET', `/v1/clients/${ok.id}`), 200).name, name1000);
    const name1001 = `a${name1000}`;
    await assertUnchanged(gh, async () => {
      expectError(await gh.api('POST', '/v1/clients', { name: name1001 }), 422, 'validation_failed', 'name');
      expectError(await gh.api('POST', '/v1/clients', { name: 'x'.repeat(1001) }), 422, 'validation_failed', 'name');
      expectError(await gh.api('PATCH', `/v1/clients/${ok.id}`, { name: name1001 }), 422, 'validation_failed', 'name');
    });
    const ascii = await create(gh, '/v1/clients', { name: 'y'.repeat(1000) });
    assert.equal(ascii.name.length, 1000);
  });

  test('NUL (\\u0000), lone surrogates, invalid UTF-8 and control characters are refused, never stored cut', async () => {
    const before = expectList(await gh.api('GET', '/v1/clients?limit=1000')).data.length;
    await assertUnchanged(gh, async () => {
      const bodies = [
        '{"name":"nul\\u0000inside"}',
        '{"name":"\\u0000"}',
        '{"name":"ok","description":"cut\\u0000here"}',
        '{"name\\u0000x":"key with NUL"}',
        '{"name":"lone \\ud800 surrogate"}',
        '{"name":"lone \\udc00 low surrogate"}',
        Buffer.concat([Buffer.from('{"name":"bad '), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
        Buffer.concat([Buffer.from('{"name":"overlong '), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]),
      ];
      for (const body of bodies) {
        const r = await gh.api('POST', '/v1/clients', body);
        assert.ok(r.status === 400 || r.status === 422, `${JSON.stringify(body.toString())} is refused with 400 or 422, got ${r.status} ${r.text}`);
      }
      for (const name of ['bell\u0007', 'esc\u001b[31m', 'del\u007f', 'c1\u0085', 'new\nline']) {
        expectError(await gh.api('POST', '/v1/clients', { name }), 422, 'validation_failed', 'name');
      }
    });
    assert.equal(expectList(await gh.api('GET', '/v1/clients?limit=1000')).data.length, before);
    assert.equal(expectList(await gh.api('GET', '/v1/clients?limit=1000')).data.some((c) => c.name.startsWith('nul') || c.name === 'ok'), false);
  });
});
