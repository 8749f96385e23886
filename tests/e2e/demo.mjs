// SPDX-License-Identifier: Apache-2.0
// `make demo`: gatehouse end to end in one minute, with software nobody here wrote as the IdP.
// Starts a real OpenID Provider (oidc-provider), an upstream service and gatehouse, all on
// loopback; configures a collection, a client and an access profile with the gatehouse CLI; gets a
// real access token by the client credentials grant; then shows a 200 with the identity the
// upstream saw, a 401 without a token and a 403 for a collection the profile does not grant.
// Stops everything and exits non-zero if anything did not happen as shown.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { start as startIdp } from './lib/idp.mjs';
import { run, spawnGatehouse } from './lib/run.mjs';
import { startUpstream } from './lib/upstream.mjs';

const say = (text) => process.stdout.write(`${text}\n`);
const show = (label, value) => say(`    ${label.padEnd(26)} ${value}`);
let failures = 0;
function expect(ok, what) {
  if (!ok) {
    failures += 1;
    say(`  !! expected: ${what}`);
  }
}

async function gatehouseCli(admin, args) {
  const r = await run([...args, '--admin-url', admin.url], { env: { GATEHOUSE_ADMIN_TOKEN: admin.token } });
  if (r.code !== 0) throw new Error(`gatehouse ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

async function startGatehouse(dir) {
  const proc = spawnGatehouse(['serve', '--db', `sqlite:${join(dir, 'gh.db')}`, '--admin-listen', '127.0.0.1:0',
    '--listen', '127.0.0.1:0'], { cwd: dir, env: { GATEHOUSE_ADMIN_TOKEN: '' } });
  const address = async (msg) => JSON.parse((await proc.waitFor(new RegExp(`^.*"msg":"${msg}".*$`, 'm'),
    { timeoutMs: 10000, stream: 'stdout' }))[0]).address;
  const admin = { url: `http://${await address('admin API listening')}` };
  const gateway = `http://${await address('gateway listening')}`;
  admin.token = (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
  return { proc, admin, gateway };
}

async function configure(admin, upstream, idp) {
  const id = async (args) => (await gatehouseCli(admin, [...args, '--json'])).json().id;
  const orders = await id(['collections', 'create', '--name', 'Orders', '--path', '/orders/v1', '--upstream', upstream.url]);
  await gatehouseCli(admin, ['endpoints', 'create', orders, '--method', 'GET', '--path', '/items/:id']);
  const billing = await id(['collections', 'create', '--name', 'Billing', '--path', '/billing/v1', '--upstream', upstream.url]);
  await gatehouseCli(admin, ['endpoints', 'create', billing, '--method', 'GET', '--path', '/invoices']);
  const client = await id(['clients', 'create', '--name', 'Acme Corp']);
  const profile = (await gatehouseCli(admin, ['profiles', 'create', '--client', client, '--name', 'acme-orders',
    '--auth-type', 'oidc', '--discovery-url', idp.discoveryUrl, '--collections', orders,
    '--audiences', idp.resource, '--json'])).json();
  say(`  gatehouse collections create  Orders  /orders/v1  -> ${orders}`);
  say(`  gatehouse collections create  Billing /billing/v1 -> ${billing}`);
  say(`  gatehouse clients create      Acme Corp           -> ${client}`);
  say(`  gatehouse profiles create     acme-orders (oidc, grants Orders only) -> ${profile.id}`);
  say(`  the IdP's discovery document and keys were fetched and checked when the profile was saved`);
  return profile;
}

async function main() {
  let profileKey = null;
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-demo-'));
  const idp = await startIdp({ profileKey: () => profileKey });
  const upstream = await startUpstream();
  let gh;
  try {
    say('gatehouse demo\n');
    say(`  IdP (oidc-provider)  ${idp.issuer}`);
    say(`  upstream service     ${upstream.url}`);
    gh = await startGatehouse(dir);
    say(`  gatehouse            gateway ${gh.gateway}, admin API ${gh.admin.url}\n`);

    say('1. configure with the CLI');
    const profile = await configure(gh.admin, upstream, idp);
    profileKey = profile.key; // the operator copies it into the IdP's claim settings
    say(`  the profile key goes into the IdP's claim https://gatehouse.dev/key\n`);

    say('2. the API client signs in at its own IdP (client credentials grant)');
    const token = await idp.getToken();
    show('access token', `${token.slice(0, 24)}... (${token.length} bytes, RS256)`);

    say('\n3. GET /orders/v1/items/42 with the token');
    let res = await fetch(`${gh.gateway}/orders/v1/items/42`, { headers: { authorization: `Bearer ${token}` } });
    const seen = await res.json();
    show('status', res.status);
    show('upstream got path', seen.path);
    show('X-Gatehouse-Client-Id', seen.headers['x-gatehouse-client-id']);
    show('X-Gatehouse-Profile-Id', seen.headers['x-gatehouse-profile-id']);
    const claims = JSON.parse(Buffer.from(seen.headers['x-gatehouse-claims'] ?? '', 'base64url').toString());
    show('X-Gatehouse-Claims', `iss=${claims.iss} client_id=${claims.client_id} aud=${claims.aud}`);
    expect(res.status === 200 && seen.headers['x-gatehouse-profile-id'] === profile.id, '200 with the identity headers');

    say('\n4. the same call without a token');
    res = await fetch(`${gh.gateway}/orders/v1/items/42`);
    show('status', res.status);
    show('WWW-Authenticate', res.headers.get('www-authenticate'));
    show('body', JSON.stringify(await res.json()));
    expect(res.status === 401, '401 without a token');

    say('\n5. GET /billing/v1/invoices with the token: Billing is not granted');
    res = await fetch(`${gh.gateway}/billing/v1/invoices`, { headers: { authorization: `Bearer ${token}` } });
    show('status', res.status);
    show('body', JSON.stringify(await res.json()));
    expect(res.status === 403, '403 for a collection not granted');

    say('\n6. what gatehouse explains for that call (gatehouse explain)');
    const explained = await gatehouseCli(gh.admin, ['explain', '--method', 'GET', '--path', '/billing/v1/invoices',
      '--header', `Authorization: Bearer ${token}`]);
    say(explained.stdout.split('\n').filter(Boolean).map((l) => `    ${l}`).join('\n'));
  } finally {
    if (gh) await gh.proc.stop({ signal: 'SIGTERM', timeoutMs: 10000 });
    await upstream.close();
    await idp.stop();
    await rm(dir, { recursive: true, force: true });
  }
  say(failures === 0 ? '\ndemo finished: everything happened as shown' : `\ndemo FAILED: ${failures} expectation(s) not met`);
  process.exitCode = failures === 0 ? 0 : 1;
}

main().catch((err) => {
  console.error(`demo failed: ${err.stack ?? err}`);
  process.exitCode = 1;
});
