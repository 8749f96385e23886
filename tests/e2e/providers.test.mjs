// SPDX-License-Identifier: Apache-2.0
// gatehouse against a real OpenID Provider: `gatehouse token verify` on access tokens that
// oidc-provider issued through the client credentials grant; and the provider that every oidc
// profile gets, even one whose IdP URL gatehouse refuses to fetch.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { decodeProtectedHeader } from 'jose';

import { KEY_CLAIM, start, tamperSignature } from './lib/idp.mjs';
import { gatehouseBin, haveGatehouse, run } from './lib/run.mjs';
import { startServer, waitUntil } from './lib/server.mjs';

const PROFILE_KEY = 'orders-m2m';
// No skipping: `make test` builds the binary first, and a run without it must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

function verifyArgs(idp, token) {
  return ['token', 'verify', '--discovery-url', idp.discoveryUrl, '--issuer', idp.issuer,
    '--audience', idp.resource, token];
}

function assertValid(r, idp, kid) {
  assert.equal(r.timedOut, false, 'gatehouse finished in time');
  assert.equal(r.code, 0, `exit 0\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  const out = r.json();
  assert.equal(out.valid, true);
  assert.equal(out.alg, 'RS256');
  if (kid) assert.equal(out.kid, kid);
  assert.equal(out.claims.iss, idp.issuer);
  assert.equal(out.claims.aud, idp.resource);
  assert.equal(out.claims[KEY_CLAIM], PROFILE_KEY);
}

function assertBadSignature(r) {
  assert.equal(r.timedOut, false, 'gatehouse finished in time');
  assert.equal(r.code, 1, `exit 1\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`);
  const out = r.json();
  assert.equal(out.valid, false);
  assert.equal(out.error, 'bad_signature');
}

describe('gatehouse token verify --jwks with the IdP key set', () => {
  let idp;
  let dir;
  let jwksFile;

  before(async () => {
    idp = await start({ profileKey: PROFILE_KEY });
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-e2e-'));
    jwksFile = join(dir, 'jwks.json');
    const res = await fetch(idp.jwksUrl);
    await writeFile(jwksFile, await res.text());
  });
  after(async () => {
    await idp?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('accepts a real access token', async () => {
    const token = await idp.getToken();
    const r = await run(['token', 'verify', '--jwks', jwksFile, '--issuer', idp.issuer,
      '--audience', idp.resource, token]);
    assertValid(r, idp, decodeProtectedHeader(token).kid);
  });

  test('refuses it with bad_signature once tampered', async () => {
    const token = tamperSignature(await idp.getToken());
    const r = await run(['token', 'verify', '--jwks', jwksFile, '--issuer', idp.issuer,
      '--audience', idp.resource, token]);
    assertBadSignature(r);
  });
});

describe('gatehouse token verify --discovery-url', () => {
  let idp;

  before(async () => {
    idp = await start({ profileKey: PROFILE_KEY });
  });
  after(async () => {
    await idp?.stop();
  });

  test('accepts a real access token', async () => {
    const token = await idp.getToken();
    const r = await run(verifyArgs(idp, token));
    assertValid(r, idp, decodeProtectedHeader(token).kid);
  });

  test('refuses a tampered token with bad_signature', async () => {
    const token = tamperSignature(await idp.getToken());
    const r = await run(verifyArgs(idp, token));
    assertBadSignature(r);
  });

  test('accepts a token signed with a key published by a rotation', async () => {
    const { kid } = await idp.rotate();
    const token = await idp.getToken();
    assert.equal(decodeProtectedHeader(token).kid, kid);
    const r = await run(verifyArgs(idp, token));
    assertValid(r, idp, kid);
  });
});

// Issue 10, item 8: a profile saved with ?validate=false on a discovery URL gatehouse will not
// fetch (plain http to a host that is not loopback) used to get no provider at all, so nothing
// showed why its tokens all got keys_unavailable.
describe('an oidc profile whose discovery URL is refused', () => {
  let gh;

  before(async () => {
    gh = await startServer();
  });
  after(async () => {
    await gh?.stop();
  });

  test('still has a provider: listed with the reason in last_error, counted in metrics, never fetched', async () => {
    const url = 'http://idp.example.test/.well-known/openid-configuration';
    const client = await gh.api('POST', '/v1/clients', { name: 'insecure' });
    assert.equal(client.status, 201, client.text);
    const body = { client_id: client.json.id, name: 'insecure-oidc', auth_type: 'oidc', oidc_discovery_url: url };
    const refused = await gh.api('POST', '/v1/profiles', body);
    assert.equal(refused.status, 422, refused.text);
    const saved = await gh.api('POST', '/v1/profiles?validate=false', body);
    assert.equal(saved.status, 201, saved.text);

    const list = await gh.api('GET', '/v1/providers');
    assert.equal(list.status, 200, list.text);
    const provider = list.json.data.find((p) => p.url === url);
    assert.ok(provider, `a provider for ${url}: ${list.text}`);
    assert.match(provider.last_error, /^discovery URL refused: plain http to a non-loopback host; use https or --allow-insecure-idp/);
    assert.equal(provider.available, false);
    assert.equal(provider.fetches, 0);
    assert.equal(provider.next_refresh_at, null, 'never fetched, nothing scheduled');
    const one = await gh.api('GET', `/v1/providers/${provider.id}`);
    assert.equal(one.status, 200, one.text);
    assert.equal(one.json.last_error, provider.last_error);

    const res = await fetch(`${gh.url}/metrics`, { headers: { authorization: `Bearer ${gh.token}` } });
    const text = await res.text();
    assert.match(text, new RegExp(`^gatehouse_provider_available\\{provider="${provider.id}"\\} 0$`, 'm'));
    assert.match(text, new RegExp(`^gatehouse_provider_fetches_total\\{provider="${provider.id}"\\} 0$`, 'm'));
    // and the provider thread sleeps: about one wake-up a second (issue 10, item 1)
    const wakeups = async () => Number((await (await fetch(`${gh.url}/metrics`, { headers: { authorization: `Bearer ${gh.token}` } })).text())
      .match(/^gatehouse_provider_manager_wakeups_total (\d+)$/m)[1]);
    const before = await wakeups();
    await new Promise((r) => setTimeout(r, 2000)); // a window to count in, not a wait for a condition
    const woke = (await wakeups()) - before;
    assert.ok(woke <= 8, `${woke} wake-ups of the provider thread in 2 s`);

    // a refresh asked by the operator does not fetch either: it failed (502, as any failed
    // refresh), and says why
    const refresh = await gh.api('POST', `/v1/providers/${provider.id}/refresh`);
    assert.equal(refresh.status, 502, refresh.text);
    assert.equal(refresh.json.error, 'bad_gateway');
    assert.match(refresh.json.message, /discovery URL refused/);
    assert.equal(refresh.json.provider.fetches, 0);
    assert.equal(refresh.json.provider.last_error, provider.last_error);

    // deleting the profile retires the provider
    const del = await gh.api('DELETE', `/v1/profiles/${saved.json.id}`);
    assert.ok(del.status === 200 || del.status === 204, del.text);
    const after = await gh.api('GET', '/v1/providers');
    assert.equal(after.json.data.some((p) => p.url === url), false, after.text);
  });
});

// Issue 10, item 6: what happens to an IdP is logged as JSON lines on stdout (before, only metrics
// showed it). `serve --log-level debug` also logs each HTTP fetch.
describe('provider events in the log of gatehouse serve', () => {
  let gh;
  let idp;

  before(async () => {
    idp = await start({ profileKey: PROFILE_KEY });
    gh = await startServer({ args: ['--log-level', 'debug'] });
  });
  after(async () => {
    await gh?.stop();
    await idp?.stop();
  });

  const lines = (msg) => gh.output().stdout.split('\n')
    .filter((l) => l.startsWith('{') && l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l));

  test('keys loaded and changed with their kids, each fetch at debug level, a failed fetch with its error', async () => {
    const client = await gh.api('POST', '/v1/clients', { name: 'logged' });
    const profile = await gh.api('POST', '/v1/profiles', {
      client_id: client.json.id, name: 'logged-oidc', auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl,
    });
    assert.equal(profile.status, 201, profile.text);
    const provider = (await gh.api('GET', '/v1/providers')).json.data[0];
    const firstKid = idp.activeKid('RS256');
    const [loaded] = await waitUntil(() => (lines('identity provider keys loaded').length ? lines('identity provider keys loaded') : null), { what: 'keys loaded' });
    assert.equal(loaded.level, 'info');
    assert.equal(loaded.provider, provider.id);
    assert.equal(loaded.url, idp.discoveryUrl);
    assert.ok(loaded.added.includes(firstKid), JSON.stringify(loaded));
    assert.deepEqual(loaded.removed, []);
    const fetches = lines('identity provider fetch');
    assert.ok(fetches.some((l) => l.fetch_url === idp.discoveryUrl && l.status === 200 && l.bytes > 0 && l.result === 'ok'), JSON.stringify(fetches));
    assert.ok(fetches.some((l) => l.fetch_url === idp.jwksUrl && l.status === 200 && Number.isInteger(l.duration_ms)), JSON.stringify(fetches));

    const { kid } = await idp.rotate();
    await gh.api('POST', `/v1/providers/${provider.id}/refresh`);
    const changed = await waitUntil(() => lines('identity provider keys changed').find((l) => l.added.includes(kid)), { what: 'keys changed' });
    assert.equal(changed.provider, provider.id);
    assert.deepEqual(changed.removed, []);

    await idp.stop();
    idp = null;
    await gh.api('POST', `/v1/providers/${provider.id}/refresh`);
    const failed = await waitUntil(() => lines('identity provider fetch failed')[0], { what: 'fetch failed' });
    assert.equal(failed.level, 'warn');
    assert.equal(failed.provider, provider.id);
    assert.equal(failed.url, provider.url);
    assert.ok(failed.error.length > 0);
    assert.equal(failed.failures_in_row, 1);
    // never key material
    assert.doesNotMatch(gh.output().stdout, /"kty"|"n":"|"x":"/);
  });
});
