// SPDX-License-Identifier: Apache-2.0
// Proofs through HTTP against the real `gatehouse serve` of what gateway.test.mjs does not show:
// the JOSE attack corpus (tests/unit/test_attacks.c) re-made in JavaScript and sent to the data
// plane, the access profile key lookup of SPEC §2 (custom claims, the default order, no
// fall-through), every auth type, configuration changes under continuous load, SIGTERM under
// load, and explain. Everything on 127.0.0.1 with ephemeral ports; processes are stopped by pid.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { KEY_CLAIM, start as startIdp, tamperSignature } from './lib/idp.mjs';
import {
  create, loadLoop, send, startGateway, startWideUpstream, stopClean, timedRequest,
} from './lib/proofs-http.mjs';
import {
  b64url, b64urlLength, ecdsaRawToDer, ed25519AddOrder, editSignature, insertInSegment, newKeyPair,
  nonCanonical, P256_ORDER, padded, privateJwkOf, publicJwkOf, publicPem, signJws,
} from './lib/forge-jws.mjs';
import { gatehouseBin, haveGatehouse, run } from './lib/run.mjs';
import {
  makeTempDir, sleep, startHttpServer, waitUntil,
} from './lib/server.mjs';
import { startUpstream } from './lib/upstream.mjs';

// No skipping: a run without the binary must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const REALM = 'Bearer realm="gatehouse"';
const STATIC_ISS = 'https://idp.example';
const STATIC_AUD = 'orders';

/** Asserts a SPEC §5 error answer of send(): status, JSON body with error, message, request_id. */
function expectError(r, status, code) {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text.slice(0, 400)}`);
  assert.match(r.headers['content-type'] ?? '', /^application\/json/, `a JSON error: ${r.text.slice(0, 200)}`);
  assert.ok(r.json, `a JSON body: ${r.text.slice(0, 200)}`);
  assert.deepEqual(Object.keys(r.json).sort(), ['error', 'message', 'request_id']);
  assert.equal(r.json.error, code);
  assert.ok(r.json.message.length > 0);
  assert.equal(r.json.request_id, r.headers['x-request-id']);
  return r.json;
}

/** Asserts 401 invalid_token with that reason in WWW-Authenticate (RFC 6750). */
function expectInvalidToken(r, reason) {
  expectError(r, 401, 'invalid_token');
  assert.equal(r.headers['www-authenticate'],
    `${REALM}, error="invalid_token", error_description="${reason}"`,
    `reason: ${r.headers['www-authenticate']} (${r.json.message})`);
}

/** No part of the answer (body, any header) holds the token or a long piece of it. */
function assertNoEcho(r, token) {
  const answer = [r.text, ...r.rawHeaders].join('\n');
  if (token.length >= 8) assert.ok(!answer.includes(token), 'the answer echoes the token');
  for (const seg of token.split('.')) {
    if (seg.length >= 16) assert.ok(!answer.includes(seg), 'the answer echoes a segment of the token');
  }
}

/** What the upstream echoed through a 200. */
function echoed(r) {
  assert.equal(r.status, 200, `expected 200, got ${r.status}: ${r.text.slice(0, 400)}`);
  return r.json;
}

function bearer(token) {
  return { authorization: `Bearer ${token}` };
}

function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

/** A self-signed certificate for a new RSA key claiming to be the IdP: { key (KeyObject), x5c }. */
async function attackerCertificate(dir) {
  const keyFile = join(dir, 'attacker.key');
  const certFile = join(dir, 'attacker.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', '/CN=idp.example'], { stdio: 'ignore' });
  const pem = await readFile(certFile, 'utf8');
  const x5c = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return { key: createPrivateKey(await readFile(keyFile)), x5c };
}

// ---------------------------------------------------------------------------------------------

describe('the JOSE attack corpus through HTTP: 401 invalid_token with the reason, never an echo', () => {
  let gh;
  let idp;
  let up;
  let bait; // the attacker's own server, named by jku and x5u: must never be asked
  let dir;
  const profiles = {}; // name -> { id, key, iss, aud }
  const signers = {};
  const sent = [];
  let controls = 0;
  let attacker;

  before(async () => {
    dir = await makeTempDir('gatehouse-proofs-');
    // the IdP's set: RSA, EC and Ed25519 keys in use, and a legacy 1024-bit key still published
    const pairs = {
      rsa: [newKeyPair('rsa'), 'rsa-2025', 'RS256'],
      ec: [newKeyPair('p256'), 'ec-2025', 'ES256'],
      ed: [newKeyPair('ed25519'), 'ed-2025', 'EdDSA'],
      weak: [newKeyPair('rsa', 1024), 'rsa-legacy', 'RS256'],
    };
    for (const [name, [pair, kid, alg]] of Object.entries(pairs)) signers[name] = { key: pair.privateKey, kid, alg };
    attacker = await attackerCertificate(dir);
    signers.evilRsa = { key: attacker.key, kid: 'attacker', alg: 'RS256' };
    signers.evilEc = { key: newKeyPair('p256').privateKey, kid: 'attacker-ec', alg: 'ES256' };
    signers.p521 = { key: newKeyPair('p521').privateKey, kid: 'p521', alg: 'ES512' };
    signers.staticRsa = { key: newKeyPair('rsa').privateKey, kid: 'static-rsa', alg: 'RS256' };
    signers.staticEc = { key: newKeyPair('p256').privateKey, kid: 'ec-static', alg: 'ES256' };

    let oidcKey = null;
    idp = await startIdp({
      keys: Object.values(pairs).map(([pair, kid, alg]) => privateJwkOf(pair.privateKey, { kid, alg, use: 'sig' })),
      profileKey: () => oidcKey,
    });
    up = await startWideUpstream(); // the controls at the size limits forward 16 KiB heads
    let baitRequests = 0;
    bait = await startHttpServer((req, res) => {
      baitRequests += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [publicJwkOf(attacker.key, { kid: 'attacker', alg: 'RS256', use: 'sig' })] }));
    });
    bait.requests = () => baitRequests;
    gh = await startGateway();

    const col = await create(gh, '/v1/collections', { name: 'corpus', path: '/corpus/v1', upstream: up.url });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'ANY', path: '/*' });
    const client = await create(gh, '/v1/clients', { name: 'corpus' });
    const oidc = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'corpus-oidc', auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl,
      audiences: [idp.resource], collection_ids: [col.id],
    });
    oidcKey = oidc.key;
    profiles.oidc = { id: oidc.id, key: oidc.key, iss: idp.issuer, aud: idp.resource };
    const pem = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'corpus-pem', auth_type: 'jwt', jwt_key: publicPem(signers.staticRsa.key),
      algorithms: ['RS256'], allowed_issuers: [STATIC_ISS], audiences: [STATIC_AUD], collection_ids: [col.id],
    });
    profiles.pem = { id: pem.id, key: pem.key, iss: STATIC_ISS, aud: STATIC_AUD };
    const ecJwk = publicJwkOf(signers.staticEc.key, { kid: 'ec-static', alg: 'ES256', use: 'sig' });
    const ec = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'corpus-ec-jwk', auth_type: 'jwt', jwt_key: JSON.stringify(ecJwk),
      allowed_issuers: [STATIC_ISS], audiences: [STATIC_AUD], collection_ids: [col.id],
    });
    profiles.ec = { id: ec.id, key: ec.key, iss: STATIC_ISS, aud: STATIC_AUD };
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
      await bait?.stop();
      await idp?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  });

  // ---- building tokens ----

  let now = nowSeconds(); // set again just before each token is made: times are relative to it

  /** The payload text of a token the profile accepts, minus `drop`, plus raw JSON members `add`. */
  function claims(p, { drop = [], add = [], key } = {}) {
    const base = [['iss', p.iss], ['aud', p.aud], ['sub', 'alice'], ['iat', now - 1000], ['exp', now + 3600],
      [KEY_CLAIM, key ?? p.key]];
    const members = base.filter(([k]) => !drop.includes(k)).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    return `{${[...members, ...add].join(',')}}`;
  }

  /** A header naming the signer's alg and kid, plus raw members. */
  function hdr(s, ...extra) {
    return `{"alg":"${s.alg}","kid":"${s.kid}"${extra.map((e) => `,${e}`).join('')}}`;
  }

  /** A payload whose base64url has spare bits (length not a multiple of 3 bytes). */
  function withSpareBits(payload) {
    let filler = '';
    let text = payload;
    while (Buffer.byteLength(text) % 3 === 0) {
      filler += 'x';
      text = `${payload.slice(0, -1)},"f":"${filler}"}`;
    }
    return text;
  }

  const tok = (header, payload, s, alg) => signJws(header, payload, s.key, alg ? { alg } : {});

  /** A properly signed RS256 token of exactly `size` characters, grown by a header member. */
  function sizedToken(p, size) {
    const sigChars = b64urlLength(256);
    const open = `{"alg":"RS256","kid":"rsa-2025","pad":"`;
    for (let pad = 0; pad < 3; pad++) {
      const payload = claims(p, { add: [`"pad":"${'x'.repeat(pad)}"`] });
      const fixed = b64urlLength(Buffer.byteLength(payload)) + 2 + sigChars;
      for (let h = 0; h < size; h++) {
        const total = b64urlLength(open.length + h + 2) + fixed;
        if (total > size) break;
        if (total === size) {
          const token = tok(`${open}${'x'.repeat(h)}"}`, payload, signers.rsa);
          assert.equal(token.length, size);
          return token;
        }
      }
    }
    throw new Error(`no token of ${size} characters`);
  }

  /** A properly signed RS256 token whose payload is exactly `size` bytes. */
  function sizedPayload(p, size) {
    const open = claims(p, { add: ['"pad":""'] });
    const payload = `${open.slice(0, -2)}${'x'.repeat(size - Buffer.byteLength(open))}"}`;
    assert.equal(Buffer.byteLength(payload), size);
    return tok(hdr(signers.rsa), payload, signers.rsa);
  }

  const OPEN15 = '['.repeat(15);
  const CLOSE15 = ']'.repeat(15);
  const ecSig = (fn) => (p) => editSignature(tok(hdr(signers.ec), claims(p), signers.ec), fn);
  const rsaSig = (fn) => (p) => editSignature(tok(hdr(signers.rsa), claims(p), signers.rsa), fn);
  const edSig = (fn) => (p) => editSignature(tok(hdr(signers.ed), claims(p), signers.ed), fn);
  const s = signers;

  // [name, profile, expected reason (or 200 for a control), build(profile) -> token]
  const cases = [
    // positive controls: the corpus cannot pass by refusing everything
    ['control: RS256 token', 'oidc', 200, (p) => tok(hdr(s.rsa), claims(p), s.rsa)],
    ['control: ES256 token', 'oidc', 200, (p) => tok(hdr(s.ec), claims(p), s.ec)],
    ['control: EdDSA token', 'oidc', 200, (p) => tok(hdr(s.ed), claims(p), s.ed)],
    ['control: RS256 without kid tries each fitting key', 'oidc', 200, (p) => tok('{"alg":"RS256"}', claims(p), s.rsa)],
    ['control: header nests exactly 16 levels', 'oidc', 200, (p) => tok(hdr(s.rsa, `"x":${OPEN15}0${CLOSE15}`), claims(p), s.rsa)],
    ['control: token of exactly 16384 bytes', 'oidc', 200, (p) => sizedToken(p, 16384)],
    ['control: payload of exactly 10240 bytes', 'oidc', 200, (p) => sizedPayload(p, 10240)],
    ['control: exp 30 s ago, within the leeway', 'oidc', 200, (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: [`"exp":${now - 30}`] }), s.rsa)],
    ['control: nbf and iat 30 s ahead, within the leeway', 'oidc', 200, (p) => tok(hdr(s.rsa), claims(p, { drop: ['iat'], add: [`"iat":${now + 30}`, `"nbf":${now + 30}`] }), s.rsa)],
    ['control: aud array holding the audience', 'oidc', 200, (p) => tok(hdr(s.rsa), claims(p, { drop: ['aud'], add: [`"aud":["billing",${JSON.stringify(p.aud)}]`] }), s.rsa)],
    ['control: jwt profile, static PEM RSA key', 'pem', 200, (p) => tok('{"alg":"RS256"}', claims(p), s.staticRsa)],
    ['control: jwt profile, static EC JWK', 'ec', 200, (p) => tok(hdr(s.staticEc), claims(p), s.staticEc)],

    // alg
    ['alg none, with a signature', 'oidc', 'alg_not_allowed', (p) => tok('{"alg":"none"}', claims(p), s.rsa, 'RS256')],
    ['alg none, empty signature (unsecured JWT)', 'oidc', 'alg_not_allowed', (p) => `${b64url('{"alg":"none"}')}.${b64url(claims(p))}.`],
    ['alg none naming the RSA key', 'oidc', 'alg_not_allowed', (p) => tok('{"alg":"none","kid":"rsa-2025"}', claims(p), s.rsa, 'RS256')],
    ['alg None', 'oidc', 'alg_not_allowed', (p) => tok('{"alg":"None"}', claims(p), s.rsa, 'RS256')],
    ['alg NONE', 'oidc', 'alg_not_allowed', (p) => tok('{"alg":"NONE"}', claims(p), s.rsa, 'RS256')],
    ['alg None, empty signature', 'oidc', 'alg_not_allowed', (p) => `${b64url('{"alg":"None"}')}.${b64url(claims(p))}.`],
    ['alg NONE, empty signature', 'oidc', 'alg_not_allowed', (p) => `${b64url('{"alg":"NONE"}')}.${b64url(claims(p))}.`],
    ['alg nOnE, empty signature', 'oidc', 'alg_not_allowed', (p) => `${b64url('{"alg":"nOnE"}')}.${b64url(claims(p))}.`],
    ['alg none, empty signature, on a jwt profile', 'pem', 'alg_not_allowed', (p) => `${b64url('{"alg":"none"}')}.${b64url(claims(p))}.`],
    ['alg none on a jwt profile', 'pem', 'alg_not_allowed', (p) => tok('{"alg":"none"}', claims(p), s.staticRsa, 'RS256')],
    ['alg missing', 'oidc', 'malformed', (p) => tok('{"kid":"rsa-2025"}', claims(p), s.rsa, 'RS256')],
    ['alg is a number', 'oidc', 'malformed', (p) => tok('{"alg":256,"kid":"rsa-2025"}', claims(p), s.rsa, 'RS256')],
    ['alg is an array', 'oidc', 'malformed', (p) => tok('{"alg":["RS256"],"kid":"rsa-2025"}', claims(p), s.rsa, 'RS256')],
    ['alg is null', 'oidc', 'malformed', (p) => tok('{"alg":null,"kid":"rsa-2025"}', claims(p), s.rsa, 'RS256')],
    ['alg is empty', 'oidc', 'alg_not_allowed', (p) => tok('{"alg":"","kid":"rsa-2025"}', claims(p), s.rsa, 'RS256')],
    ['alg unknown (RS1)', 'oidc', 'alg_not_allowed', (p) => tok('{"alg":"RS1","kid":"rsa-2025"}', claims(p), s.rsa, 'RS256')],
    ['alg in lower case (rs256)', 'oidc', 'alg_not_allowed', (p) => tok('{"alg":"rs256","kid":"rsa-2025"}', claims(p), s.rsa, 'RS256')],
    ['alg with a trailing space', 'oidc', 'alg_not_allowed', (p) => tok('{"alg":"RS256 ","kid":"rsa-2025"}', claims(p), s.rsa, 'RS256')],
    ['alg ES256K (unsupported curve)', 'oidc', 'alg_not_allowed', (p) => tok('{"alg":"ES256K","kid":"ec-2025"}', claims(p), s.ec, 'ES256')],
    ['alg Ed25519 (fully specified name, unsupported)', 'oidc', 'alg_not_allowed', (p) => tok('{"alg":"Ed25519","kid":"ed-2025"}', claims(p), s.ed, 'EdDSA')],
    ['HS256 keyed with the IdP RSA key\'s PEM (key confusion)', 'oidc', 'alg_not_allowed',
      (p) => signJws('{"alg":"HS256","kid":"rsa-2025"}', claims(p), Buffer.from(publicPem(s.rsa.key)))],
    ['HS256 keyed with the PEM of a jwt profile\'s static key', 'pem', 'alg_not_allowed',
      (p) => signJws('{"alg":"HS256","typ":"JWT"}', claims(p), Buffer.from(publicPem(s.staticRsa.key)))],
    ['HS256 keyed with the text of a jwt profile\'s static JWK', 'ec', 'alg_not_allowed',
      (p) => signJws('{"alg":"HS256"}', claims(p), Buffer.from(JSON.stringify(publicJwkOf(s.staticEc.key, { kid: 'ec-static', alg: 'ES256', use: 'sig' }))))],
    ['ES256 token on a profile allowing only RS256', 'pem', 'alg_not_allowed', (p) => tok('{"alg":"ES256"}', claims(p), s.staticEc)],
    ['PS256 with the right key on a profile allowing only RS256', 'pem', 'alg_not_allowed', (p) => tok('{"alg":"PS256"}', claims(p), s.staticRsa)],
    ['PS256 on an RSA key pinned to RS256', 'oidc', 'key_mismatch', (p) => tok('{"alg":"PS256","kid":"rsa-2025"}', claims(p), s.rsa)],

    // key selection
    ['kid is a number', 'oidc', 'malformed', (p) => tok('{"alg":"RS256","kid":2025}', claims(p), s.rsa)],
    ['kid is null', 'oidc', 'malformed', (p) => tok('{"alg":"RS256","kid":null}', claims(p), s.rsa)],
    ['unknown kid (refetch, then refused)', 'oidc', 'unknown_kid', (p) => tok('{"alg":"RS256","kid":"rsa-2024"}', claims(p), s.rsa)],
    ['empty kid', 'oidc', 'unknown_kid', (p) => tok('{"alg":"RS256","kid":""}', claims(p), s.rsa)],
    ['kid path traversal', 'oidc', 'unknown_kid', (p) => tok('{"alg":"RS256","kid":"../../../../../dev/null"}', claims(p), s.rsa)],
    ['kid SQL injection', 'oidc', 'unknown_kid', (p) => tok('{"alg":"RS256","kid":"x\' UNION SELECT \'secret\' --"}', claims(p), s.rsa)],
    ['RS256 token naming the EC key', 'oidc', 'key_mismatch', (p) => tok('{"alg":"RS256","kid":"ec-2025"}', claims(p), s.rsa)],
    ['EdDSA token naming the RSA key', 'oidc', 'key_mismatch', (p) => tok('{"alg":"EdDSA","kid":"rsa-2025"}', claims(p), s.ed)],
    ['ES384 token naming the P-256 key', 'oidc', 'key_mismatch', (p) => tok('{"alg":"ES384","kid":"ec-2025"}', claims(p), s.ec)],
    ['ES512 token without kid, no P-521 key in the set', 'oidc', 'key_mismatch', (p) => tok('{"alg":"ES512"}', claims(p), s.p521)],
    ['RS256 token on a jwt profile whose key is EC', 'ec', 'key_mismatch', (p) => tok('{"alg":"RS256"}', claims(p), s.staticRsa)],
    ['ES384 token on a jwt profile whose JWK is P-256', 'ec', 'key_mismatch', (p) => tok('{"alg":"ES384"}', claims(p), s.staticEc)],
    ['RS256 signed by a 1024-bit key of the set', 'oidc', 'weak_key', (p) => tok(hdr(s.weak), claims(p), s.weak)],
    ['1024-bit signature under the 2048-bit key\'s kid', 'oidc', 'bad_signature', (p) => tok(hdr(s.rsa), claims(p), s.weak)],
    ['embedded jwk with the attacker\'s key and kid', 'oidc', 'unknown_kid',
      (p) => tok(`{"alg":"RS256","kid":"attacker","jwk":${JSON.stringify(publicJwkOf(attacker.key, { kid: 'attacker' }))}}`, claims(p), s.evilRsa)],
    ['embedded jwk with the attacker\'s key, IdP kid', 'oidc', 'bad_signature',
      (p) => tok(hdr(s.rsa, `"jwk":${JSON.stringify(publicJwkOf(attacker.key))}`), claims(p), s.evilRsa)],
    ['embedded jwk with the attacker\'s key, no kid', 'oidc', 'bad_signature',
      (p) => tok(`{"alg":"RS256","jwk":${JSON.stringify(publicJwkOf(attacker.key))}}`, claims(p), s.evilRsa)],
    ['embedded jwk on a jwt profile', 'pem', 'bad_signature',
      (p) => tok(`{"alg":"RS256","jwk":${JSON.stringify(publicJwkOf(attacker.key))}}`, claims(p), s.evilRsa)],
    ['jku pointing at the attacker\'s key set', 'oidc', 'unknown_kid',
      (p) => tok(`{"alg":"RS256","kid":"attacker","jku":"${bait.url}/jwks.json"}`, claims(p), s.evilRsa)],
    ['jku at the attacker, IdP kid', 'oidc', 'bad_signature', (p) => tok(hdr(s.rsa, `"jku":"${bait.url}/jwks.json"`), claims(p), s.evilRsa)],
    ['x5u pointing at the attacker\'s certificate', 'oidc', 'bad_signature', (p) => tok(hdr(s.rsa, `"x5u":"${bait.url}/idp.pem"`), claims(p), s.evilRsa)],
    ['x5c with the attacker\'s self-signed certificate', 'oidc', 'bad_signature', (p) => tok(`{"alg":"RS256","x5c":["${attacker.x5c}"]}`, claims(p), s.evilRsa)],
    ['x5c on a jwt profile', 'pem', 'bad_signature', (p) => tok(`{"alg":"RS256","x5c":["${attacker.x5c}"]}`, claims(p), s.evilRsa)],
    ['ES256 signed by the attacker under the IdP kid', 'oidc', 'bad_signature', (p) => tok(hdr(s.ec), claims(p), s.evilEc)],
    ['ES256 signed by the attacker on a jwt profile', 'ec', 'bad_signature', (p) => tok(hdr(s.staticEc), claims(p), s.evilEc)],
    ['a jwt profile\'s key claim, signed by the IdP key', 'pem', 'bad_signature', (p) => tok('{"alg":"RS256"}', claims(p), s.rsa)],

    // headers that change processing
    ['crit naming exp', 'oidc', 'unsupported_header', (p) => tok(hdr(s.rsa, '"crit":["exp"]', `"exp":${now + 3600}`), claims(p), s.rsa)],
    ['crit empty', 'oidc', 'unsupported_header', (p) => tok(hdr(s.rsa, '"crit":[]'), claims(p), s.rsa)],
    ['crit b64 with b64 false (RFC 7797)', 'oidc', 'unsupported_header', (p) => tok(hdr(s.rsa, '"b64":false', '"crit":["b64"]'), claims(p), s.rsa)],
    ['b64 false without crit', 'oidc', 'unsupported_header', (p) => tok(hdr(s.rsa, '"b64":false'), claims(p), s.rsa)],
    ['zip DEF', 'oidc', 'unsupported_header', (p) => tok(hdr(s.rsa, '"zip":"DEF"'), claims(p), s.rsa)],
    ['crit on a jwt profile', 'pem', 'unsupported_header', (p) => tok('{"alg":"RS256","crit":["x"],"x":1}', claims(p), s.staticRsa)],

    // duplicate member names
    ['header repeats alg, the second none', 'oidc', 'malformed', (p) => tok(hdr(s.rsa, '"alg":"none"'), claims(p), s.rsa, 'RS256')],
    ['header repeats kid', 'oidc', 'malformed', (p) => tok(hdr(s.rsa, '"kid":"ec-2025"'), claims(p), s.rsa)],
    ['header repeats alg as \\u0061lg', 'oidc', 'malformed', (p) => tok(hdr(s.rsa, '"\\u0061lg":"none"'), claims(p), s.rsa, 'RS256')],
    ['payload repeats exp', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p, { add: ['"exp":4102444800'] }), s.rsa)],
    ['payload repeats iss as \\u0069ss', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p, { add: ['"\\u0069ss":"https://evil.example"'] }), s.rsa)],
    ['payload repeats a member of a nested object', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p, { add: ['"x":{"a":1,"a":2}'] }), s.rsa)],
    ['payload repeats the access profile key claim', 'oidc', 'malformed',
      (p) => tok(hdr(s.rsa), claims(p, { add: [`${JSON.stringify(KEY_CLAIM)}:"gk_other"`] }), s.rsa)],

    // claim types and times
    ['exp is a string', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: [`"exp":"${now + 3600}"`] }), s.rsa)],
    ['exp 1e400 (beyond double)', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: ['"exp":1e400'] }), s.rsa)],
    ['exp 99999999999999999999 (beyond int64)', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: ['"exp":99999999999999999999'] }), s.rsa)],
    ['exp 1e20', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: ['"exp":1e20'] }), s.rsa)],
    ['exp after the year 9999', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: ['"exp":253402300800'] }), s.rsa)],
    ['exp -1e20', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: ['"exp":-1e20'] }), s.rsa)],
    ['exp is true', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: ['"exp":true'] }), s.rsa)],
    ['exp is null', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: ['"exp":null'] }), s.rsa)],
    ['exp is an array', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: [`"exp":[${now + 3600}]`] }), s.rsa)],
    ['exp NaN', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: ['"exp":NaN'] }), s.rsa)],
    ['exp is a string on a jwt profile', 'ec', 'bad_claim_type', (p) => tok(hdr(s.staticEc), claims(p, { drop: ['exp'], add: ['"exp":"never"'] }), s.staticEc)],
    ['nbf is a string', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { add: ['"nbf":"0"'] }), s.rsa)],
    ['iat is an object', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['iat'], add: ['"iat":{}'] }), s.rsa)],
    ['expired an hour ago', 'oidc', 'expired', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: [`"exp":${now - 3600}`] }), s.rsa)],
    ['expired by exactly the leeway', 'oidc', 'expired', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: [`"exp":${now - 60}`] }), s.rsa)],
    ['expired, jwt profile', 'ec', 'expired', (p) => tok(hdr(s.staticEc), claims(p, { drop: ['exp'], add: [`"exp":${now - 3600}`] }), s.staticEc)],
    ['nbf an hour ahead', 'oidc', 'not_yet_valid', (p) => tok(hdr(s.rsa), claims(p, { add: [`"nbf":${now + 3600}`] }), s.rsa)],
    ['nbf a few seconds past the leeway', 'oidc', 'not_yet_valid', (p) => tok(hdr(s.rsa), claims(p, { add: [`"nbf":${now + 66}`] }), s.rsa)],
    ['nbf an hour ahead, jwt profile', 'ec', 'not_yet_valid', (p) => tok(hdr(s.staticEc), claims(p, { add: [`"nbf":${now + 3600}`] }), s.staticEc)],
    ['iat an hour ahead', 'oidc', 'issued_in_future', (p) => tok(hdr(s.rsa), claims(p, { drop: ['iat'], add: [`"iat":${now + 3600}`] }), s.rsa)],
    ['iat an hour ahead, jwt profile', 'pem', 'issued_in_future', (p) => tok('{"alg":"RS256"}', claims(p, { drop: ['iat'], add: [`"iat":${now + 3600}`] }), s.staticRsa)],
    ['exp missing', 'oidc', 'missing_claim', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'] }), s.rsa)],
    ['iss missing', 'oidc', 'missing_claim', (p) => tok(hdr(s.rsa), claims(p, { drop: ['iss'] }), s.rsa)],
    ['aud missing', 'oidc', 'missing_claim', (p) => tok(hdr(s.rsa), claims(p, { drop: ['aud'] }), s.rsa)],
    ['nothing but the key claim', 'oidc', 'missing_claim', (p) => tok(hdr(s.rsa), claims(p, { drop: ['iss', 'aud', 'sub', 'iat', 'exp'] }), s.rsa)],
    ['wrong iss', 'oidc', 'wrong_issuer', (p) => tok(hdr(s.rsa), claims(p, { drop: ['iss'], add: ['"iss":"https://evil.example"'] }), s.rsa)],
    ['iss with a trailing slash', 'oidc', 'wrong_issuer', (p) => tok(hdr(s.rsa), claims(p, { drop: ['iss'], add: [`"iss":"${p.iss}/"`] }), s.rsa)],
    ['iss in other case', 'oidc', 'wrong_issuer', (p) => tok(hdr(s.rsa), claims(p, { drop: ['iss'], add: [`"iss":"${p.iss.toUpperCase()}"`] }), s.rsa)],
    ['iss not in allowed_issuers of a jwt profile', 'pem', 'wrong_issuer', (p) => tok('{"alg":"RS256"}', claims(p, { drop: ['iss'], add: ['"iss":"https://evil.example"'] }), s.staticRsa)],
    ['iss is not a string', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['iss'], add: [`"iss":["${p.iss}"]`] }), s.rsa)],
    ['iss with NUL escape then more', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p, { drop: ['iss'], add: [`"iss":"${p.iss}\\u0000.evil.example"`] }), s.rsa)],
    ['wrong aud', 'oidc', 'wrong_audience', (p) => tok(hdr(s.rsa), claims(p, { drop: ['aud'], add: ['"aud":"billing"'] }), s.rsa)],
    ['aud in other case', 'oidc', 'wrong_audience', (p) => tok(hdr(s.rsa), claims(p, { drop: ['aud'], add: [`"aud":"${p.aud.toUpperCase()}"`] }), s.rsa)],
    ['aud array without the audience', 'oidc', 'wrong_audience', (p) => tok(hdr(s.rsa), claims(p, { drop: ['aud'], add: [`"aud":["billing","${p.aud}-admin"]`] }), s.rsa)],
    ['aud empty array', 'oidc', 'wrong_audience', (p) => tok(hdr(s.rsa), claims(p, { drop: ['aud'], add: ['"aud":[]'] }), s.rsa)],
    ['wrong aud, jwt profile', 'ec', 'wrong_audience', (p) => tok(hdr(s.staticEc), claims(p, { drop: ['aud'], add: ['"aud":"billing"'] }), s.staticEc)],
    ['aud array with a non-string member', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['aud'], add: [`"aud":["${p.aud}",1]`] }), s.rsa)],
    ['aud is an object', 'oidc', 'bad_claim_type', (p) => tok(hdr(s.rsa), claims(p, { drop: ['aud'], add: [`"aud":{"${p.aud}":true}`] }), s.rsa)],
    ['unknown access profile key', 'oidc', 'unknown_profile_key', (p) => tok(hdr(s.rsa), claims(p, { key: `gk_${randomBytes(32).toString('base64url')}` }), s.rsa)],

    // signature first: bad claims never speak before the key and signature do
    ['expired and signed by the attacker: signature first', 'oidc', 'bad_signature', (p) => tok(hdr(s.rsa), claims(p, { drop: ['exp'], add: ['"exp":1'] }), s.evilRsa)],
    ['wrong iss and unknown kid: key first', 'oidc', 'unknown_kid', (p) => tok(hdr(s.evilRsa), claims(p, { drop: ['iss'], add: ['"iss":"https://evil.example"'] }), s.evilRsa)],
    ['signature transplanted from another token', 'oidc', 'bad_signature', (p) => {
      const donor = tok(hdr(s.rsa), claims(p), s.rsa).split('.');
      const target = tok(hdr(s.rsa), claims(p, { drop: ['sub'], add: ['"sub":"admin"'] }), s.rsa).split('.');
      return `${target[0]}.${target[1]}.${donor[2]}`;
    }],
    ['a flipped bit in the signature', 'oidc', 'bad_signature', (p) => tamperSignature(tok(hdr(s.rsa), claims(p), s.rsa))],
    ['a flipped bit in the signature, jwt profile', 'pem', 'bad_signature', (p) => tamperSignature(tok('{"alg":"RS256"}', claims(p), s.staticRsa))],

    // base64url
    ['non-canonical trailing bits in the header', 'oidc', 'malformed', (p) => nonCanonical(tok(hdr(s.rsa), claims(p), s.rsa), 0)],
    ['non-canonical trailing bits in the payload', 'oidc', 'malformed', (p) => nonCanonical(tok(hdr(s.rsa), withSpareBits(claims(p)), s.rsa), 1)],
    ['non-canonical trailing bits in the signature', 'oidc', 'malformed', (p) => nonCanonical(tok(hdr(s.rsa), claims(p), s.rsa), 2)],
    ['padding in the header', 'oidc', 'malformed', (p) => padded(tok(hdr(s.rsa), claims(p), s.rsa), 0)],
    ['padding in the payload', 'oidc', 'malformed', (p) => padded(tok(hdr(s.rsa), withSpareBits(claims(p)), s.rsa), 1)],
    ['padding in the signature', 'oidc', 'malformed', (p) => padded(tok(hdr(s.rsa), claims(p), s.rsa), 2)],
    ['space inside the header', 'oidc', 'malformed', (p) => insertInSegment(tok(hdr(s.rsa), claims(p), s.rsa), 0, ' ')],
    ['tab inside the signature', 'oidc', 'malformed', (p) => insertInSegment(tok(hdr(s.rsa), claims(p), s.rsa), 2, '\t')],
    ['Bearer prefix left on', 'oidc', 'malformed', (p) => `Bearer ${tok(hdr(s.rsa), claims(p), s.rsa)}`],
    ['standard base64 alphabet', 'oidc', 'malformed', (p) => {
      const good = tok(hdr(s.rsa), claims(p, { add: ['"note":"~~~~~~"'] }), s.rsa);
      const bad = good.replaceAll('-', '+').replaceAll('_', '/');
      assert.notEqual(bad, good, 'the token has - or _ to change');
      return bad;
    }],

    // segments
    ['extra fourth segment', 'oidc', 'malformed', (p) => `${tok(hdr(s.rsa), claims(p), s.rsa)}.e30`],
    ['five segments (JWE form)', 'oidc', 'malformed', (p) => `${tok(hdr(s.rsa), claims(p), s.rsa)}.AAAA.AAAA`],
    ['two segments', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p), s.rsa).split('.').slice(0, 2).join('.')],
    ['only dots', 'oidc', 'malformed', () => '..'],
    ['three dots', 'oidc', 'malformed', () => '...'],
    ['empty header segment', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p), s.rsa).replace(/^[^.]*/, '')],
    ['empty payload segment', 'oidc', 'malformed', (p) => {
      const [h, , sig] = tok(hdr(s.rsa), claims(p), s.rsa).split('.');
      return `${h}..${sig}`;
    }],
    ['empty signature segment', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p), s.rsa).replace(/[^.]*$/, '')],

    // JSON form
    ['header is an array', 'oidc', 'malformed', (p) => tok(`[${hdr(s.rsa)}]`, claims(p), s.rsa, 'RS256')],
    ['header is a string', 'oidc', 'malformed', (p) => tok('"RS256"', claims(p), s.rsa, 'RS256')],
    ['header is a number', 'oidc', 'malformed', (p) => tok('256', claims(p), s.rsa, 'RS256')],
    ['payload is an array', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), `[${claims(p)}]`, s.rsa)],
    ['payload is a string', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), '"alice"', s.rsa)],
    ['trailing garbage after the header', 'oidc', 'malformed', (p) => tok(`${hdr(s.rsa)}x`, claims(p), s.rsa, 'RS256')],
    ['second object after the header', 'oidc', 'malformed', (p) => tok(`${hdr(s.rsa)}{"alg":"none"}`, claims(p), s.rsa, 'RS256')],
    ['NUL byte after the header', 'oidc', 'malformed', (p) => tok(Buffer.concat([Buffer.from(hdr(s.rsa)), Buffer.from([0])]), claims(p), s.rsa, 'RS256')],
    ['trailing garbage after the payload', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), `${claims(p)}]`, s.rsa)],
    ['comment in the header', 'oidc', 'malformed', (p) => tok(`${hdr(s.rsa).slice(0, -1)}/* hi */}`, claims(p), s.rsa, 'RS256')],
    ['header with a UTF-8 BOM', 'oidc', 'malformed', (p) => tok(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(hdr(s.rsa))]), claims(p), s.rsa, 'RS256')],
    ['invalid UTF-8 in a payload string', 'oidc', 'malformed', (p) => {
      const text = claims(p, { drop: ['sub'], add: ['"sub":"al@"'] });
      const bytes = Buffer.from(text);
      bytes[bytes.indexOf('al@') + 2] = 0xff;
      return tok(hdr(s.rsa), bytes, s.rsa);
    }],
    ['overlong UTF-8 in the kid', 'oidc', 'malformed', (p) => tok(Buffer.concat([Buffer.from('{"alg":"RS256","kid":"rsa-2025'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]), claims(p), s.rsa, 'RS256')],
    ['UTF-8 encoded surrogate in a payload string', 'oidc', 'malformed', (p) => {
      const text = claims(p, { drop: ['sub'] });
      return tok(hdr(s.rsa), Buffer.concat([Buffer.from(`${text.slice(0, -1)},"sub":"`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), s.rsa);
    }],
    ['lone surrogate escape', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p, { drop: ['sub'], add: ['"sub":"\\ud800"'] }), s.rsa)],
    ['NUL escape in the kid', 'oidc', 'malformed', (p) => tok('{"alg":"RS256","kid":"rsa-2025\\u0000x"}', claims(p), s.rsa)],
    ['NUL escape in sub', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p, { drop: ['sub'], add: ['"sub":"alice\\u0000admin"'] }), s.rsa)],
    ['header nests 17 levels', 'oidc', 'malformed', (p) => tok(hdr(s.rsa, `"x":[${OPEN15}0${CLOSE15}]`), claims(p), s.rsa)],
    ['payload nests 17 levels', 'oidc', 'malformed', (p) => tok(hdr(s.rsa), claims(p, { add: [`"x":{"y":${OPEN15}0${CLOSE15}}`] }), s.rsa)],
    ['header nests 5000 levels', 'oidc', 'malformed', (p) => tok(hdr(s.rsa, `"x":${'['.repeat(5000)}${']'.repeat(5000)}`), claims(p), s.rsa)],

    // sizes (the whole request head stays under the HTTP layer's limit: see the next suite)
    ['token of 16385 bytes', 'oidc', 'too_large', (p) => sizedToken(p, 16385)],
    // (a larger one passes the front end's 64 KiB head limit: 431, tested below)
    ['token of 60 KiB', 'oidc', 'too_large', () => `${'A'.repeat(20 * 1024)}.${'A'.repeat(20 * 1024)}.${'A'.repeat(20 * 1024)}`],
    ['payload of 10241 bytes', 'oidc', 'too_large', (p) => sizedPayload(p, 10241)],

    // signature encodings and values
    ['ECDSA r = s = 0 (CVE-2022-21449)', 'oidc', 'bad_signature', ecSig((sig) => Buffer.alloc(sig.length))],
    ['ECDSA r = s = 0 on a jwt profile (EC JWK)', 'ec', 'bad_signature', (p) => editSignature(tok(hdr(s.staticEc), claims(p), s.staticEc), (sig) => Buffer.alloc(sig.length))],
    ['ECDSA r = s = n', 'oidc', 'bad_signature', ecSig(() => Buffer.concat([P256_ORDER, P256_ORDER]))],
    ['ECDSA r = n', 'oidc', 'bad_signature', ecSig((sig) => Buffer.concat([P256_ORDER, sig.subarray(32)]))],
    ['ECDSA s = n', 'oidc', 'bad_signature', ecSig((sig) => Buffer.concat([sig.subarray(0, 32), P256_ORDER]))],
    ['ECDSA r = 0', 'oidc', 'bad_signature', ecSig((sig) => Buffer.concat([Buffer.alloc(32), sig.subarray(32)]))],
    ['ECDSA signature in DER', 'oidc', 'bad_signature', ecSig((sig) => ecdsaRawToDer(sig))],
    ['ECDSA signature in DER on a jwt profile (EC JWK)', 'ec', 'bad_signature', (p) => editSignature(tok(hdr(s.staticEc), claims(p), s.staticEc), ecdsaRawToDer)],
    ['ECDSA signature truncated', 'oidc', 'bad_signature', ecSig((sig) => sig.subarray(0, sig.length - 1))],
    ['ECDSA signature with a zero byte appended', 'oidc', 'bad_signature', ecSig((sig) => Buffer.concat([sig, Buffer.alloc(1)]))],
    ['ECDSA coordinates zero-padded to 33 bytes', 'oidc', 'bad_signature',
      ecSig((sig) => Buffer.concat([Buffer.alloc(1), sig.subarray(0, 32), Buffer.alloc(1), sig.subarray(32)]))],
    ['RSA signature truncated', 'oidc', 'bad_signature', rsaSig((sig) => sig.subarray(0, sig.length - 1))],
    ['RSA signature with a leading zero byte', 'oidc', 'bad_signature', rsaSig((sig) => Buffer.concat([Buffer.alloc(1), sig]))],
    ['RSA signature of zeros', 'oidc', 'bad_signature', rsaSig((sig) => Buffer.alloc(sig.length))],
    ['RSA signature larger than the modulus', 'oidc', 'bad_signature', rsaSig((sig) => Buffer.alloc(sig.length, 0xff))],
    ['Ed25519 S + L (non-canonical S)', 'oidc', 'bad_signature', edSig(ed25519AddOrder)],
    ['Ed25519 signature of zeros', 'oidc', 'bad_signature', edSig((sig) => Buffer.alloc(sig.length))],
    ['Ed25519 signature truncated', 'oidc', 'bad_signature', edSig((sig) => sig.subarray(0, sig.length - 1))],
  ];

  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  after(() => agent.destroy());

  for (const [name, profile, expected, build] of cases) {
    test(`${profile}: ${name} → ${expected === 200 ? '200' : `401 ${expected}`}`, async () => {
      const p = profiles[profile];
      now = nowSeconds();
      const token = build(p);
      sent.push(token);
      const r = await send(gh.gw, '/corpus/v1/items/1', { headers: bearer(token), agent });
      if (expected === 200) {
        controls += 1;
        const seen = echoed(r);
        assert.equal(seen.headers['x-gatehouse-profile-id'], p.id, 'bound to the profile whose key it carries');
        return;
      }
      expectInvalidToken(r, expected);
      assertNoEcho(r, token);
    });
  }

  test('only the controls reached the upstream; jku and x5u were never fetched; the log holds no token', async (t) => {
    assert.equal(up.requests(), controls, 'refused tokens never reach the upstream');
    assert.ok(controls >= 12);
    assert.equal(bait.requests(), 0, 'the attacker\'s jku / x5u server got a request');
    const refusals = cases.filter(([, , e]) => e !== 200).length;
    assert.ok(refusals >= 40, `${refusals} attack tokens`);
    const reasons = new Set(cases.map(([, , e]) => e).filter((e) => e !== 200));
    t.diagnostic(`corpus: ${refusals} attack tokens (${reasons.size} reasons: ${[...reasons].join(', ')}) and ${controls} controls`);
    const stdout = gh.output().stdout;
    await waitUntil(() => gh.output().stdout.split('"msg":"access"').length - 1 >= cases.length, { what: 'an access-log line per request' });
    for (const token of sent) {
      const sig = token.split('.')[2] ?? '';
      if (sig.length >= 40) assert.ok(!stdout.includes(sig), 'a token signature in the log');
    }
  });

  test('an empty Bearer token is no credential: 401 unauthorized without an error code', async () => {
    const r = await send(gh.gw, '/corpus/v1/items/1', { headers: { authorization: 'Bearer ' }, agent });
    expectError(r, 401, 'unauthorized');
    assert.equal(r.headers['www-authenticate'], REALM);
  });

  test('a public key is never accepted as an HMAC secret of a jwt profile (422)', async () => {
    const r = await gh.api('POST', '/v1/profiles', {
      client_id: (await gh.api('GET', '/v1/clients')).json.data[0].id, name: 'confused', auth_type: 'jwt',
      jwt_key: publicPem(signers.rsa.key), algorithms: ['HS256'],
    });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json.field, 'jwt_key');
    const weak = await gh.api('POST', '/v1/profiles', {
      client_id: (await gh.api('GET', '/v1/clients')).json.data[0].id, name: 'weak', auth_type: 'jwt',
      jwt_key: publicPem(signers.weak.key),
    });
    assert.equal(weak.status, 422, `a 1024-bit RSA jwt_key: ${weak.text}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a request head over the HTTP layer\'s limit', () => {
  let gh;
  let up;
  let key;

  before(async () => {
    up = await startUpstream();
    gh = await startGateway();
    const col = await create(gh, '/v1/collections', { name: 'big', path: '/big/v1', upstream: up.url });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'ANY', path: '/*' });
    const client = await create(gh, '/v1/clients', { name: 'big' });
    key = (await create(gh, '/v1/profiles', { client_id: client.id, name: 'big', auth_type: 'token', collection_ids: [col.id] })).key;
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
    }
  });

  // A request head over the front end's limits (64 KiB, 100 fields) is refused before any
  // decision: 431 headers_too_large in our JSON, nothing echoed, the gateway still serving. (Up
  // to that limit, tokens get our JSON 401 too_large: tested above.)
  test('a 1 MiB token (over the 64 KiB head limit): refused 431, no echo, still serving', async () => {
    const token = `${'A'.repeat(349525)}.${'A'.repeat(349525)}.${'A'.repeat(349524)}`;
    const r = await send(gh.gw, '/big/v1/x', { headers: bearer(token) });
    assert.equal(r.status, 431, `status ${r.status}`);
    assertNoEcho(r, token);
    // the gateway still serves
    echoed(await send(gh.gw, '/big/v1/x', { headers: { 'api-token': key } }));
  });

  test('a request head with more than 100 header fields: refused 431, still serving', async () => {
    const headers = [['api-token', key]];
    for (let i = 0; i < 120; i++) headers.push([`x-field-${i}`, 'v']);
    const r = await send(gh.gw, '/big/v1/x', { headers: headers.flat() });
    assert.equal(r.status, 431, `status ${r.status}`);
    assert.ok(!r.text.includes(key), 'the refusal never echoes a credential');
    echoed(await send(gh.gw, '/big/v1/x', { headers: { 'api-token': key } }));
  });
});

// ---------------------------------------------------------------------------------------------

describe('SPEC §2: custom key claims and the default order, with no fall-through', () => {
  let gh;
  let up;
  let col;
  const kA = newKeyPair('rsa').privateKey; // the custom-claim profile's signing key
  const kB = newKeyPair('rsa').privateKey; // the default-order profile's signing key
  let A; // key_claim "tenant_key"
  let B; // no key_claim: the default order
  let T; // a token profile
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });

  before(async () => {
    up = await startUpstream();
    gh = await startGateway();
    col = await create(gh, '/v1/collections', { name: 'claims', path: '/claims/v1', upstream: up.url });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/*' });
    const client = await create(gh, '/v1/clients', { name: 'claims' });
    A = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'custom', auth_type: 'jwt', jwt_key: publicPem(kA), key_claim: 'tenant_key', collection_ids: [col.id],
    });
    B = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'default-order', auth_type: 'jwt', jwt_key: publicPem(kB), collection_ids: [col.id],
    });
    T = await create(gh, '/v1/profiles', { client_id: client.id, name: 'token', auth_type: 'token', collection_ids: [col.id] });
    assert.equal(A.key_claim, 'tenant_key');
  });

  after(async () => {
    agent.destroy();
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
    }
  });

  /** An RS256 token with these payload members (exp added) and header members, signed by key. */
  function token(members, key, header = {}) {
    const payload = JSON.stringify({ exp: nowSeconds() + 600, iat: nowSeconds(), ...members });
    return signJws(JSON.stringify({ alg: 'RS256', ...header }), payload, key);
  }

  const unknownKey = () => `gk_${randomBytes(32).toString('base64url')}`;

  async function expectBound(t, profile) {
    const r = await send(gh.gw, '/claims/v1/x', { headers: bearer(t), agent });
    const seen = echoed(r);
    assert.equal(seen.headers['x-gatehouse-profile-id'], profile.id);
    assert.equal(seen.headers['x-gatehouse-claims'], t.split('.')[1]);
  }

  async function expectRefused(t, reason) {
    const r = await send(gh.gw, '/claims/v1/x', { headers: bearer(t), agent });
    expectInvalidToken(r, reason);
    assertNoEcho(r, t);
  }

  test('a profile with key_claim "tenant_key" is bound by that claim', async () => {
    await expectBound(token({ tenant_key: A.key }, kA), A);
    // a custom claim comes before every default claim
    await expectBound(token({ tenant_key: A.key, [KEY_CLAIM]: B.key, sub: B.key }, kA), A);
  });

  test('the default order binds by https://gatehouse.dev/key, gatehouse_key, sub, then header kid', async () => {
    await expectBound(token({ [KEY_CLAIM]: B.key }, kB), B);
    await expectBound(token({ gatehouse_key: B.key }, kB), B);
    await expectBound(token({ sub: B.key }, kB), B);
    await expectBound(token({}, kB, { kid: B.key }), B);
    // the first NON-EMPTY one: an empty claim is passed over
    await expectBound(token({ [KEY_CLAIM]: '', gatehouse_key: B.key }, kB), B);
    await expectBound(token({ [KEY_CLAIM]: '', gatehouse_key: '', sub: B.key }, kB), B);
  });

  test('no fall-through: a first non-empty default claim with an unknown value is 401 unknown_profile_key', async () => {
    await expectRefused(token({ [KEY_CLAIM]: unknownKey(), gatehouse_key: B.key }, kB), 'unknown_profile_key');
    await expectRefused(token({ [KEY_CLAIM]: unknownKey(), sub: B.key }, kB, { kid: B.key }), 'unknown_profile_key');
    await expectRefused(token({ gatehouse_key: unknownKey(), sub: B.key }, kB), 'unknown_profile_key');
    await expectRefused(token({ sub: 'alice', gatehouse_key: undefined }, kB, { kid: B.key }), 'unknown_profile_key');
    // a valid key of another kind in the first claim does not fall through either
    await expectRefused(token({ [KEY_CLAIM]: A.key, gatehouse_key: B.key }, kB), 'unknown_profile_key');
  });

  test('a custom-claim key never binds a default-order profile, and a default-claim key never binds a custom-claim profile', async () => {
    await expectRefused(token({ tenant_key: B.key }, kB), 'unknown_profile_key');
    await expectRefused(token({ tenant_key: B.key, sub: 'alice' }, kB), 'unknown_profile_key');
    await expectRefused(token({ [KEY_CLAIM]: A.key }, kA), 'unknown_profile_key');
    await expectRefused(token({ gatehouse_key: A.key }, kA), 'unknown_profile_key');
    await expectRefused(token({ sub: A.key }, kA), 'unknown_profile_key');
    await expectRefused(token({}, kA, { kid: A.key }), 'unknown_profile_key');
    // a custom claim whose value matches nothing leaves the default order to decide (SPEC §2 step 2)
    await expectBound(token({ tenant_key: unknownKey(), gatehouse_key: B.key }, kB), B);
  });

  test('the bound profile\'s keys only: a token bound to one profile and signed by the other is bad_signature', async () => {
    await expectRefused(token({ [KEY_CLAIM]: B.key }, kA), 'bad_signature');
    await expectRefused(token({ tenant_key: A.key }, kB), 'bad_signature');
  });

  test('keys of other auth types: a token profile\'s key in a JWT, and a jwt profile\'s key as api-token, are refused', async () => {
    await expectRefused(token({ [KEY_CLAIM]: T.key }, kB), 'unknown_profile_key');
    const r = await send(gh.gw, '/claims/v1/x', { headers: { 'api-token': B.key }, agent });
    expectInvalidToken(r, 'unknown_profile_key');
    assertNoEcho(r, B.key);
  });
});

// ---------------------------------------------------------------------------------------------

describe('each auth type through HTTP: 200 with X-Gatehouse-Profile-Id at the upstream', () => {
  let gh;
  let up;
  let idp;
  let idpKey = null;
  let col;
  const p = {};
  const rsa = newKeyPair('rsa').privateKey;
  const ec = newKeyPair('p256').privateKey;
  const secret = randomBytes(32).toString('base64url'); // 43 characters

  before(async () => {
    idp = await startIdp({ profileKey: () => idpKey });
    up = await startUpstream();
    gh = await startGateway();
    col = await create(gh, '/v1/collections', { name: 'types', path: '/types/v1', upstream: `${up.url}/base` });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/items/:id' });
    const client = await create(gh, '/v1/clients', { name: 'types' });
    const base = { client_id: client.id, collection_ids: [col.id] };
    p.token = await create(gh, '/v1/profiles', { ...base, name: 'token', auth_type: 'token' });
    p.pem = await create(gh, '/v1/profiles', { ...base, name: 'jwt-pem', auth_type: 'jwt', jwt_key: publicPem(rsa), algorithms: ['RS256'] });
    p.jwk = await create(gh, '/v1/profiles', {
      ...base, name: 'jwt-ec-jwk', auth_type: 'jwt', jwt_key: JSON.stringify(publicJwkOf(ec, { kid: 'ec-1', alg: 'ES256', use: 'sig' })),
    });
    p.hmac = await create(gh, '/v1/profiles', { ...base, name: 'jwt-hs256', auth_type: 'jwt', jwt_key: secret, algorithms: ['HS256'] });
    p.discovery = await create(gh, '/v1/profiles', {
      ...base, name: 'oidc-discovery', auth_type: 'oidc', oidc_discovery_url: idp.discoveryUrl, audiences: [idp.resource],
    });
    p.jwks = await create(gh, '/v1/profiles', {
      ...base, name: 'oidc-jwks-uri', auth_type: 'oidc', oidc_jwks_uri: idp.jwksUrl, audiences: [idp.resource],
    });
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
      await idp?.stop();
    }
  });

  function claimsFor(profile) {
    return JSON.stringify({ sub: 'svc', iat: nowSeconds(), exp: nowSeconds() + 300, [KEY_CLAIM]: profile.key });
  }

  async function through(headers, profile, jwt) {
    const r = await send(gh.gw, '/types/v1/items/7?q=1', { headers });
    const seen = echoed(r);
    assert.equal(seen.path, '/base/items/7');
    assert.equal(seen.headers['x-gatehouse-profile-id'], profile.id);
    assert.equal(seen.headers['x-gatehouse-client-id'], profile.client_id);
    if (jwt) {
      assert.equal(seen.headers['x-gatehouse-claims'], jwt.split('.')[1], 'the verified payload bytes');
    } else {
      assert.equal(seen.headers['x-gatehouse-claims'], undefined);
    }
    assert.equal(seen.headers['api-token'], undefined);
    return seen;
  }

  test('token: the api-token header', async () => {
    await through({ 'api-token': p.token.key }, p.token);
  });

  test('token: HTTP Basic with user api-token', async () => {
    await through({ authorization: `Basic ${Buffer.from(`api-token:${p.token.key}`).toString('base64')}` }, p.token);
    // another user name is no credential
    const r = await send(gh.gw, '/types/v1/items/7', { headers: { authorization: `Basic ${Buffer.from(`admin:${p.token.key}`).toString('base64')}` } });
    expectError(r, 401, 'unauthorized');
  });

  test('jwt: a static PEM RSA key (RS256)', async () => {
    const t = signJws('{"alg":"RS256","typ":"JWT"}', claimsFor(p.pem), rsa);
    await through(bearer(t), p.pem, t);
  });

  test('jwt: a static EC JWK (ES256)', async () => {
    const t = signJws('{"alg":"ES256","kid":"ec-1"}', claimsFor(p.jwk), ec);
    await through(bearer(t), p.jwk, t);
  });

  test('jwt: an HMAC secret with algorithms ["HS256"]', async () => {
    const t = signJws('{"alg":"HS256"}', claimsFor(p.hmac), Buffer.from(secret));
    await through(bearer(t), p.hmac, t);
    const wrong = signJws('{"alg":"HS256"}', claimsFor(p.hmac), randomBytes(32));
    expectInvalidToken(await send(gh.gw, '/types/v1/items/7', { headers: bearer(wrong) }), 'bad_signature');
  });

  test('oidc: a discovery URL, with a token from the IdP\'s token endpoint', async () => {
    idpKey = p.discovery.key;
    const t = await idp.getToken();
    await through(bearer(t), p.discovery, t);
  });

  test('oidc: a jwks_uri, with a token from the IdP\'s token endpoint', async () => {
    idpKey = p.jwks.key;
    const t = await idp.getToken();
    await through(bearer(t), p.jwks, t);
    const es = await idp.sign({ [KEY_CLAIM]: p.jwks.key }, { alg: 'ES256' });
    await through(bearer(es), p.jwks, es);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a configuration change under continuous load: zero failed requests', () => {
  let gh;
  let up;

  before(async () => {
    up = await startUpstream();
    gh = await startGateway();
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
    }
  });

  test('8 keep-alive clients for 6 s while the admin API keeps changing objects and rotating keys with grace', async (t) => {
    const col = await create(gh, '/v1/collections', { name: 'load', path: '/load/v1', upstream: up.url });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/items/:id' });
    const client = await create(gh, '/v1/clients', { name: 'load' });
    const tokenProfile = await create(gh, '/v1/profiles', { client_id: client.id, name: 'load-token', auth_type: 'token', collection_ids: [col.id] });
    const rsa = newKeyPair('rsa').privateKey;
    const jwtProfile = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'load-jwt', auth_type: 'jwt', jwt_key: publicPem(rsa), algorithms: ['RS256'], collection_ids: [col.id],
    });
    // each JWT client its own tokens, fresh ones now and then, so verification really runs
    const jwtFor = (w, n) => signJws('{"alg":"RS256"}', JSON.stringify({
      sub: `worker-${w}`, n: Math.floor(n / 50), exp: nowSeconds() + 600, [KEY_CLAIM]: jwtProfile.key,
    }), rsa);
    const tokens = new Map();
    const headersFor = (w, n) => {
      if (w % 2 === 0) return { 'api-token': tokenProfile.key };
      const k = `${w}:${Math.floor(n / 50)}`;
      if (!tokens.has(k)) tokens.set(k, jwtFor(w, n));
      return bearer(tokens.get(k));
    };
    // warm up and prove the credentials before the load
    echoed(await send(gh.gw, '/load/v1/items/0', { headers: headersFor(0, 0) }));
    echoed(await send(gh.gw, '/load/v1/items/0', { headers: headersFor(1, 0) }));

    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    let stop = false;
    const ops = {
      'client create+delete': 0, 'collection timeout_ms patch': 0, 'endpoint add+remove': 0,
      'collection create+delete': 0, 'key rotation with grace': 0, 'profile patch': 0,
    };
    const expectOk = (r, status) => assert.equal(r.status, status, `${r.request}: ${r.status} ${r.text}`);
    const other = await create(gh, '/v1/clients', { name: 'bystander' });
    const otherProfile = await create(gh, '/v1/profiles', { client_id: other.id, name: 'bystander', auth_type: 'token' });

    const admin = (async () => {
      for (let i = 0; !stop; i++) {
        let r = await gh.api('POST', '/v1/clients', { name: `churn-${i}` });
        expectOk(r, 201);
        expectOk(await gh.api('DELETE', `/v1/clients/${r.json.id}`), 204);
        ops['client create+delete'] += 1;

        expectOk(await gh.api('PATCH', `/v1/collections/${col.id}`, { timeout_ms: 20000 + (i % 5) * 1000 }), 200);
        ops['collection timeout_ms patch'] += 1;

        r = await gh.api('POST', `/v1/collections/${col.id}/endpoints`, { method: 'POST', path: `/extra/${i}` });
        expectOk(r, 201);
        expectOk(await gh.api('DELETE', `/v1/endpoints/${r.json.id}`), 204);
        ops['endpoint add+remove'] += 1;

        r = await gh.api('POST', '/v1/collections', { name: `side-${i}`, path: `/side-${i}/v1`, upstream: up.url });
        expectOk(r, 201);
        expectOk(await gh.api('DELETE', `/v1/collections/${r.json.id}`), 204);
        ops['collection create+delete'] += 1;

        expectOk(await gh.api('POST', `/v1/profiles/${tokenProfile.id}/keys`, { grace_seconds: 600 }), 201);
        expectOk(await gh.api('POST', `/v1/profiles/${jwtProfile.id}/keys`, { grace_seconds: 600 }), 201);
        ops['key rotation with grace'] += 2;

        expectOk(await gh.api('PATCH', `/v1/profiles/${otherProfile.id}`, { active: i % 2 === 0 }), 200);
        ops['profile patch'] += 1;
      }
    })().finally(() => { stop = true; });

    const started = performance.now();
    const load = loadLoop({
      workers: 8,
      until: () => stop,
      request: (w, n) => ({ base: gh.gw, path: `/load/v1/items/${w}-${n}`, options: { agent, headers: headersFor(w, n) } }),
    });
    await Promise.race([sleep(6000), admin.catch(() => {})]);
    stop = true;
    const [records] = await Promise.all([load, admin]);
    const seconds = (performance.now() - started) / 1000;
    agent.destroy();

    const failed = records.filter((r) => r.error || r.status < 200 || r.status >= 300);
    const byKind = { 'api-token': records.filter((r) => r.worker % 2 === 0).length, jwt: records.filter((r) => r.worker % 2 === 1).length };
    const adminOps = Object.values(ops).reduce((a, b) => a + b, 0);
    t.diagnostic(`load: ${records.length} requests in ${seconds.toFixed(1)} s (${Math.round(records.length / seconds)}/s; api-token ${byKind['api-token']}, jwt ${byKind.jwt}), ${failed.length} failed`);
    t.diagnostic(`admin changes meanwhile: ${adminOps} (${Object.entries(ops).map(([k, v]) => `${k} ${v}`).join(', ')})`);
    assert.deepEqual(failed.slice(0, 5).map((r) => ({ status: r.status, error: r.error, text: r.text.slice(0, 200) })), [],
      `${failed.length} of ${records.length} requests failed`);
    // floors low enough for a busy 2-core machine; the diagnostics above say what this run did
    assert.ok(records.length >= 500, `only ${records.length} requests`);
    assert.ok(ops['key rotation with grace'] >= 4, `only ${ops['key rotation with grace']} key rotations`);
    assert.equal(up.requests.length, records.length + 2, 'the upstream got each one');

    // the rotations reached the data plane: a rotation without grace retires the old keys at once
    const fresh = await create(gh, `/v1/profiles/${tokenProfile.id}/keys`, { grace_seconds: 0 });
    expectInvalidToken(await send(gh.gw, '/load/v1/items/1', { headers: { 'api-token': tokenProfile.key } }), 'unknown_profile_key');
    echoed(await send(gh.gw, '/load/v1/items/1', { headers: { 'api-token': fresh.key } }));
    const col2 = await gh.api('GET', `/v1/collections/${col.id}`);
    assert.ok(col2.json.timeout_ms >= 20000 && col2.json.timeout_ms <= 24000);
  });
});

// ---------------------------------------------------------------------------------------------

describe('SIGTERM under load loses no accepted request', () => {
  let gh;
  let up;

  before(async () => {
    up = await startUpstream();
    gh = await startGateway();
  });

  after(async () => {
    try {
      await gh?.stop(); // stopped by the test; this removes the directory
    } finally {
      await up?.close();
    }
  });

  test('20 clients on a 300 ms endpoint, SIGTERM in the middle: every request sent before it is 2xx', async (t) => {
    const col = await create(gh, '/v1/collections', { name: 'slow', path: '/slow/v1', upstream: up.url });
    await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'ANY', path: '/*' });
    const client = await create(gh, '/v1/clients', { name: 'slow' });
    const { key } = await create(gh, '/v1/profiles', { client_id: client.id, name: 'slow', auth_type: 'token', collection_ids: [col.id] });
    up.setMode('delay', { ms: 300 });

    // 16 clients on keep-alive connections, 4 that open a new connection for every request
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    let signalAt = null;
    let exited = false;
    const load = loadLoop({
      workers: 20,
      stopOnError: true,
      until: () => exited || (signalAt !== null && performance.now() - signalAt > 8000),
      request: (w, n) => ({
        base: gh.gw,
        path: `/slow/v1/${w}/${n}`,
        options: { agent: w < 16 ? agent : false, headers: { 'api-token': key }, timeoutMs: 20000 },
      }),
    });
    await sleep(1200);
    // and a burst of 30 new connections over the last ~10 ms before the signal (the accept path)
    const burst = [];
    for (let i = 0; i < 30; i++) {
      setTimeout(() => burst.push(timedRequest(gh.gw, `/slow/v1/burst/${i}`, { headers: { 'api-token': key }, timeoutMs: 20000 })), i / 3);
    }
    await sleep(10);
    signalAt = performance.now();
    const exit = gh.kill('SIGTERM');

    // new connections once the listener is closed: refused at once, never left hanging
    await sleep(150);
    const probes = await Promise.all([...Array(5).keys()].map(() => timedRequest(gh.gw, '/slow/v1/probe', {
      headers: { 'api-token': key }, timeoutMs: 3000,
    })));
    const result = await exit;
    const exitMs = performance.now() - signalAt;
    exited = true;
    const records = [...await load, ...await Promise.all(burst)];
    agent.destroy();

    const before = records.filter((r) => r.sentAt !== null && r.sentAt < signalAt);
    const inFlight = before.filter((r) => r.endedAt > signalAt);
    const later = records.filter((r) => !before.includes(r));
    const bad = before.filter((r) => r.error || r.status < 200 || r.status >= 300);
    const outcomes = {};
    for (const r of later) {
      const k = r.error ?? String(r.status);
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    }
    t.diagnostic(`SIGTERM: ${before.length} requests sent before it (${inFlight.length} in flight at the signal, ${before.filter((r) => r.path.includes('/burst/')).length} of them from the burst of new connections), ${bad.length} failed`);
    t.diagnostic(`after it: ${later.length} (${Object.entries(outcomes).map(([k, v]) => `${k} ${v}`).join(', ')}); probes ${probes.map((p) => p.error ?? p.status).join(', ')}; exit ${result.code} after ${Math.round(exitMs)} ms`);

    assert.deepEqual(bad.map((r) => ({ path: r.path, status: r.status, error: r.error, sentMsBeforeSignal: Math.round(signalAt - r.sentAt) })), [],
      'requests sent before SIGTERM that did not complete with 2xx');
    assert.ok(before.length >= 40, `only ${before.length} requests before the signal`);
    assert.ok(inFlight.length >= 10, `only ${inFlight.length} in flight at the signal`);
    for (const r of later) {
      assert.ok(r.error === null ? r.status >= 200 && r.status < 300 : ['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(r.error),
        `a request after the signal: ${r.status} ${r.error}`);
      // a reset is only for what was not yet accepted: a connection made after the signal, or a
      // kept-alive one the drain closed before this request came
      if (r.error === 'ECONNRESET') assert.ok(r.connectedAt === null || r.connectedAt > signalAt, 'a connection made before the signal was reset');
    }
    for (const p of probes) {
      assert.equal(p.error, 'ECONNREFUSED', `a new connection after the listener closed: ${p.status} ${p.error}`);
      assert.ok(p.endedAt - p.startedAt < 1000, `refused at once, not after ${Math.round(p.endedAt - p.startedAt)} ms`);
    }
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.signal, null);
    assert.ok(exitMs < 5000, `exited ${Math.round(exitMs)} ms after SIGTERM (drain 30 s; the work took 300 ms)`);
    assert.match(result.stdout, /"msg":"stopped"/);
    assert.doesNotMatch(result.stderr, /Sanitizer|runtime error/);
    // everything answered was really proxied
    const proxied = new Set(up.requests.map((u) => u.path));
    for (const r of before) assert.ok(proxied.has(r.path.slice('/slow/v1'.length)), `the upstream got ${r.path}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('explain: POST /v1/explain and `gatehouse explain` decide as the gateway does', () => {
  let gh;
  let profile;
  let col;
  let ep;
  const rsa = newKeyPair('rsa').privateKey;

  before(async () => {
    gh = await startGateway();
    col = await create(gh, '/v1/collections', { name: 'explained', path: '/explained/v1', upstream: 'http://127.0.0.1:9' });
    ep = await create(gh, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/items/:id' });
    const client = await create(gh, '/v1/clients', { name: 'explained' });
    profile = await create(gh, '/v1/profiles', {
      client_id: client.id, name: 'explained', auth_type: 'jwt', jwt_key: publicPem(rsa), algorithms: ['RS256'], collection_ids: [col.id],
    });
  });

  after(async () => {
    await stopClean(gh);
  });

  const jwt = (exp) => signJws('{"alg":"RS256"}', JSON.stringify({ sub: 'svc', iat: nowSeconds() - 7200, exp, [KEY_CLAIM]: profile.key }), rsa);

  function explainApi(path, headers = {}) {
    return gh.api('POST', '/v1/explain', { method: 'GET', path, headers });
  }

  function explainCli(path, token, json = true) {
    const args = ['explain', '--method', 'GET', '--path', path, '--admin-url', gh.url];
    if (token) args.push('--header', `Authorization: Bearer ${token}`);
    if (json) args.push('--json');
    return run(args, { env: { GATEHOUSE_ADMIN_TOKEN: gh.token, GATEHOUSE_ADMIN_URL: undefined } });
  }

  test('a valid token: status 200 and the ordered steps, all passed; the CLI says the same', async () => {
    const token = jwt(nowSeconds() + 600);
    const r = await explainApi('/explained/v1/items/7', { Authorization: `Bearer ${token}` });
    assert.equal(r.status, 200, r.text);
    const a = r.json;
    assert.equal(a.status, 200);
    assert.equal(a.error, null);
    assert.equal(a.collection_id, col.id);
    assert.equal(a.endpoint_id, ep.id);
    assert.equal(a.profile_id, profile.id);
    assert.deepEqual(a.steps.map((st) => st.step), ['route', 'credential', 'profile', 'signature', 'authorize']);
    assert.ok(a.steps.every((st) => st.ok === true && typeof st.detail === 'string' && st.detail.length > 0));
    assert.ok(!r.text.includes(token.split('.')[2]), 'explain never echoes the token');
    const cli = await explainCli('/explained/v1/items/7', token);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(cli.json(), a);
  });

  test('an expired token: 401 invalid_token, reason expired, the claims step failed last', async () => {
    const token = jwt(nowSeconds() - 3600);
    const r = await explainApi('/explained/v1/items/7', { authorization: `Bearer ${token}` });
    assert.equal(r.status, 200, 'the explain call itself succeeds');
    const a = r.json;
    assert.equal(a.status, 401);
    assert.equal(a.error, 'invalid_token');
    assert.equal(a.reason, 'expired');
    assert.equal(a.profile_id, profile.id);
    assert.deepEqual(a.steps.map((st) => [st.step, st.ok]), [['route', true], ['credential', true], ['profile', true], ['claims', false]]);
    assert.ok(!r.text.includes(token.split('.')[2]), 'explain never echoes the token');
    const cli = await explainCli('/explained/v1/items/7', token);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(cli.json(), a);
    const table = await explainCli('/explained/v1/items/7', token, false);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^steps:\n {2}1\. route: true/);
    assert.match(table.stdout, /\n {2}4\. claims: false/);
    assert.match(table.stdout, /\nstatus: +401\n/);
    assert.match(table.stdout, /\nreason: +expired\n/);
    assert.ok(!table.stdout.includes(token.split('.')[2]));
  });

  test('an unknown path: 404 not_found after the route step alone', async () => {
    const r = await explainApi('/nowhere/v1/items/7', { authorization: `Bearer ${jwt(nowSeconds() + 600)}` });
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 404);
    assert.equal(r.json.error, 'not_found');
    assert.deepEqual(r.json.steps.map((st) => [st.step, st.ok]), [['route', false]]);
    const cli = await explainCli('/nowhere/v1/items/7', null);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual([cli.json().status, cli.json().error], [404, 'not_found']);
  });

  test('the gateway itself answers what explain said', async () => {
    const ok = jwt(nowSeconds() + 600);
    const expired = jwt(nowSeconds() - 3600);
    expectInvalidToken(await send(gh.gw, '/explained/v1/items/7', { headers: bearer(expired) }), 'expired');
    expectError(await send(gh.gw, '/nowhere/v1/items/7', { headers: bearer(ok) }), 404, 'not_found');
    // allowed, then proxied to a port where nothing listens: the decision was 200, the proxy's 502
    expectError(await send(gh.gw, '/explained/v1/items/7', { headers: bearer(ok) }), 502, 'bad_gateway');
  });
});
