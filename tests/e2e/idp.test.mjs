// SPDX-License-Identifier: Apache-2.0
// Proves the harness itself: the real OpenID Provider on loopback issues what the gatehouse
// end-to-end tests rely on, checked independently with jose.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';

import { DEFAULT_RESOURCE, KEY_CLAIM, start, tamperSignature } from './lib/idp.mjs';

const PROFILE_KEY = 'orders-m2m';

async function getJson(url) {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  assert.match(res.headers.get('content-type') ?? '', /json/);
  return res.json();
}

describe('oidc-provider harness', () => {
  let idp;

  before(async () => {
    idp = await start({ profileKey: PROFILE_KEY });
  });
  after(async () => {
    await idp?.stop();
  });

  test('listens on 127.0.0.1 with the issuer http://127.0.0.1:<port>', () => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.ok(idp.port > 0);
    assert.equal(idp.issuer, `http://127.0.0.1:${idp.port}`);
    assert.equal(idp.discoveryUrl, `${idp.issuer}/.well-known/openid-configuration`);
  });

  test('serves the discovery document with its issuer, jwks_uri and token endpoint', async () => {
    const doc = await getJson(idp.discoveryUrl);
    assert.equal(doc.issuer, idp.issuer);
    assert.equal(doc.jwks_uri, idp.jwksUrl);
    assert.equal(doc.token_endpoint, idp.tokenEndpoint);
    assert.ok(doc.grant_types_supported.includes('client_credentials'));
    assert.ok(doc.token_endpoint_auth_methods_supported.includes('client_secret_basic'));
    // gatehouse's rule (SPEC §4): the issuer is the discovery URL less the well-known suffix.
    assert.equal(idp.discoveryUrl.replace(/\/\.well-known\/openid-configuration$/, ''), doc.issuer);
  });

  test('serves a JWKS of public RS256 and ES256 keys with distinct kids', async () => {
    const jwks = await getJson(idp.jwksUrl);
    assert.ok(Array.isArray(jwks.keys));
    const algs = jwks.keys.map((k) => k.alg).sort();
    assert.deepEqual(algs, ['ES256', 'RS256']);
    assert.equal(new Set(jwks.keys.map((k) => k.kid)).size, jwks.keys.length);
    for (const k of jwks.keys) {
      assert.equal(k.use, 'sig');
      for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(k[priv], undefined, `${k.kid} leaks ${priv}`);
    }
  });

  test('client credentials grant gives an RS256 JWT access token with the key claim', async () => {
    const res = await idp.getTokenResponse();
    assert.equal(res.token_type, 'Bearer');
    assert.ok(res.expires_in > 0);
    const token = res.access_token;
    assert.equal(token.split('.').length, 3);

    const header = decodeProtectedHeader(token);
    assert.equal(header.alg, 'RS256');
    assert.equal(header.typ, 'at+jwt');
    const jwks = await getJson(idp.jwksUrl);
    assert.ok(jwks.keys.some((k) => k.kid === header.kid), `kid ${header.kid} is in the JWKS`);
    assert.equal(header.kid, idp.activeKid('RS256'));

    const claims = decodeJwt(token);
    const now = Math.floor(Date.now() / 1000);
    assert.equal(claims.iss, idp.issuer);
    assert.equal(claims.aud, DEFAULT_RESOURCE);
    assert.ok(claims.exp > now, 'exp is in the future');
    assert.ok(claims.iat <= now + 1);
    assert.equal(claims[KEY_CLAIM], PROFILE_KEY);
    assert.equal(claims.client_id, idp.clients[0].client_id);
  });

  test('client_secret_post and requested scopes work too', async () => {
    const token = await idp.getToken({ authMethod: 'client_secret_post', scope: 'gatehouse:read' });
    const claims = decodeJwt(token);
    assert.equal(claims.scope, 'gatehouse:read');
    assert.equal(claims[KEY_CLAIM], PROFILE_KEY);
  });

  test('a wrong client secret is refused', async () => {
    await assert.rejects(idp.getToken({ clientSecret: 'wrong' }), (err) => {
      assert.equal(err.status, 401);
      assert.equal(err.response.error, 'invalid_client');
      return true;
    });
  });

  test('an unknown resource is refused', async () => {
    await assert.rejects(idp.getToken({ resource: 'https://other.example' }), (err) => {
      assert.equal(err.response.error, 'invalid_target');
      return true;
    });
  });

  test('jose verifies the token against the remote JWKS (independent check)', async () => {
    const token = await idp.getToken();
    const jwks = createRemoteJWKSet(new URL(idp.jwksUrl));
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: idp.issuer,
      audience: DEFAULT_RESOURCE,
      algorithms: ['RS256'],
      typ: 'at+jwt',
    });
    assert.equal(protectedHeader.alg, 'RS256');
    assert.equal(payload[KEY_CLAIM], PROFILE_KEY);

    await assert.rejects(jwtVerify(tamperSignature(token), jwks), { code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  });

  test('tamperSignature changes the decoded signature, for RS256 and ES256', async () => {
    for (const alg of ['RS256', 'ES256']) {
      const token = await idp.sign({}, { alg });
      const bad = tamperSignature(token);
      assert.notEqual(bad, token);
      const sig = (t) => Buffer.from(t.split('.')[2], 'base64url');
      assert.equal(sig(bad).length, sig(token).length);
      assert.notDeepEqual(sig(bad), sig(token));
      assert.equal(sig(bad).toString('base64url'), bad.split('.')[2], 'still canonical base64url');
    }
  });

  test('sign() makes tokens with a published key that jose accepts', async () => {
    const jwks = createRemoteJWKSet(new URL(idp.jwksUrl));
    const token = await idp.sign({ sub: 'x' }, { alg: 'ES256' });
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: idp.issuer, audience: DEFAULT_RESOURCE });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(protectedHeader.kid, idp.activeKid('ES256'));
    assert.equal(payload[KEY_CLAIM], PROFILE_KEY);
  });

  test('counts requests, sets Cache-Control and simulates an outage', async () => {
    const before = idp.requests.jwks;
    idp.setCacheControl({ jwks: 'public, max-age=120' });
    let res = await fetch(idp.jwksUrl);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=120');
    await res.arrayBuffer();
    idp.setCacheControl({ jwks: undefined });

    idp.setFailure(503);
    res = await fetch(idp.jwksUrl);
    assert.equal(res.status, 503);
    await res.arrayBuffer();
    res = await fetch(idp.discoveryUrl);
    assert.equal(res.status, 503);
    await res.arrayBuffer();
    assert.ok(await idp.getToken(), 'tokens are still issued during a key-set outage');
    idp.setFailure(null);

    res = await fetch(idp.jwksUrl);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), null);
    await res.arrayBuffer();
    assert.equal(idp.requests.jwks, before + 3);
  });
});

describe('per-client profile keys', () => {
  let idp;

  before(async () => {
    idp = await start({
      profileKey: 'fallback',
      clients: [
        { client_id: 'billing', client_secret: 'billing-secret', profile_key: 'billing-key' },
        { client_id: 'reports', client_secret: 'reports-secret', token_endpoint_auth_method: 'client_secret_post' },
        { client_id: 'nokey', client_secret: 'nokey-secret', profile_key: null },
      ],
    });
  });
  after(async () => {
    await idp?.stop();
  });

  test('each client gets its own key claim (or the default, or none)', async () => {
    assert.equal(decodeJwt(await idp.getToken({ clientId: 'billing' }))[KEY_CLAIM], 'billing-key');
    assert.equal(decodeJwt(await idp.getToken({ clientId: 'reports' }))[KEY_CLAIM], 'fallback');
    assert.equal(decodeJwt(await idp.getToken({ clientId: 'nokey' }))[KEY_CLAIM], undefined);
  });
});

describe('key rotation', () => {
  let idp;

  before(async () => {
    idp = await start({ profileKey: PROFILE_KEY });
  });
  after(async () => {
    await idp?.stop();
  });

  test('publishes a new key, signs with it, then drops the old one; issuer and port stay', async () => {
    const issuer = idp.issuer;
    const oldToken = await idp.getToken();
    const oldKid = decodeProtectedHeader(oldToken).kid;

    // Step 1: publish the next key without signing with it yet.
    const { kid: newKid, previousKid } = await idp.rotate({ activate: false });
    assert.equal(previousKid, oldKid);
    assert.notEqual(newKid, oldKid);
    let kids = (await getJson(idp.jwksUrl)).keys.map((k) => k.kid);
    assert.ok(kids.includes(oldKid) && kids.includes(newKid), 'both keys are published');
    assert.equal(decodeProtectedHeader(await idp.getToken()).kid, oldKid, 'still signing with the old key');

    // Step 2: sign with it.
    idp.useKey(newKid);
    const newToken = await idp.getToken();
    assert.equal(decodeProtectedHeader(newToken).kid, newKid);

    // Same issuer, same port, same discovery document.
    assert.equal(idp.issuer, issuer);
    const doc = await getJson(idp.discoveryUrl);
    assert.equal(doc.issuer, issuer);
    assert.equal(doc.jwks_uri, idp.jwksUrl);

    // Both tokens verify while both keys are published (fresh key set fetch each time).
    for (const t of [oldToken, newToken]) {
      await jwtVerify(t, createRemoteJWKSet(new URL(idp.jwksUrl)), { issuer, audience: DEFAULT_RESOURCE });
    }

    // Step 3: drop the old key; old tokens no longer find their key.
    await idp.dropKey(oldKid);
    kids = (await getJson(idp.jwksUrl)).keys.map((k) => k.kid);
    assert.ok(!kids.includes(oldKid) && kids.includes(newKid));
    const jwks = createRemoteJWKSet(new URL(idp.jwksUrl));
    await jwtVerify(newToken, jwks, { issuer, audience: DEFAULT_RESOURCE });
    await assert.rejects(jwtVerify(oldToken, jwks), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
  });

  test('rotate() in one step signs with the new key at once and can drop the previous one', async () => {
    const before = idp.activeKid('RS256');
    const { kid, previousKid } = await idp.rotate({ dropPrevious: true });
    assert.equal(previousKid, before);
    const token = await idp.getToken();
    assert.equal(decodeProtectedHeader(token).kid, kid);
    const kids = (await getJson(idp.jwksUrl)).keys.map((k) => k.kid);
    assert.ok(kids.includes(kid));
    assert.ok(!kids.includes(before));
    await assert.rejects(idp.dropKey(kid), /signing/);
  });
});
