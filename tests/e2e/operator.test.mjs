// SPDX-License-Identifier: Apache-2.0
// What an operator meets around the objects (issue 10, items 6, 12, 13, 14, 22): deactivating or
// deleting an oidc profile while its IdP is down, `config apply` with a plan, --prune and
// --dry-run, keys for profiles that an apply creates, `providers refresh` of an IdP that is down,
// /metrics families with their HELP, explain --client-ip, the URL column of `providers list`, the
// audit log through GET /v1/audit and `gatehouse audit`, and one log line per admin change.
// The real binary through the admin API and the CLI; an IdP that is down is a closed port on
// 127.0.0.1.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { gatehouseBin, haveGatehouse, run } from './lib/run.mjs';
import { makeTempDir, startServer, unusedPort, waitUntil } from './lib/server.mjs';
import {
  assertUnchanged, configOf, expectError, expectList, expectStatus, idPattern, PLAIN_KEY, TIME,
} from './lib/check.mjs';
import { parseTable } from './lib/cli.mjs';

if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const UPSTREAM = 'http://127.0.0.1:9/base';
const CLEAN_ENV = { GATEHOUSE_ADMIN_TOKEN: undefined, GATEHOUSE_ADMIN_URL: undefined, GATEHOUSE_DB: undefined };

function show(r) {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

function cliFor(gh) {
  return async (args) => {
    const r = await run([...args, '--admin-url', gh.url], {
      env: { ...CLEAN_ENV, GATEHOUSE_ADMIN_TOKEN: gh.token }, timeoutMs: 20000,
    });
    r.command = `gatehouse ${args.join(' ')}`;
    assert.equal(`${r.stdout}${r.stderr}`.includes(gh.token), false, `${r.command} printed the admin token`);
    return r;
  };
}

async function create(gh, path, body) {
  return expectStatus(await gh.api('POST', path, body), 201);
}

/** A JWKS URI on a loopback port where nothing listens: an IdP that is down. */
async function deadJwks() {
  return `http://127.0.0.1:${await unusedPort()}/jwks`;
}

// ---------------------------------------------------------------------------------------------

describe('item 12: deactivating or deleting never depends on the IdP', () => {
  let gh;
  let cli;
  let client;
  before(async () => {
    gh = await startServer();
    cli = cliFor(gh);
    client = await create(gh, '/v1/clients', { name: 'idp-down' });
  });
  after(async () => {
    await gh?.stop();
  });

  test('PATCH active=false, a rename, DELETE: no IdP check; reactivating is checked (422 naming ?validate=false)', async () => {
    const jwks = await deadJwks();
    const prof = await create(gh, '/v1/profiles?validate=false', {
      client_id: client.id, name: 'down', auth_type: 'oidc', oidc_jwks_uri: jwks,
    });
    // changes that leave the IdP as it is: never checked
    let r = expectStatus(await gh.api('PATCH', `/v1/profiles/${prof.id}`, { name: 'down-renamed' }), 200);
    assert.equal(r.name, 'down-renamed');
    r = expectStatus(await gh.api('PATCH', `/v1/profiles/${prof.id}`, { active: false }), 200);
    assert.equal(r.active, false);
    // an inactive profile may even move to another IdP that is down: it is not used
    r = expectStatus(await gh.api('PATCH', `/v1/profiles/${prof.id}`, { oidc_jwks_uri: `${jwks}/moved` }), 200);
    // becoming active again is checked, and the hint names the API's flag
    const err = await assertUnchanged(gh, async () => expectError(
      await gh.api('PATCH', `/v1/profiles/${prof.id}`, { active: true }), 422, 'validation_failed', 'oidc_jwks_uri',
    ));
    assert.match(err.message, /\?validate=false/);
    expectStatus(await gh.api('PATCH', `/v1/profiles/${prof.id}?validate=false`, { active: true }), 200);
    expectStatus(await gh.api('DELETE', `/v1/profiles/${prof.id}`), 204);
  });

  test('the CLI: profiles update --active false exits 0; --active true is refused naming --no-validate, not the API\'s flag', async () => {
    const prof = await create(gh, '/v1/profiles?validate=false', {
      client_id: client.id, name: 'down-cli', auth_type: 'oidc', oidc_jwks_uri: await deadJwks(),
    });
    let r = await cli(['profiles', 'update', prof.id, '--active', 'false']);
    assert.equal(r.code, 0, show(r));
    r = await cli(['profiles', 'update', prof.id, '--active', 'true']);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /--no-validate/, show(r));
    assert.doesNotMatch(r.stderr, /\?validate=false/, show(r));
    r = await cli(['profiles', 'update', prof.id, '--active', 'true', '--no-validate']);
    assert.equal(r.code, 0, show(r));
    r = await cli(['profiles', 'delete', prof.id]);
    assert.equal(r.code, 0, show(r));
  });

  test('PUT /v1/config: a new inactive profile and the deactivation of a saved one are not checked; activation is', async () => {
    const jwks = await deadJwks();
    const saved = await create(gh, '/v1/profiles?validate=false', {
      client_id: client.id, name: 'down-config', auth_type: 'oidc', oidc_jwks_uri: jwks,
    });
    const doc = await configOf(gh);
    doc.profiles.find((p) => p.id === saved.id).active = false;
    doc.profiles.push({
      id: 'ap_000000000000inactive', client_id: client.id, name: 'new-inactive', auth_type: 'oidc', oidc_jwks_uri: `${jwks}/new`, active: false,
    });
    expectStatus(await gh.api('PUT', '/v1/config', doc), 200);
    const now = await configOf(gh);
    assert.equal(now.profiles.find((p) => p.id === saved.id).active, false);
    now.profiles.find((p) => p.id === saved.id).active = true;
    const err = await assertUnchanged(gh, async () => expectError(await gh.api('PUT', '/v1/config', now), 422, 'validation_failed', 'profiles'));
    assert.match(err.message, /\?validate=false/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('items 13 and 14: config apply shows its plan, deletes only with prune, and keys new profiles', () => {
  let gh;
  let cli;
  let tmp;
  let seed;
  before(async () => {
    gh = await startServer();
    cli = cliFor(gh);
    tmp = await makeTempDir('gatehouse-operator-');
    const col = await create(gh, '/v1/collections', { name: 'plan-col', path: '/plan', upstream: UPSTREAM });
    const client = await create(gh, '/v1/clients', { name: 'plan-client' });
    const gone = await create(gh, '/v1/clients', { name: 'plan-gone' });
    const prof = await create(gh, '/v1/profiles', { client_id: client.id, name: 'plan-prof', auth_type: 'token', collection_ids: [col.id] });
    seed = { col, client, gone, prof };
  });
  after(async () => {
    await gh?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('PUT /v1/config of {} without ?prune=true: 409 with the plan, nothing deleted', async () => {
    const r = await assertUnchanged(gh, async () => expectError(await gh.api('PUT', '/v1/config', {}), 409, 'conflict'));
    assert.match(r.message, /\?prune=true/);
    assert.deepEqual(r.plan.clients.deleted.map((x) => x.id).sort(), [seed.client.id, seed.gone.id].sort());
    assert.deepEqual(r.plan.profiles.deleted.map((x) => x.id), [seed.prof.id]);
    assert.equal(r.plan.keys.deleted.length, 1);
    assert.equal(r.plan.collections.deleted[0].name, 'plan-col');
  });

  test('?dry_run=true answers the plan (created, changed, deleted per kind) and changes nothing', async () => {
    const doc = await configOf(gh);
    doc.clients.find((c) => c.id === seed.client.id).description = 'changed';
    doc.clients = doc.clients.filter((c) => c.id !== seed.gone.id);
    doc.policies.push({ id: 'pol_0000000000000dry', name: 'dry-policy' });
    const plan = await assertUnchanged(gh, async () => expectStatus(await gh.api('PUT', '/v1/config?dry_run=true&prune=true', doc), 200));
    assert.equal(plan.dry_run, true);
    assert.deepEqual(plan.plan.clients.changed.map((x) => x.id), [seed.client.id]);
    assert.deepEqual(plan.plan.clients.deleted.map((x) => x.id), [seed.gone.id]);
    assert.deepEqual(plan.plan.policies.created.map((x) => x.id), ['pol_0000000000000dry']);
    assert.equal(plan.plan.collections.unchanged, 1);
    assert.equal(plan.clients, 1, 'the counts are those the apply would leave');
    assert.equal(plan.policies, 1);
  });

  test('a new profile without keys gets one, shown once in the answer; the counts are the true ones', async () => {
    const doc = await configOf(gh);
    delete doc.keys; // the keys the store has are kept
    doc.profiles.push({ id: 'ap_00000000000newkey', client_id: seed.client.id, name: 'applied-token', auth_type: 'token', collection_ids: [seed.col.id] });
    const r = await gh.api('PUT', '/v1/config', doc);
    const body = expectStatus(r, 200);
    assert.equal(body.new_keys.length, 1, r.text);
    const [k] = body.new_keys;
    assert.equal(k.profile_id, 'ap_00000000000newkey');
    assert.equal(k.profile_name, 'applied-token');
    assert.match(k.key, PLAIN_KEY);
    assert.match(k.id, idPattern('key'));
    assert.equal(body.keys, 2, 'the old profile\'s key and the new one');
    assert.deepEqual(body.plan.profiles.created.map((x) => x.id), ['ap_00000000000newkey']);
    const keys = expectList(await gh.api('GET', '/v1/profiles/ap_00000000000newkey/keys')).data;
    assert.deepEqual(keys.map((x) => x.prefix), [k.key.slice(0, 8)]);
    // applying the same document again makes no other key
    const again = expectStatus(await gh.api('PUT', '/v1/config', doc), 200);
    assert.deepEqual(again.new_keys, []);
    assert.equal(again.keys, 2);
  });

  test('?prune=true deletes what the document leaves out; the summary counts what remains (keys: 0)', async () => {
    const r = expectStatus(await gh.api('PUT', '/v1/config?prune=true', { collections: [], clients: [], profiles: [], policies: [], endpoints: [] }), 200);
    for (const kind of ['collections', 'endpoints', 'clients', 'profiles', 'policies', 'keys']) assert.equal(r[kind], 0, `${kind}: ${JSON.stringify(r)}`);
    const now = await configOf(gh);
    assert.equal(now.keys.length, 0);
    assert.equal(now.clients.length, 0);
  });

  test('the CLI: apply without --prune is refused with the plan and names --prune; --dry-run prints the plan; new keys are printed with their profile', async () => {
    const col = await create(gh, '/v1/collections', { name: 'cli-col', path: '/cli-plan', upstream: UPSTREAM });
    const client = await create(gh, '/v1/clients', { name: 'cli-plan-client' });
    const file = join(tmp, 'apply.json');
    await writeFile(file, '{}');
    let r = await assertUnchanged(gh, () => cli(['config', 'apply', file]));
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /--prune/, show(r));
    assert.doesNotMatch(r.stderr, /\?prune=true/, show(r));
    assert.match(r.stderr, new RegExp(`delete +collection +${col.id}`), show(r));

    const doc = await configOf(gh);
    doc.profiles.push({ id: 'ap_0000000000clinew', client_id: client.id, name: 'cli-new-profile', auth_type: 'token', collection_ids: [col.id] });
    await writeFile(file, JSON.stringify(doc));
    r = await assertUnchanged(gh, () => cli(['config', 'apply', '--dry-run', file]));
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /create +profile +ap_0000000000clinew/, show(r));
    assert.doesNotMatch(r.stdout, /gk_/, show(r));

    r = await cli(['config', 'apply', file]);
    assert.equal(r.code, 0, show(r));
    const m = /ap_0000000000clinew \(cli-new-profile\): (gk_\S+)/.exec(r.stdout);
    assert.ok(m, show(r));
    assert.match(m[1], PLAIN_KEY);

    await writeFile(file, '{}');
    r = await cli(['config', 'apply', '--prune', file]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^keys: +0$/m, show(r));
    assert.equal((await configOf(gh)).collections.length, 0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('item 22: providers refresh, metrics HELP, explain --client-ip, providers URL, the audit log', () => {
  let gh;
  let cli;
  let client;
  before(async () => {
    gh = await startServer();
    cli = cliFor(gh);
    client = await create(gh, '/v1/clients', { name: 'item22' });
  });
  after(async () => {
    await gh?.stop();
  });

  test('refreshing a provider whose IdP is down: 502 from the API, exit 1 saying why from the CLI', async () => {
    const jwks = await deadJwks();
    await create(gh, '/v1/profiles?validate=false', { client_id: client.id, name: 'refresh-down', auth_type: 'oidc', oidc_jwks_uri: jwks });
    const p = await waitUntil(async () => expectList(await gh.api('GET', '/v1/providers')).data.find((x) => x.url === jwks), { what: 'the provider' });
    const err = expectError(await gh.api('POST', `/v1/providers/${p.id}/refresh`), 502, 'bad_gateway');
    assert.match(err.message, /refresh/);
    assert.equal(err.provider.id, p.id);
    const r = await cli(['providers', 'refresh', p.id]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /^gatehouse: 502 bad_gateway: .*refresh/m, show(r));
    // providers list has the URL column
    const table = parseTable((await cli(['providers', 'list'])).stdout);
    assert.ok(table.headers.includes('URL'), table.headers.join(' '));
    assert.equal(table.rows.find((row) => row.ID === p.id).URL, jwks);
  });

  test('every metric family that has a # TYPE has a # HELP', async () => {
    const m = await gh.api('GET', '/metrics', undefined, { raw: true });
    const types = [...m.text.matchAll(/^# TYPE (\S+) /gm)].map((x) => x[1]);
    const helps = new Set([...m.text.matchAll(/^# HELP (\S+) /gm)].map((x) => x[1]));
    assert.ok(types.length > 5, m.text);
    assert.deepEqual(types.filter((t) => !helps.has(t)), [], 'families without # HELP');
  });

  test('explain --client-ip decides with that address (ip_deny)', async () => {
    const col = await create(gh, '/v1/collections', { name: 'ip-col', path: '/ip', upstream: UPSTREAM });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/x' });
    const prof = await create(gh, '/v1/profiles', { client_id: client.id, name: 'ip-prof', auth_type: 'token', collection_ids: [col.id], ip_deny: ['10.0.0.0/8'] });
    const base = ['explain', '--method', 'GET', '--path', '/ip/x', '--header', `api-token: ${prof.key}`, '--json'];
    let r = await cli([...base, '--client-ip', '10.1.2.3']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.json().status, 403);
    r = await cli([...base, '--client-ip', '192.0.2.1']);
    assert.equal(r.json().status, 200, show(r));
  });

  test('GET /v1/audit: newest first, paged, filtered by kind and id; gatehouse audit shows it', async () => {
    const a = await create(gh, '/v1/clients', { name: 'audited' });
    expectStatus(await gh.api('PATCH', `/v1/clients/${a.id}`, { description: 'x' }), 200);
    expectStatus(await gh.api('DELETE', `/v1/clients/${a.id}`), 204);
    const mine = expectList(await gh.api('GET', `/v1/audit?id=${a.id}`)).data;
    assert.deepEqual(mine.map((e) => e.action), ['delete', 'update', 'create'], JSON.stringify(mine));
    for (const e of mine) {
      assert.equal(e.kind, 'clients');
      assert.equal(e.id, a.id);
      assert.equal(e.actor, 'bootstrap');
      assert.match(e.at, TIME);
    }
    const page = expectList(await gh.api('GET', `/v1/audit?id=${a.id}&limit=2`));
    assert.equal(page.data.length, 2);
    assert.equal(typeof page.next, 'string');
    const rest = expectList(await gh.api('GET', `/v1/audit?id=${a.id}&limit=2&after=${encodeURIComponent(page.next)}`));
    assert.deepEqual(rest.data.map((e) => e.action), ['create']);
    assert.equal(rest.next, null);
    const profiles = expectList(await gh.api('GET', '/v1/audit?kind=profiles')).data;
    assert.ok(profiles.length >= 1 && profiles.every((e) => e.kind === 'profiles'));
    expectError(await gh.api('GET', '/v1/audit?limit=0'), 422, 'validation_failed', 'limit');
    // a misspelt kind is an error, not an empty page that reads as "nothing happened"
    expectError(await gh.api('GET', '/v1/audit?kind=profils'), 422, 'validation_failed', 'kind');
    assert.ok(expectList(await gh.api('GET', '/v1/audit?kind=profile')).data.every((e) => e.kind === 'profiles'));

    let r = await cli(['audit', '--id', a.id]);
    assert.equal(r.code, 0, show(r));
    const t = parseTable(r.stdout);
    assert.deepEqual(t.rows.map((row) => row.ACTION), ['delete', 'update', 'create'], show(r));
    r = await cli(['audit', '--kind', 'clients', '--limit', '1', '--json']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.json().data.length, 1);
    assert.equal(r.json().data[0].id, a.id);
  });
});

// ---------------------------------------------------------------------------------------------

describe('item 6: each admin change is one JSON log line with kind, id, action and actor, never a secret', () => {
  let gh;
  before(async () => {
    gh = await startServer();
  });
  after(async () => {
    await gh?.stop();
  });

  function changes() {
    return gh.output().stdout.split('\n').filter((l) => l.includes('"admin change"')).map((l) => JSON.parse(l));
  }

  test('create, update, delete, key rotation and config apply are logged; no key, secret or token', async () => {
    const c = await create(gh, '/v1/clients', { name: 'logged' });
    const secret = randomBytes(40).toString('base64url');
    const jwt = await create(gh, '/v1/profiles', { client_id: c.id, name: 'hs', auth_type: 'jwt', jwt_key: secret, algorithms: ['HS256'] });
    const key = await create(gh, `/v1/profiles/${jwt.id}/keys`, {});
    expectStatus(await gh.api('PATCH', `/v1/clients/${c.id}`, { description: 'x' }), 200);
    expectStatus(await gh.api('DELETE', `/v1/profiles/${jwt.id}`), 204);
    const doc = await configOf(gh);
    expectStatus(await gh.api('PUT', '/v1/config', doc), 200);
    const lines = await waitUntil(() => (changes().length >= 6 ? changes() : null), { what: 'six admin change lines' });
    const find = (action, kind, id) => lines.find((l) => l.action === action && l.kind === kind && (id === undefined || l.id === id));
    assert.ok(find('create', 'clients', c.id), JSON.stringify(lines));
    assert.ok(find('create', 'profiles', jwt.id));
    assert.ok(find('rotate', 'keys', key.id));
    assert.ok(find('update', 'clients', c.id));
    assert.ok(find('delete', 'profiles', jwt.id));
    assert.ok(find('apply', 'config'));
    for (const l of lines) {
      assert.equal(l.level, 'info');
      assert.equal(l.actor, 'bootstrap');
      assert.match(l.time, TIME);
    }
    const out = gh.output().stdout;
    for (const s of [secret, jwt.key, key.key, gh.token]) assert.equal(out.includes(s), false, 'no secret in the log');
  });

  test('the admin token made at the first start is logged as an admin change too', async () => {
    const line = gh.output().stdout.split('\n').find((l) => l.includes('admin token written'));
    assert.ok(line, gh.output().stdout);
    const j = JSON.parse(line);
    assert.equal(j.action, 'create');
    assert.equal(j.kind, 'admin-tokens');
    assert.equal(j.actor, 'bootstrap');
    assert.equal(line.includes(gh.token), false);
  });
});

// ---------------------------------------------------------------------------------------------

describe('issue 11 item 7: refused admin authentications and exports of secrets are logged and audited', () => {
  let gh;
  before(async () => {
    gh = await startServer();
  });
  after(async () => {
    await gh?.stop();
  });

  const refusedLines = () => gh.output().stdout.split('\n')
    .filter((l) => l.includes('"admin authentication refused"')).map((l) => JSON.parse(l));
  const denials = async () => expectList(await gh.api('GET', '/v1/audit?kind=auth&limit=1000')).data;
  // the limit per address and minute (admin/http.c); a run may straddle a minute boundary
  const PER_ADDRESS = 10;

  test('a wrong token: one log line (address, method, path, token presented) and an audit entry, never the token', async () => {
    const wrong = `wrong-${randomBytes(24).toString('base64url')}`;
    const r = await fetch(`${gh.url}/v1/clients?x=1`, { headers: { authorization: `Bearer ${wrong}` } });
    assert.equal(r.status, 401);
    const line = await waitUntil(() => refusedLines()[0], { what: 'the refused authentication line' });
    assert.equal(line.level, 'warn');
    assert.equal(line.remote_addr, '127.0.0.1');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/v1/clients');
    assert.equal(line.token_presented, true);
    assert.equal(line.reason, 'the admin token is not valid');
    const entries = await denials();
    assert.equal(entries.length, 1, JSON.stringify(entries));
    assert.equal(entries[0].action, 'denied');
    assert.equal(entries[0].kind, 'auth');
    assert.equal(entries[0].remote_addr, '127.0.0.1');
    assert.equal(entries[0].actor, null);
    assert.deepEqual(entries[0].detail, {
      method: 'GET', path: '/v1/clients', token_presented: true, reason: 'the admin token is not valid', suppressed: 0,
    });
    // no part of the presented token: no run of 8 of its characters anywhere in the output
    const out = `${gh.output().stdout}${gh.output().stderr}${JSON.stringify(entries)}`;
    for (let i = 0; i + 8 <= wrong.length; i++) assert.equal(out.includes(wrong.slice(i, i + 8)), false, wrong.slice(i, i + 8));

    // without a token at all: recorded too, token_presented false
    assert.equal((await fetch(`${gh.url}/v1/audit`, { method: 'DELETE' })).status, 401);
    const second = await waitUntil(() => refusedLines()[1], { what: 'the second refused line' });
    assert.equal(second.token_presented, false);
    assert.equal(second.method, 'DELETE');
    assert.equal((await denials())[0].detail.token_presented, false);
  });

  test('1,000 wrong tokens: the log lines and audit entries stay bounded; the right token still works', async () => {
    for (let i = 0; i < 1000; i++) {
      const r = await fetch(`${gh.url}/v1/config`, { headers: { authorization: `Bearer bad-${i}` } });
      assert.equal(r.status, 401);
      await r.arrayBuffer();
    }
    const entries = await denials();
    assert.ok(entries.length <= 2 * PER_ADDRESS, `${entries.length} audit entries for 1,002 refusals`);
    assert.ok(entries.length >= PER_ADDRESS, `${entries.length} audit entries`);
    assert.ok(refusedLines().length <= 2 * PER_ADDRESS, `${refusedLines().length} log lines`);
    assert.equal(refusedLines().length, entries.length);
  });

  test('GET /v1/config?secrets=true is audited and logged as export_secrets; without secrets it is not', async () => {
    expectStatus(await gh.api('GET', '/v1/config'), 200);
    assert.equal(expectList(await gh.api('GET', '/v1/audit?kind=config')).data.length, 0);
    expectStatus(await gh.api('GET', '/v1/config?secrets=true'), 200);
    const entries = expectList(await gh.api('GET', '/v1/audit?kind=config')).data;
    assert.equal(entries.length, 1, JSON.stringify(entries));
    assert.equal(entries[0].action, 'export_secrets');
    assert.equal(entries[0].actor, 'bootstrap');
    assert.equal(entries[0].remote_addr, '127.0.0.1');
    const line = await waitUntil(() => gh.output().stdout.split('\n').map((l) => (l.startsWith('{') ? JSON.parse(l) : {}))
      .find((l) => l.action === 'export_secrets'), { what: 'the export line' });
    assert.equal(line.kind, 'config');
    assert.equal(line.actor, 'bootstrap');
    assert.equal(line.remote_addr, '127.0.0.1');
  });
});
