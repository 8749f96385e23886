// SPDX-License-Identifier: Apache-2.0
// The admin commands of SPEC §7 (`gatehouse collections|endpoints|clients|profiles|keys|policies|
// providers …`, `gatehouse explain`, `gatehouse config export|apply`): the real binary against a
// real `gatehouse serve`, with --admin-url and the admin token from $GATEHOUSE_ADMIN_TOKEN or the
// admin-token file found through --db. Every command: its happy path (exit 0, the table or view
// shows the object's fields, --json is the API's JSON, the change is seen through the admin API)
// and an error (exit 1 with the API's error line on stderr, or exit 2 for bad usage).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { start as startIdp, KEY_CLAIM } from './lib/idp.mjs';
import { gatehouseBin, haveGatehouse, run } from './lib/run.mjs';
import { makeTempDir, startServer, unusedPort } from './lib/server.mjs';
import {
  assertUnchanged, configOf, expectList, expectStatus, idPattern, listAll, PLAIN_KEY, TIME,
} from './lib/check.mjs';
import {
  bannerKey, cellText, parseTable, parseView,
} from './lib/cli.mjs';

// No skipping: a run without the binary must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const UPSTREAM = 'http://127.0.0.1:9/base';
const MISSING = {
  col: 'col_AAAAAAAAAAAAAAAA',
  ep: 'ep_AAAAAAAAAAAAAAAA',
  cli: 'cli_AAAAAAAAAAAAAAAA',
  ap: 'ap_AAAAAAAAAAAAAAAA',
  key: 'key_AAAAAAAAAAAAAAAA',
  pol: 'pol_AAAAAAAAAAAAAAAA',
  prv: 'prv_AAAAAAAAAAAAAAAA',
};

// None of the caller's own GATEHOUSE_* settings may decide where the commands go or which token
// they send (undefined removes a variable from the child's environment).
const CLEAN_ENV = { GATEHOUSE_ADMIN_TOKEN: undefined, GATEHOUSE_ADMIN_URL: undefined, GATEHOUSE_DB: undefined };

const COLUMNS = {
  collections: [['ID', 'id'], ['NAME', 'name'], ['VERSION', 'version'], ['PATH', 'path'], ['UPSTREAM', 'upstream'], ['ACTIVE', 'active']],
  endpoints: [['ID', 'id'], ['METHOD', 'method'], ['PATH', 'path'], ['NAME', 'name'], ['ACTIVE', 'active']],
  clients: [['ID', 'id'], ['NAME', 'name'], ['ACTIVE', 'active'], ['DESCRIPTION', 'description']],
  profiles: [['ID', 'id'], ['NAME', 'name'], ['CLIENT', 'client_id'], ['AUTH', 'auth_type'], ['COLLECTIONS', 'collection_ids'], ['ACTIVE', 'active']],
  keys: [['ID', 'id'], ['PREFIX', 'prefix'], ['CREATED', 'created_at'], ['EXPIRES', 'expires_at']],
  policies: [['ID', 'id'], ['NAME', 'name'], ['RATE_LIMIT', 'rate_limit'], ['QUOTA', 'quota']],
  providers: [['ID', 'id'], ['ISSUER', 'issuer'], ['KEYS', 'keys'], ['FETCHED_AT', 'fetched_at'], ['STALE', 'stale'], ['LAST_ERROR', 'last_error'], ['URL', 'url']],
};

function rsaPublicPem() {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  }).publicKey;
}

function sha256Hex(text) {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function show(r) {
  return `exit ${r.code}${r.signal ? ` (${r.signal})` : ''}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/**
 * Runs admin commands against server gh: `--admin-url gh.url --db sqlite:<gh.dir>/gh.db` after
 * the arguments (db: false leaves --db out; url: another --admin-url), in a clean environment
 * plus opts.env. Every run is checked never to print the admin token.
 */
function cliFor(gh) {
  return async (args, { env = {}, db = true, url } = {}) => {
    const full = [...args, '--admin-url', url ?? gh.url];
    if (db) full.push('--db', `sqlite:${join(gh.dir, 'gh.db')}`);
    const r = await run(full, { env: { ...CLEAN_ENV, ...env }, timeoutMs: 20000 });
    r.command = `gatehouse ${args.join(' ')}`;
    assert.equal(r.timedOut, false, `${r.command} timed out`);
    assert.equal(`${r.stdout}${r.stderr}`.includes(gh.token), false, `${r.command} printed the admin token`);
    return r;
  };
}

/** Exit 0 and nothing on stderr (but the one-time key note where allowed); returns r. */
function ok(r, { keyNote = false } = {}) {
  assert.equal(r.code, 0, `${r.command}: expected exit 0\n${show(r)}`);
  const stderr = keyNote ? r.stderr.replace(/^note: the plain-text key \("key"\) is shown only once; store it now\n/, '') : r.stderr;
  assert.equal(stderr, '', `${r.command}: nothing on stderr\n${show(r)}`);
  return r;
}

/**
 * Exit 1, nothing on stdout and the API's error as one line on stderr:
 * "gatehouse: STATUS CODE: MESSAGE" plus " (field: FIELD)" when field is given (null: none).
 */
function apiError(r, status, code, field) {
  assert.equal(r.code, 1, `${r.command}: expected exit 1\n${show(r)}`);
  assert.equal(r.stdout, '', `${r.command}: nothing on stdout\n${show(r)}`);
  const [line, ...more] = r.stderr.split('\n');
  const fieldPart = field ? ` \\(field: ${field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)` : '';
  assert.match(line, new RegExp(`^gatehouse: ${status} ${code}: \\S.*${fieldPart}$`), `${r.command}: the error line\n${show(r)}`);
  if (field === null) assert.doesNotMatch(line, /\(field: /, `${r.command}: no field`);
  if (status !== 401) assert.deepEqual(more, [''], `${r.command}: one line on stderr\n${show(r)}`);
  return line;
}

/** Exit 2 for bad usage: nothing on stdout, the reason (matching `reason`) and the help hint. */
function usage(r, reason, command) {
  assert.equal(r.code, 2, `${r.command}: expected exit 2\n${show(r)}`);
  assert.equal(r.stdout, '', `${r.command}: nothing on stdout\n${show(r)}`);
  assert.match(r.stderr, /^gatehouse: /, `${r.command}: stderr starts with "gatehouse: "`);
  assert.match(r.stderr, reason, `${r.command}: the reason\n${show(r)}`);
  if (command) assert.match(r.stderr, new RegExp(`run \`gatehouse help ${command}\` for usage`), `${r.command}: the help hint`);
}

/** The "member: value" view shows exactly the object's members (but key and jwt_key), each as cellText. */
function assertView(r, obj) {
  const view = parseView(r.stdout);
  const expected = {};
  for (const [k, v] of Object.entries(obj)) if (k !== 'key' && k !== 'jwt_key') expected[k] = cellText(v);
  assert.deepEqual(view, expected, `${r.command}: the view shows the object's fields\n${show(r)}`);
  return view;
}

/** The table has the family's columns and exactly one row per item, showing its fields. */
function assertTable(r, family, items) {
  const { headers, rows } = parseTable(r.stdout);
  assert.deepEqual(headers, COLUMNS[family].map(([h]) => h), `${r.command}: the columns`);
  assert.equal(rows.length, items.length, `${r.command}: ${items.length} rows\n${show(r)}`);
  for (const item of items) {
    const row = rows.find((x) => x.ID === item.id);
    assert.ok(row, `${r.command}: a row for ${item.id}\n${show(r)}`);
    for (const [h, member] of COLUMNS[family]) {
      assert.equal(row[h], cellText(item[member], { count: h === 'KEYS' }), `${r.command}: ${h} of ${item.id}`);
    }
  }
  return rows;
}

async function apiGet(gh, path) {
  return expectStatus(await gh.api('GET', path), 200);
}

async function apiCreate(gh, path, body) {
  return expectStatus(await gh.api('POST', path, body), 201);
}

async function apiGone(gh, path) {
  const r = await gh.api('GET', path);
  assert.equal(r.status, 404, `${path} is gone: ${r.status} ${r.text}`);
}

/** The explain table: "steps:", "  N. step: ok (detail)" lines, then a view of the rest. */
function parseExplain(text) {
  const lines = text.split('\n');
  assert.equal(lines[0], 'steps:', `explain output starts with steps:\n${text}`);
  const steps = [];
  let i = 1;
  for (; i < lines.length && lines[i].startsWith('  '); i++) {
    const m = /^ {2}(\d+)\. ([^:]+): (true|false)(?: \((.*)\))?$/.exec(lines[i]);
    assert.ok(m, `a step line: ${JSON.stringify(lines[i])}`);
    steps.push({ n: Number(m[1]), step: m[2], ok: m[3] === 'true', detail: m[4] });
  }
  return { steps, rest: parseView(lines.slice(i).join('\n')) };
}

// ---------------------------------------------------------------------------------------------

describe('admin commands against a real gatehouse serve', () => {
  let gh;
  let idp;
  let cli;
  let tmp;
  let idpKey = null; // what the IdP puts into its tokens' https://gatehouse.dev/key claim

  before(async () => {
    idp = await startIdp({ profileKey: () => idpKey });
    gh = await startServer();
    cli = cliFor(gh);
    tmp = await makeTempDir('gatehouse-cli-e2e-');
  });
  after(async () => {
    await gh?.stop();
    await idp?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('the admin token: $GATEHOUSE_ADMIN_TOKEN, else the admin-token file next to --db or $GATEHOUSE_DB; a wrong one is 401, none is exit 2', async () => {
    const empty = join(tmp, 'no-token-here');
    const viaEnv = ok(await cli(['clients', 'list'], { db: false, env: { GATEHOUSE_ADMIN_TOKEN: gh.token, GATEHOUSE_DB: `sqlite:${empty}/gh.db` } }));
    assert.deepEqual(parseTable(viaEnv.stdout).headers, ['ID', 'NAME', 'ACTIVE', 'DESCRIPTION']);
    ok(await cli(['clients', 'list'])); // --db sqlite:<server dir>/gh.db: its admin-token file
    ok(await cli(['clients', 'list'], { db: false, env: { GATEHOUSE_DB: `sqlite:${join(gh.dir, 'gh.db')}` } }));

    const wrong = await cli(['clients', 'list'], { env: { GATEHOUSE_ADMIN_TOKEN: 'not-the-admin-token' } });
    apiError(wrong, 401, 'unauthorized');
    assert.match(wrong.stderr, /\$GATEHOUSE_ADMIN_TOKEN/, 'the 401 says where the token came from');
    assert.equal(wrong.stderr.includes('not-the-admin-token'), false, 'the token sent is not printed');

    const none = await cli(['clients', 'list', '--db', `sqlite:${empty}/gh.db`], { db: false });
    usage(none, /no admin token/);
    assert.ok(none.stderr.includes(`${empty}/admin-token`), `names where it looked: ${none.stderr}`);
    assert.match(none.stderr, /GATEHOUSE_ADMIN_TOKEN/);
  });

  test('collections: create, list, get, update, delete, each with an error', async () => {
    // create: the view shows every field with its default; the API has the same object
    let r = ok(await cli(['collections', 'create', '--name', 'orders', '--path', '/orders/v1', '--upstream', UPSTREAM]));
    const id = parseView(r.stdout).id;
    assert.match(id, idPattern('col'));
    const orders = await apiGet(gh, `/v1/collections/${id}`);
    assertView(r, orders);
    assert.deepEqual([orders.name, orders.version, orders.path, orders.upstream, orders.active, orders.forward_authorization, orders.timeout_ms],
      ['orders', 'v1', '/orders/v1', UPSTREAM, true, true, 30000]);

    r = ok(await cli(['collections', 'create', '--name', 'billing', '--version', 'v2', '--path', '/billing/v2', '--upstream', 'https://billing.internal/api',
      '--timeout-ms', '1500', '--active', 'false', '--forward-authorization', 'false', '--json']));
    const billing = r.json();
    assert.deepEqual(billing, await apiGet(gh, `/v1/collections/${billing.id}`), '--json is the API object');
    assert.deepEqual([billing.version, billing.timeout_ms, billing.active, billing.forward_authorization], ['v2', 1500, false, false]);

    // create error: a path taken is 409 on path; nothing changes
    await assertUnchanged(gh, async () => {
      apiError(await cli(['collections', 'create', '--name', 'orders-again', '--path', '/orders/v1', '--upstream', UPSTREAM]), 409, 'conflict', 'path');
      apiError(await cli(['collections', 'create', '--name', 'ftp', '--path', '/ftp', '--upstream', 'ftp://files.example']), 422, 'validation_failed', 'upstream');
    });

    // create without a required flag: refused, naming the field, and nothing is made. (The API's
    // 422 with the field, exit 1, or a usage error, exit 2, before anything is sent: SPEC §7
    // allows either reading; see the report of this test file.)
    await assertUnchanged(gh, async () => {
      const r2 = await cli(['collections', 'create', '--name', 'no-upstream', '--path', '/no-upstream']);
      assert.ok(r2.code === 1 || r2.code === 2, `${r2.command}: exit 1 or 2\n${show(r2)}`);
      assert.equal(r2.stdout, '');
      assert.match(r2.stderr, /upstream/, 'the message names the missing field');
      if (r2.code === 1) apiError(r2, 422, 'validation_failed', 'upstream');
    });

    // list: a row per collection; --json is the API's list
    const all = await listAll(gh, '/v1/collections');
    assertTable(ok(await cli(['collections', 'list'])), 'collections', all);
    assert.deepEqual(ok(await cli(['collections', 'list', '--json'])).json(), { data: all, next: null });
    usage(await cli(['collections', 'list', 'extra']), /collections list takes no arguments/, 'collections');
    usage(await cli(['collections']), /collections needs one of: list, get, create, update, delete/, 'collections');
    usage(await cli(['collections', 'frobnicate']), /unknown collections command 'frobnicate'/, 'collections');

    // get
    assertView(ok(await cli(['collections', 'get', id])), orders);
    assert.deepEqual(ok(await cli(['collections', 'get', id, '--json'])).json(), orders);
    apiError(await cli(['collections', 'get', MISSING.col]), 404, 'not_found', null);

    // update
    r = ok(await cli(['collections', 'update', id, '--name', 'orders-renamed', '--timeout-ms', '500', '--active', 'false']));
    const renamed = await apiGet(gh, `/v1/collections/${id}`);
    assert.deepEqual([renamed.name, renamed.timeout_ms, renamed.active, renamed.path], ['orders-renamed', 500, false, '/orders/v1']);
    assertView(r, renamed);
    r = ok(await cli(['collections', 'update', id, '--active', 'true', '--json']));
    assert.deepEqual(r.json(), await apiGet(gh, `/v1/collections/${id}`));
    assert.equal(r.json().active, true);
    await assertUnchanged(gh, async () => {
      usage(await cli(['collections', 'update', id, '--active', 'yes']), /--active takes true or false, not 'yes'/, 'collections');
      usage(await cli(['collections', 'update', id]), /nothing to change/, 'collections');
    });

    // delete: one still in use is 409; a free one goes
    await apiCreate(gh, `/v1/collections/${id}/endpoints`, { method: 'GET', path: '/x' });
    await assertUnchanged(gh, async () => {
      apiError(await cli(['collections', 'delete', id]), 409, 'conflict');
    });
    r = ok(await cli(['collections', 'delete', billing.id]));
    assert.equal(r.stdout, `deleted collection ${billing.id}\n`);
    await apiGone(gh, `/v1/collections/${billing.id}`);
  });

  test('endpoints: create, list, get, update, delete, each with an error', async () => {
    const col = await apiCreate(gh, '/v1/collections', { name: 'shop', path: '/shop', upstream: UPSTREAM });

    let r = ok(await cli(['endpoints', 'create', col.id, '--method', 'GET', '--path', '/items/:id', '--name', 'get item']));
    const id = parseView(r.stdout).id;
    assert.match(id, idPattern('ep'));
    const ep = await apiGet(gh, `/v1/endpoints/${id}`);
    assertView(r, ep);
    assert.deepEqual([ep.collection_id, ep.method, ep.path, ep.name, ep.active, ep.timeout_ms], [col.id, 'GET', '/items/:id', 'get item', true, null]);
    assert.equal(parseView(r.stdout).timeout_ms, '-', 'an inherited timeout shows as -');

    r = ok(await cli(['endpoints', 'create', col.id, '--method', 'ANY', '--path', '/files/*', '--timeout-ms', '2000', '--active', 'false', '--json']));
    const files = r.json();
    assert.deepEqual(files, await apiGet(gh, `/v1/endpoints/${files.id}`));
    assert.deepEqual([files.method, files.timeout_ms, files.active], ['ANY', 2000, false]);

    await assertUnchanged(gh, async () => {
      apiError(await cli(['endpoints', 'create', col.id, '--method', 'FETCH', '--path', '/x']), 422, 'validation_failed', 'method');
      apiError(await cli(['endpoints', 'create', col.id, '--method', 'GET', '--path', '/items/:id']), 409, 'conflict');
    });

    const all = (await listAll(gh, `/v1/collections/${col.id}/endpoints`));
    assert.equal(all.length, 2);
    assertTable(ok(await cli(['endpoints', 'list', col.id])), 'endpoints', all);
    assert.deepEqual(ok(await cli(['endpoints', 'list', col.id, '--json'])).json(), { data: all, next: null });
    apiError(await cli(['endpoints', 'list', MISSING.col]), 404, 'not_found', null);

    assertView(ok(await cli(['endpoints', 'get', id])), ep);
    assert.deepEqual(ok(await cli(['endpoints', 'get', id, '--json'])).json(), ep);
    apiError(await cli(['endpoints', 'get', MISSING.ep]), 404, 'not_found', null);

    r = ok(await cli(['endpoints', 'update', id, '--name', 'item detail', '--path', '/items/:id/detail', '--timeout-ms', '700', '--active', 'false']));
    const changed = await apiGet(gh, `/v1/endpoints/${id}`);
    assert.deepEqual([changed.name, changed.path, changed.timeout_ms, changed.active, changed.method], ['item detail', '/items/:id/detail', 700, false, 'GET']);
    assertView(r, changed);
    assert.deepEqual(ok(await cli(['endpoints', 'update', id, '--method', 'POST', '--json'])).json(), await apiGet(gh, `/v1/endpoints/${id}`));
    await assertUnchanged(gh, async () => {
      usage(await cli(['endpoints', 'update', id]), /nothing to change/, 'endpoints');
    });

    r = ok(await cli(['endpoints', 'delete', files.id]));
    assert.equal(r.stdout, `deleted endpoint ${files.id}\n`);
    await apiGone(gh, `/v1/endpoints/${files.id}`);
    apiError(await cli(['endpoints', 'delete', files.id]), 404, 'not_found', null);
  });

  test('clients: create, list, get, update, delete, each with an error', async () => {
    let r = ok(await cli(['clients', 'create', '--name', 'acme', '--description', 'Acme Corp, EU team']));
    const id = parseView(r.stdout).id;
    assert.match(id, idPattern('cli'));
    const acme = await apiGet(gh, `/v1/clients/${id}`);
    assertView(r, acme);
    assert.deepEqual([acme.name, acme.description, acme.active], ['acme', 'Acme Corp, EU team', true]);

    r = ok(await cli(['clients', 'create', '--name', 'beta', '--active', 'false', '--json']));
    const beta = r.json();
    assert.deepEqual(beta, await apiGet(gh, `/v1/clients/${beta.id}`));
    assert.deepEqual([beta.description, beta.active], ['', false]);

    await assertUnchanged(gh, async () => {
      apiError(await cli(['clients', 'create', '--name', 'acme']), 409, 'conflict', 'name');
    });

    const all = await listAll(gh, '/v1/clients');
    assertTable(ok(await cli(['clients', 'list'])), 'clients', all);
    assert.deepEqual(ok(await cli(['clients', 'list', '--json'])).json(), { data: all, next: null });
    usage(await cli(['clients', 'list', '--name', 'acme']), /unknown option '--name' for clients list/, 'clients');

    assertView(ok(await cli(['clients', 'get', id])), acme);
    assert.deepEqual(ok(await cli(['clients', 'get', id, '--json'])).json(), acme);
    apiError(await cli(['clients', 'get', MISSING.cli]), 404, 'not_found', null);

    r = ok(await cli(['clients', 'update', id, '--description', 'Acme Corp, global', '--active', 'false']));
    const changed = await apiGet(gh, `/v1/clients/${id}`);
    assert.deepEqual([changed.description, changed.active, changed.name], ['Acme Corp, global', false, 'acme']);
    assertView(r, changed);
    assert.deepEqual(ok(await cli(['clients', 'update', id, '--active', 'true', '--json'])).json(), await apiGet(gh, `/v1/clients/${id}`));
    await assertUnchanged(gh, async () => {
      // --data passes through; a member of the wrong type is the API's 400
      apiError(await cli(['clients', 'update', id, '--data', '{"active":"yes"}']), 400, 'bad_request');
    });

    await apiCreate(gh, '/v1/profiles', { client_id: id, name: 'acme-uses', auth_type: 'token' });
    await assertUnchanged(gh, async () => {
      apiError(await cli(['clients', 'delete', id]), 409, 'conflict');
    });
    r = ok(await cli(['clients', 'delete', beta.id]));
    assert.equal(r.stdout, `deleted client ${beta.id}\n`);
    await apiGone(gh, `/v1/clients/${beta.id}`);
  });

  test('policies: create with --rate-limit N/S and --quota N/S, list, get, update, delete, each with an error', async () => {
    let r = ok(await cli(['policies', 'create', '--name', 'gold', '--rate-limit', '10/60', '--quota', '1000/86400']));
    const id = parseView(r.stdout).id;
    assert.match(id, idPattern('pol'));
    const gold = await apiGet(gh, `/v1/policies/${id}`);
    assert.deepEqual(gold.rate_limit, { requests: 10, per_seconds: 60 });
    assert.deepEqual(gold.quota, { requests: 1000, per_seconds: 86400 });
    const view = assertView(r, gold);
    assert.equal(view.rate_limit, '10/60');
    assert.equal(view.quota, '1000/86400');

    r = ok(await cli(['policies', 'create', '--name', 'bronze', '--quota', '5/1', '--json']));
    const bronze = r.json();
    assert.deepEqual(bronze, await apiGet(gh, `/v1/policies/${bronze.id}`));
    assert.equal(bronze.rate_limit, null);

    await assertUnchanged(gh, async () => {
      usage(await cli(['policies', 'create', '--name', 'silver', '--rate-limit', '10']), /--rate-limit takes REQUESTS\/SECONDS/, 'policies');
      apiError(await cli(['policies', 'create', '--name', 'gold']), 409, 'conflict', 'name');
    });

    const all = await listAll(gh, '/v1/policies');
    const rows = assertTable(ok(await cli(['policies', 'list'])), 'policies', all);
    assert.deepEqual(rows.find((x) => x.ID === id), { ID: id, NAME: 'gold', RATE_LIMIT: '10/60', QUOTA: '1000/86400' });
    assert.deepEqual(ok(await cli(['policies', 'list', '--json'])).json(), { data: all, next: null });
    usage(await cli(['policies', 'list', '--limit', '0']), /--limit takes a whole number above 0/, 'policies');

    assertView(ok(await cli(['policies', 'get', id])), gold);
    assert.deepEqual(ok(await cli(['policies', 'get', id, '--json'])).json(), gold);
    apiError(await cli(['policies', 'get', MISSING.pol]), 404, 'not_found', null);

    r = ok(await cli(['policies', 'update', id, '--rate-limit', '5/1', '--quota', 'none']));
    const changed = await apiGet(gh, `/v1/policies/${id}`);
    assert.deepEqual(changed.rate_limit, { requests: 5, per_seconds: 1 });
    assert.equal(changed.quota, null);
    assert.equal(assertView(r, changed).quota, '-');
    assert.deepEqual(ok(await cli(['policies', 'update', id, '--name', 'platinum', '--json'])).json(), await apiGet(gh, `/v1/policies/${id}`));
    apiError(await cli(['policies', 'update', MISSING.pol, '--name', 'x']), 404, 'not_found', null);

    const client = await apiCreate(gh, '/v1/clients', { name: 'policy-user' });
    await apiCreate(gh, '/v1/profiles', { client_id: client.id, name: 'limited', auth_type: 'token', policy_id: id });
    await assertUnchanged(gh, async () => {
      apiError(await cli(['policies', 'delete', id]), 409, 'conflict');
    });
    r = ok(await cli(['policies', 'delete', bronze.id]));
    assert.equal(r.stdout, `deleted policy ${bronze.id}\n`);
    await apiGone(gh, `/v1/policies/${bronze.id}`);
  });

  test('profiles (token): create prints the key once; list, get, update, delete, each with an error; no view ever shows the key again', async () => {
    const client = await apiCreate(gh, '/v1/clients', { name: 'token-client' });
    const col = await apiCreate(gh, '/v1/collections', { name: 'tok-col', path: '/tok', upstream: UPSTREAM });
    const policy = await apiCreate(gh, '/v1/policies', { name: 'tok-policy', rate_limit: { requests: 100, per_seconds: 60 } });

    let r = ok(await cli(['profiles', 'create', '--client', client.id, '--name', 'tok', '--auth-type', 'token', '--collections', col.id,
      '--policy', policy.id, '--ip-allow', '10.0.0.0/8,127.0.0.1/32', '--leeway', '120']));
    const key = bannerKey(r.stdout);
    assert.match(key ?? '', PLAIN_KEY, `a key banner\n${show(r)}`);
    assert.equal(r.stdout.split(key).length - 1, 1, 'the key is printed exactly once');
    const id = parseView(r.stdout).id;
    assert.match(id, idPattern('ap'));
    const tok = await apiGet(gh, `/v1/profiles/${id}`);
    assertView(r, tok);
    assert.deepEqual([tok.client_id, tok.auth_type, tok.collection_ids, tok.policy_id, tok.ip_allow, tok.leeway_seconds],
      [client.id, 'token', [col.id], policy.id, ['10.0.0.0/8', '127.0.0.1/32'], 120]);
    // the printed key is the profile's real key
    const [k] = expectList(await gh.api('GET', `/v1/profiles/${id}/keys`)).data;
    assert.equal(k.prefix, key.slice(0, 8));
    assert.equal((await configOf(gh)).keys.find((x) => x.id === k.id).hash, sha256Hex(key));

    r = ok(await cli(['profiles', 'create', '--client', client.id, '--name', 'tok-json', '--auth-type', 'token', '--json']), { keyNote: true });
    const created = r.json();
    assert.match(created.key, PLAIN_KEY);
    assert.match(r.stderr, /shown only once/);
    const { key: jsonKey, ...createdShown } = created;
    assert.deepEqual(createdShown, await apiGet(gh, `/v1/profiles/${created.id}`), '--json is the API answer');

    await assertUnchanged(gh, async () => {
      apiError(await cli(['profiles', 'create', '--client', client.id, '--name', 'magic', '--auth-type', 'magic']), 422, 'validation_failed', 'auth_type');
    });

    const all = await listAll(gh, '/v1/profiles');
    assertTable(ok(await cli(['profiles', 'list'])), 'profiles', all);
    assert.deepEqual(ok(await cli(['profiles', 'list', '--json'])).json(), { data: all, next: null });
    usage(await cli(['profiles', 'list', '--limit', 'ten']), /--limit takes a whole number/, 'profiles');

    assertView(ok(await cli(['profiles', 'get', id])), tok);
    assert.deepEqual(ok(await cli(['profiles', 'get', id, '--json'])).json(), tok);
    apiError(await cli(['profiles', 'get', MISSING.ap]), 404, 'not_found', null);

    // the plain keys never show again: not in get, list, keys list or config export
    for (const args of [['profiles', 'get', id], ['profiles', 'get', id, '--json'], ['profiles', 'get', created.id, '--json'],
      ['profiles', 'list'], ['profiles', 'list', '--json'], ['keys', 'list', id], ['keys', 'list', id, '--json'],
      ['keys', 'list', created.id, '--json'], ['config', 'export'], ['config', 'export', '--secrets']]) {
      const x = ok(await cli(args));
      for (const plain of [key, jsonKey]) {
        assert.equal(x.stdout.includes(plain.slice(3)), false, `gatehouse ${args.join(' ')} shows a plain key`);
      }
    }

    r = ok(await cli(['profiles', 'update', id, '--collections', '', '--policy', '', '--active', 'false', '--required-claims', 'exp,sub', '--audiences', 'a,b']));
    const changed = await apiGet(gh, `/v1/profiles/${id}`);
    assert.deepEqual([changed.collection_ids, changed.policy_id, changed.active, changed.required_claims, changed.audiences],
      [[], null, false, ['exp', 'sub'], ['a', 'b']]);
    assertView(r, changed);
    assert.equal(bannerKey(r.stdout), null, 'update prints no key');
    assert.deepEqual(ok(await cli(['profiles', 'update', id, '--active', 'true', '--json'])).json(), await apiGet(gh, `/v1/profiles/${id}`));
    await assertUnchanged(gh, async () => {
      apiError(await cli(['profiles', 'update', id, '--leeway', '301']), 422, 'validation_failed', 'leeway_seconds');
    });

    r = ok(await cli(['profiles', 'delete', created.id]));
    assert.equal(r.stdout, `deleted access profile ${created.id}\n`);
    await apiGone(gh, `/v1/profiles/${created.id}`);
    apiError(await cli(['profiles', 'delete', created.id]), 404, 'not_found', null);
  });

  test('profiles (jwt): --jwt-key-file sends the PEM file as jwt_key, which no view shows; errors', async () => {
    const client = await apiCreate(gh, '/v1/clients', { name: 'jwt-client' });
    const pem = rsaPublicPem();
    const pemFile = join(tmp, 'issuer.pem');
    await writeFile(pemFile, pem);

    let r = ok(await cli(['profiles', 'create', '--client', client.id, '--name', 'jwt', '--auth-type', 'jwt', '--jwt-key-file', pemFile,
      '--algorithms', 'RS256', '--audiences', 'https://api.example', '--allowed-issuers', 'https://issuer.example']));
    assert.match(bannerKey(r.stdout) ?? '', PLAIN_KEY, 'a new jwt profile gets a key too');
    const id = parseView(r.stdout).id;
    const jwt = await apiGet(gh, `/v1/profiles/${id}`);
    assertView(r, jwt);
    assert.deepEqual([jwt.auth_type, jwt.algorithms, jwt.audiences, jwt.allowed_issuers], ['jwt', ['RS256'], ['https://api.example'], ['https://issuer.example']]);
    assert.doesNotMatch(r.stdout, /jwt_key|BEGIN PUBLIC KEY/, 'the key is write-only');
    assert.equal((await configOf(gh)).profiles.find((p) => p.id === id).jwt_key, pem, 'the file was sent as it is');

    r = ok(await cli(['profiles', 'get', id, '--json']));
    assert.equal('jwt_key' in r.json(), false);
    assert.doesNotMatch(ok(await cli(['profiles', 'get', id])).stdout, /jwt_key|BEGIN PUBLIC KEY/);

    const pem2 = rsaPublicPem();
    await writeFile(pemFile, pem2);
    ok(await cli(['profiles', 'update', id, '--jwt-key-file', pemFile]));
    assert.equal((await configOf(gh)).profiles.find((p) => p.id === id).jwt_key, pem2, 'update sends the new file');

    const garbage = join(tmp, 'garbage.pem');
    await writeFile(garbage, 'this is not a key\n');
    await assertUnchanged(gh, async () => {
      usage(await cli(['profiles', 'create', '--client', client.id, '--name', 'nokey', '--auth-type', 'jwt', '--jwt-key-file', join(tmp, 'absent.pem')]),
        /cannot read --jwt-key-file/, 'profiles');
      apiError(await cli(['profiles', 'create', '--client', client.id, '--name', 'badkey', '--auth-type', 'jwt', '--jwt-key-file', garbage]),
        422, 'validation_failed', 'jwt_key');
    });
  });

  test('profiles (oidc) against a real IdP, then providers list, get and refresh, each with an error', async () => {
    const client = await apiCreate(gh, '/v1/clients', { name: 'oidc-client' });
    let r = ok(await cli(['profiles', 'create', '--client', client.id, '--name', 'oidc', '--auth-type', 'oidc',
      '--discovery-url', idp.discoveryUrl, '--audiences', idp.resource]));
    assert.match(bannerKey(r.stdout) ?? '', PLAIN_KEY);
    const id = parseView(r.stdout).id;
    const oidc = await apiGet(gh, `/v1/profiles/${id}`);
    assertView(r, oidc);
    assert.deepEqual([oidc.auth_type, oidc.oidc_discovery_url, oidc.oidc_jwks_uri], ['oidc', idp.discoveryUrl, null]);
    assert.ok(idp.requests.discovery >= 1 && idp.requests.jwks >= 1, 'the IdP was asked');

    const deadDiscovery = `http://127.0.0.1:${await unusedPort()}/.well-known/openid-configuration`;
    await assertUnchanged(gh, async () => {
      apiError(await cli(['profiles', 'create', '--client', client.id, '--name', 'dead', '--auth-type', 'oidc', '--discovery-url', deadDiscovery]),
        422, 'validation_failed', 'oidc_discovery_url');
    });

    // providers list: the IdP's provider with its keys
    const providers = await listAll(gh, '/v1/providers');
    const p = providers.find((x) => x.issuer === idp.issuer);
    assert.ok(p, `a provider for ${idp.issuer}`);
    const rows = assertTable(ok(await cli(['providers', 'list'])), 'providers', providers);
    const row = rows.find((x) => x.ID === p.id);
    assert.equal(row.KEYS, String(idp.publicJwks().keys.length));
    assert.equal(row.STALE, 'false');
    assert.equal(row.LAST_ERROR, '-');
    assert.match(row.FETCHED_AT, TIME);
    assert.deepEqual(ok(await cli(['providers', 'list', '--json'])).json(), { data: providers, next: null });
    usage(await cli(['providers', 'list', '--data', '{}']), /--data applies to create and update only/, 'providers');

    // get
    const got = await apiGet(gh, `/v1/providers/${p.id}`);
    const view = assertView(ok(await cli(['providers', 'get', p.id])), got);
    for (const jwk of idp.publicJwks().keys) assert.ok(view.keys.includes(`"kid":"${jwk.kid}"`), `the view lists kid ${jwk.kid}`);
    assert.deepEqual(ok(await cli(['providers', 'get', p.id, '--json'])).json(), await apiGet(gh, `/v1/providers/${p.id}`));
    apiError(await cli(['providers', 'get', MISSING.prv]), 404, 'not_found', null);

    // refresh: a rotated key shows at once
    const { kid } = await idp.rotate();
    const jwksBefore = idp.requests.jwks;
    r = ok(await cli(['providers', 'refresh', p.id]));
    assert.ok(idp.requests.jwks > jwksBefore, 'the key set was fetched again');
    const refreshed = await apiGet(gh, `/v1/providers/${p.id}`);
    assert.ok(refreshed.keys.some((k) => k.kid === kid), `the API lists the new kid ${kid}`);
    assert.ok(parseView(r.stdout).keys.includes(`"kid":"${kid}"`), `the refresh view lists the new kid\n${show(r)}`);
    const json = ok(await cli(['providers', 'refresh', p.id, '--json'])).json();
    assert.equal(json.id, p.id);
    assert.ok(json.keys.some((k) => k.kid === kid));
    apiError(await cli(['providers', 'refresh', MISSING.prv]), 404, 'not_found', null);
  });

  test('keys: list, create without and with --grace-seconds, delete, each with an error', async () => {
    const client = await apiCreate(gh, '/v1/clients', { name: 'keys-client' });
    const profile = await apiCreate(gh, '/v1/profiles', { client_id: client.id, name: 'keys-profile', auth_type: 'token' });
    const keysOf = async () => expectList(await gh.api('GET', `/v1/profiles/${profile.id}/keys`)).data;

    // list
    let keys = await keysOf();
    assert.equal(keys.length, 1);
    let r = ok(await cli(['keys', 'list', profile.id]));
    assert.deepEqual(assertTable(r, 'keys', keys)[0].PREFIX, profile.key.slice(0, 8));
    assert.equal(r.stdout.includes(profile.key.slice(3)), false, 'list never shows the key');
    assert.deepEqual(ok(await cli(['keys', 'list', profile.id, '--json'])).json(), { data: keys, next: null });
    apiError(await cli(['keys', 'list', MISSING.ap]), 404, 'not_found', null);

    // create without --grace-seconds: the old key is revoked at once
    r = ok(await cli(['keys', 'create', profile.id]));
    const key1 = bannerKey(r.stdout);
    assert.match(key1 ?? '', PLAIN_KEY, `a key banner\n${show(r)}`);
    assert.equal(r.stdout.split(key1).length - 1, 1, 'printed once');
    keys = await keysOf();
    assert.equal(keys.length, 1, 'only the new key is left');
    assertView(r, keys[0]);
    assert.equal(keys[0].prefix, key1.slice(0, 8));
    assert.equal((await configOf(gh)).keys.find((k) => k.id === keys[0].id).hash, sha256Hex(key1));

    r = ok(await cli(['keys', 'create', profile.id, '--json']), { keyNote: true });
    const made = r.json();
    assert.match(made.key, PLAIN_KEY);
    const { key: key2, ...madeShown } = made;
    assert.deepEqual(await keysOf(), [madeShown], '--json is the API answer, and the only key now');

    // create with --grace-seconds 300: the old key stays until about now + 300 s
    const t0 = Date.now();
    r = ok(await cli(['keys', 'create', profile.id, '--grace-seconds', '300']));
    const key3 = bannerKey(r.stdout);
    assert.match(key3 ?? '', PLAIN_KEY);
    keys = await keysOf();
    assert.equal(keys.length, 2);
    const old = keys.find((k) => k.id === made.id);
    const fresh = keys.find((k) => k.id !== made.id);
    assert.ok(Math.abs(Date.parse(old.expires_at) - (t0 + 300000)) <= 5000, `expires_at ${old.expires_at} is about now + 300 s`);
    assert.equal(fresh.expires_at, null);
    assert.equal(fresh.prefix, key3.slice(0, 8));
    r = ok(await cli(['keys', 'list', profile.id]));
    assertTable(r, 'keys', keys);
    for (const plain of [key1, key2, key3]) assert.equal(r.stdout.includes(plain.slice(3)), false, 'list never shows a key');

    await assertUnchanged(gh, async () => {
      usage(await cli(['keys', 'create', profile.id, '--grace-seconds', 'soon']), /--grace-seconds takes a whole number, not 'soon'/, 'keys');
      apiError(await cli(['keys', 'create', MISSING.ap]), 404, 'not_found', null);
    });

    // delete
    r = ok(await cli(['keys', 'delete', profile.id, old.id]));
    assert.equal(r.stdout, `deleted key ${old.id}\n`);
    assert.deepEqual((await keysOf()).map((k) => k.id), [fresh.id]);
    apiError(await cli(['keys', 'delete', profile.id, old.id]), 404, 'not_found', null);
  });

  test('explain with a real IdP token: the answer\'s status and steps, as a table and as --json; errors', async () => {
    const col = await apiCreate(gh, '/v1/collections', { name: 'explained', path: '/explained', upstream: UPSTREAM });
    const ep = await apiCreate(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/items/:id' });
    const client = await apiCreate(gh, '/v1/clients', { name: 'explain-client' });
    const profile = await apiCreate(gh, '/v1/profiles', {
      client_id: client.id, name: 'explain-oidc', auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl,
      audiences: [idp.resource], collection_ids: [col.id], key_claim: KEY_CLAIM,
    });
    idpKey = profile.key;
    const token = await idp.getToken();
    const args = ['explain', '--method', 'GET', '--path', '/explained/items/7', '--header', `Authorization: Bearer ${token}`];

    const r = ok(await cli(args));
    const { steps, rest } = parseExplain(r.stdout);
    const answer = expectStatus(await gh.api('POST', '/v1/explain', { method: 'GET', path: '/explained/items/7', headers: { Authorization: `Bearer ${token}` } }), 200);
    assert.equal(answer.status, 200, `the API allows it: ${JSON.stringify(answer)}`);
    assert.equal(rest.status, '200');
    assert.equal(rest.error, '-');
    assert.equal(rest.collection_id, col.id);
    assert.equal(rest.endpoint_id, ep.id);
    assert.equal(rest.profile_id, profile.id);
    assert.deepEqual(steps.map((s) => [s.step, s.ok, s.detail]), answer.steps.map((s) => [s.step, s.ok, s.detail]));
    assert.ok(steps.length >= 4 && steps.every((s) => s.ok), `every step passed: ${r.stdout}`);
    assert.deepEqual(steps.map((s) => s.n), steps.map((_, i) => i + 1));
    for (const name of ['route', 'credential', 'profile', 'signature']) assert.ok(steps.some((s) => s.step === name), `a ${name} step`);

    const json = ok(await cli([...args, '--json'])).json();
    assert.deepEqual(json, answer, '--json is the API answer');

    // a refusal is still an answer: exit 0, status 401 and the failing step
    const bare = parseExplain(ok(await cli(['explain', '--method', 'GET', '--path', '/explained/items/7'])).stdout);
    assert.equal(bare.rest.status, '401');
    assert.equal(bare.rest.error, 'unauthorized');
    assert.equal(bare.steps.at(-1).ok, false);
    const nowhere = ok(await cli(['explain', '--method', 'GET', '--path', '/nowhere', '--json'])).json();
    assert.deepEqual([nowhere.status, nowhere.error], [404, 'not_found']);

    usage(await cli(['explain', '--path', '/explained/items/7']), /explain needs --method/, 'explain');
    usage(await cli(['explain', '--method', 'GET', '--path', '/x', '--header', 'no colon here']), /--header takes 'Name: value'/, 'explain');
    apiError(await cli(['explain', '--method', 'GET', '--path', '/x', '--data', '{"client_ip":"not-an-ip"}']), 422, 'validation_failed', 'client_ip');
  });

  test('explain of a token whose key is in the default claim (SPEC §2) decides as the gateway does: 200', async () => {
    // No key_claim on the profile: the key is found through the default claim list, whose first
    // member is https://gatehouse.dev/key (SPEC §2), exactly as the gateway finds it.
    const col = await apiCreate(gh, '/v1/collections', { name: 'default-claim', path: '/default-claim', upstream: UPSTREAM });
    await apiCreate(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/items/:id' });
    const client = await apiCreate(gh, '/v1/clients', { name: 'default-claim-client' });
    const profile = await apiCreate(gh, '/v1/profiles', {
      client_id: client.id, name: 'default-claim-oidc', auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl,
      audiences: [idp.resource], collection_ids: [col.id],
    });
    idpKey = profile.key;
    const token = await idp.getToken();
    const r = ok(await cli(['explain', '--method', 'GET', '--path', '/default-claim/items/7', '--header', `Authorization: Bearer ${token}`, '--json']));
    const answer = r.json();
    assert.equal(answer.status, 200, `explain allows a valid IdP token carrying the key in ${KEY_CLAIM}: ${JSON.stringify(answer)}`);
    assert.equal(answer.profile_id, profile.id);
  });

  test('config export (standard output, FILE, --secrets) and apply FILE, each with an error', async () => {
    // its own objects, so that the export has a key and a jwt_key whatever ran before
    const renameMe = await apiCreate(gh, '/v1/clients', { name: 'rename-me' });
    await apiCreate(gh, '/v1/profiles', { client_id: renameMe.id, name: 'export-jwt', auth_type: 'jwt', jwt_key: rsaPublicPem(), algorithms: ['RS256'] });
    // export to standard output: the API's configuration, without secrets
    let r = ok(await cli(['config', 'export']));
    const plain = r.json();
    assert.deepEqual(plain, await apiGet(gh, '/v1/config'));
    assert.ok(plain.keys.length > 0 && plain.keys.every((k) => k.hash === undefined), 'no key hashes');
    assert.doesNotMatch(r.stdout, /jwt_key/);
    assert.match(r.stdout, /^\{\n {2}"/, 'pretty JSON');

    // export --secrets to standard output and to a file (mode 0600)
    const withSecrets = await configOf(gh);
    assert.deepEqual(ok(await cli(['config', 'export', '--secrets'])).json(), withSecrets);
    const file = join(tmp, 'export.json');
    r = ok(await cli(['config', 'export', '--secrets', file]));
    assert.equal(r.stdout, `configuration written to ${file}\n`);
    assert.equal((await stat(file)).mode & 0o777, 0o600, 'the export file is private');
    const exported = JSON.parse(await readFile(file, 'utf8'));
    assert.deepEqual(exported, withSecrets);
    assert.ok(exported.keys.every((k) => /^[0-9a-f]{64}$/.test(k.hash)), 'key hashes with --secrets');
    assert.ok(exported.profiles.some((p) => typeof p.jwt_key === 'string'), 'jwt keys with --secrets');

    const plainFile = join(tmp, 'export-plain.json');
    ok(await cli(['config', 'export', plainFile]));
    assert.deepEqual(JSON.parse(await readFile(plainFile, 'utf8')), await apiGet(gh, '/v1/config'));
    usage(await cli(['config', 'export', join(tmp, 'no', 'such', 'dir.json')]), /cannot write/);

    // apply: rename one client in the export; exactly that changes
    const edited = structuredClone(exported);
    const target = edited.clients.find((c) => c.id === renameMe.id);
    target.name = 'renamed-by-apply';
    const applyFile = join(tmp, 'apply.json');
    await writeFile(applyFile, JSON.stringify(edited));
    r = ok(await cli(['config', 'apply', applyFile]));
    const [first, ...summaryLines] = r.stdout.split('\n');
    assert.equal(first, `configuration applied from ${applyFile}`);
    const summary = parseView(summaryLines.join('\n'));
    for (const kind of ['policies', 'clients', 'collections', 'endpoints', 'profiles', 'keys']) {
      assert.equal(summary[kind], String(edited[kind].length), `the summary counts ${kind}`);
    }
    const now = await configOf(gh);
    assert.equal(now.generation, exported.generation + 1);
    assert.equal(summary.generation, String(now.generation));
    assert.equal((await apiGet(gh, `/v1/clients/${target.id}`)).name, 'renamed-by-apply');
    assert.deepEqual(now.keys, exported.keys, 'the keys and their hashes survive');

    // errors: the API refuses a bad document (nothing changes); a file that is no JSON object is bad usage
    const bad = structuredClone(now);
    bad.collections[0].upstream = 'ftp://files.example';
    await writeFile(applyFile, JSON.stringify(bad));
    await assertUnchanged(gh, async () => {
      apiError(await cli(['config', 'apply', applyFile]), 422, 'validation_failed');
      await writeFile(applyFile, 'not json');
      usage(await cli(['config', 'apply', applyFile]), /is not one JSON object/, 'config');
      usage(await cli(['config', 'apply', join(tmp, 'absent.json')]), /cannot read/, 'config');
      usage(await cli(['config', 'apply']), /config apply takes FILE/, 'config');
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('lists follow every page', () => {
  let gh;
  let cli;
  before(async () => {
    gh = await startServer();
    cli = cliFor(gh);
    const names = Array.from({ length: 120 }, (_, i) => `client-${String(i).padStart(3, '0')}`);
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(names.slice(i, i + 20).map((name) => apiCreate(gh, '/v1/clients', { name })));
    }
  });
  after(async () => {
    await gh?.stop();
  });

  test('clients list shows all 120 clients (more than one page of the API); --json too; --limit stops early', async () => {
    const all = await listAll(gh, '/v1/clients');
    assert.equal(all.length, 120);
    const firstPage = expectList(await gh.api('GET', '/v1/clients'));
    assert.ok(firstPage.data.length < 120 && firstPage.next !== null, 'the API needs more than one page for them');

    const rows = assertTable(ok(await cli(['clients', 'list'])), 'clients', all);
    assert.equal(new Set(rows.map((x) => x.ID)).size, 120, 'each client once');
    assert.deepEqual(ok(await cli(['clients', 'list', '--json'])).json(), { data: all, next: null });

    const limited = parseTable(ok(await cli(['clients', 'list', '--limit', '30'])).stdout).rows;
    assert.deepEqual(limited.map((x) => x.ID), all.slice(0, 30).map((c) => c.id));
    const more = ok(await cli(['clients', 'list', '--limit', '150', '--json'])).json();
    assert.equal(more.data.length, 120);
  });
});

test('gatehouse help COMMAND prints the usage of each admin command and its flags (exit 0)', async () => {
  const expected = {
    collections: ['--name', '--version', '--path', '--upstream', '--timeout-ms', '--active', '--forward-authorization'],
    endpoints: ['--method', '--path', '--name', '--timeout-ms', '--active'],
    clients: ['--name', '--description', '--active'],
    profiles: ['--client', '--auth-type', '--collections', '--discovery-url', '--jwks-uri', '--jwt-key-file', '--policy', '--no-validate'],
    keys: ['--grace-seconds'],
    policies: ['--rate-limit', '--quota'],
    providers: ['refresh'],
    explain: ['--method', '--path', '--header'],
    config: ['export', 'apply', '--secrets'],
  };
  for (const [command, words] of Object.entries(expected)) {
    const r = await run(['help', command], { env: CLEAN_ENV });
    assert.equal(r.code, 0, `help ${command}\n${show(r)}`);
    assert.match(r.stdout, new RegExp(`^usage: gatehouse ${command}`));
    for (const w of [...words, '--admin-url', '--json', 'GATEHOUSE_ADMIN_TOKEN']) assert.ok(r.stdout.includes(w), `help ${command} names ${w}`);
  }
});

describe('a server that is down', () => {
  let gh;
  let cli;
  before(async () => {
    gh = await startServer();
    cli = cliFor(gh);
  });
  after(async () => {
    await gh?.stop();
  });

  test('exit 2 naming the admin URL, for reads and writes', async () => {
    ok(await cli(['clients', 'list']));
    await gh.kill('SIGTERM'); // the directory, and its admin-token file, stay
    for (const args of [['clients', 'list'], ['clients', 'create', '--name', 'x'], ['config', 'export']]) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${r.command}: exit 2\n${show(r)}`);
      assert.equal(r.stdout, '');
      assert.ok(r.stderr.startsWith(`gatehouse: cannot reach the admin API at ${gh.url}`), `${r.command}: names ${gh.url}\n${show(r)}`);
    }
  });
});
