// SPDX-License-Identifier: Apache-2.0
// The issuer rules of SPEC §3 and §4 against the real OpenID Provider, spelled as Auth0 spells its
// issuer: `http://127.0.0.1:<port>/`, with a terminating '/', its discovery document at
// `http://127.0.0.1:<port>/.well-known/openid-configuration` (OpenID Connect Discovery removes
// that '/' before appending the suffix). The admin API's save-time check, the gateway and
// `gatehouse token verify --discovery-url` accept it alike, then check `iss` exactly as the
// document spells it; a profile's allowed_issuers replaces that rule (ADFS access tokens say
// `http://HOST/adfs/services/trust`, Entra ID v1 tokens `https://sts.windows.net/TENANT/`).
// The table of real IdPs' shapes is in tests/unit/test_oidc_policy.c.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { KEY_CLAIM, start as startIdp } from './lib/idp.mjs';
import { create, send, startGateway, stopClean } from './lib/proofs-http.mjs';
import { gatehouseBin, haveGatehouse, run } from './lib/run.mjs';
import { startUpstream } from './lib/upstream.mjs';

// No skipping: a run without the binary must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

describe('an IdP whose issuer ends in "/" (Auth0\'s form), and allowed_issuers in place of it', () => {
  let idp;
  let up;
  let gh;
  let idpKey = null;
  let slashless; // the issuer without its '/': what a token of another IdP could say
  let trust; // an ADFS-like access-token issuer on the same host
  const p = {};

  before(async () => {
    idp = await startIdp({ issuerTrailingSlash: true, profileKey: () => idpKey });
    assert.ok(idp.issuer.endsWith('/'), idp.issuer);
    slashless = idp.issuer.slice(0, -1);
    trust = `${slashless}/adfs/services/trust`;
    up = await startUpstream();
    gh = await startGateway();
    const col = await create(gh, '/v1/collections', { name: 'iss', path: '/iss/v1', upstream: up.url });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/items' });
    const client = await create(gh, '/v1/clients', { name: 'iss' });
    const base = { client_id: client.id, collection_ids: [col.id], auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl };
    // saved WITH the save-time check: the discovery document must pass it
    p.discovery = await create(gh, '/v1/profiles', { ...base, name: 'auth0-like', audiences: [idp.resource] });
    p.adfs = await create(gh, '/v1/profiles', { ...base, name: 'adfs-like', allowed_issuers: [trust] });
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
      await idp?.stop();
    }
  });

  const bearer = (t) => ({ authorization: `Bearer ${t}` });

  async function expectReason(token, reason) {
    const r = await send(gh.gw, '/iss/v1/items', { headers: bearer(token) });
    assert.equal(r.status, 401, `401 ${reason}, got ${r.status}: ${r.text}`);
    assert.match(r.headers['www-authenticate'] ?? '', new RegExp(`error_description="${reason}"`));
  }

  test('the admin API saved the profile and its provider names the issuer with its "/"', async () => {
    const providers = (await gh.api('GET', '/v1/providers')).json.data;
    const provider = providers.find((x) => x.url === idp.discoveryUrl);
    assert.ok(provider, `a provider for ${idp.discoveryUrl}: ${JSON.stringify(providers)}`);
    assert.equal(provider.issuer, idp.issuer);
    assert.equal(provider.last_error, null);
  });

  test('the gateway admits a token from the token endpoint (iss with the "/")', async () => {
    idpKey = p.discovery.key;
    const token = await idp.getToken();
    assert.equal(JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).iss, idp.issuer);
    const r = await send(gh.gw, '/iss/v1/items', { headers: bearer(token) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.headers['x-gatehouse-profile-id'], p.discovery.id);
  });

  test('iss is checked exactly as the document spells it: without the "/" it is wrong_issuer', async () => {
    await expectReason(await idp.sign({ iss: slashless, [KEY_CLAIM]: p.discovery.key }), 'wrong_issuer');
    await expectReason(await idp.sign({ iss: `${idp.issuer}/`, [KEY_CLAIM]: p.discovery.key }), 'wrong_issuer');
  });

  test('allowed_issuers replaces the discovery issuer: its iss is admitted, the discovery issuer is not', async () => {
    const ok = await send(gh.gw, '/iss/v1/items', { headers: bearer(await idp.sign({ iss: trust, [KEY_CLAIM]: p.adfs.key })) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.headers['x-gatehouse-profile-id'], p.adfs.id);
    await expectReason(await idp.sign({ iss: idp.issuer, [KEY_CLAIM]: p.adfs.key }), 'wrong_issuer');
  });

  async function verify(token, ...extra) {
    return run(['token', 'verify', '--discovery-url', idp.discoveryUrl, '--audience', idp.resource, ...extra, token]);
  }

  test('token verify --discovery-url accepts the same token, and refuses the slashless iss', async () => {
    idpKey = p.discovery.key;
    let r = await verify(await idp.getToken());
    assert.equal(r.code, 0, `exit 0\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.json().claims.iss, idp.issuer);
    r = await verify(await idp.sign({ iss: slashless }));
    assert.equal(r.code, 1, `exit 1\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.json().error, 'wrong_issuer');
  });

  test('token verify --discovery-url --issuer ISS checks iss as a profile\'s allowed_issuers does', async () => {
    let r = await verify(await idp.sign({ iss: trust }), '--issuer', trust);
    assert.equal(r.code, 0, `exit 0\n${r.stdout}\n${r.stderr}`);
    r = await verify(await idp.sign({ iss: idp.issuer }), '--issuer', trust);
    assert.equal(r.code, 1, `exit 1\n${r.stdout}\n${r.stderr}`);
    assert.equal(r.json().error, 'wrong_issuer');
  });
});
