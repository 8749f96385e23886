// SPDX-License-Identifier: Apache-2.0
// gatehouse against a real OpenID Provider: `gatehouse token verify` on access tokens that
// oidc-provider issued through the client credentials grant.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { decodeProtectedHeader } from 'jose';

import { KEY_CLAIM, start, tamperSignature } from './lib/idp.mjs';
import { gatehouseBin, haveGatehouse, run } from './lib/run.mjs';

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
