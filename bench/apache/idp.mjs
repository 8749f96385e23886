// SPDX-License-Identifier: Apache-2.0
// The identity provider of bench/apache.sh, as static files and signed tokens: no IdP server runs,
// an nginx serves what `publish` writes, and `sign` makes the access tokens that IdP would issue.
//
// usage:
//   node idp.mjs publish PRIVATE_KEY_PEM ISSUER DIR
//       writes DIR/jwks.json (the RSA public key as a JWK with use, alg and kid; the kid is its
//       RFC 7638 thumbprint) and DIR/.well-known/openid-configuration (issuer, jwks_uri =
//       ISSUER/jwks.json); prints the kid
//   node idp.mjs sign PRIVATE_KEY_PEM ISSUER AUDIENCE PROFILE_KEY COUNT OUT [--exp-in SECONDS]
//       writes COUNT distinct RS256 access tokens to OUT, one per line. Header: alg, typ at+jwt and
//       the kid (IdPs always send one; mod_auth_openidc refetches the JWKS for every token without
//       one). Payload: iss, aud, sub, exp (now + SECONDS, default 3600; negative: expired), iat,
//       nbf, a unique jti, client_id, scope and the access profile key in
//       https://gatehouse.dev/key: about 370 bytes of JSON, a token of about 940 bytes. Signed on
//       one worker thread per core.
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const enc = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

function publicJwk(pem) {
  const { kty, n, e } = createPublicKey(createPrivateKey(pem)).export({ format: 'jwk' });
  // RFC 7638: SHA-256 of the required members, in lexicographic order, without whitespace
  const kid = createHash('sha256').update(JSON.stringify({ e, kty, n })).digest('base64url');
  return { kty, use: 'sig', alg: 'RS256', kid, n, e };
}

function signSome({ pem, kid, issuer, audience, profileKey, expIn, first, last, now, run }) {
  const key = createPrivateKey(pem);
  const head = enc({ alg: 'RS256', typ: 'at+jwt', kid });
  const lines = [];
  for (let i = first; i < last; i++) {
    const claims = {
      iss: issuer,
      aud: audience,
      sub: 'svc-inventory-sync@tenants.bench.example',
      exp: now + expIn,
      iat: now - 10,
      nbf: now - 10,
      jti: `${run}-${i.toString(36)}`,
      client_id: 'inventory-sync-7f3c2a91',
      scope: 'orders:read orders:write inventory:read',
      tenant: 'acme-logistics',
      'https://gatehouse.dev/key': profileKey,
    };
    const input = `${head}.${enc(claims)}`;
    lines.push(`${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`);
  }
  return lines.join('\n');
}

function usage() {
  console.error('usage: node idp.mjs publish KEY ISSUER DIR\n' +
    '       node idp.mjs sign KEY ISSUER AUDIENCE PROFILE_KEY COUNT OUT [--exp-in SECONDS]');
  process.exit(2);
}

async function main() {
  const [command, keyFile, ...rest] = process.argv.slice(2);
  if (!keyFile) usage();
  const pem = readFileSync(keyFile, 'utf8');
  if (command === 'publish') {
    const [issuer, dir] = rest;
    if (!issuer || !dir) usage();
    const jwk = publicJwk(pem);
    mkdirSync(join(dir, '.well-known'), { recursive: true });
    writeFileSync(join(dir, 'jwks.json'), `${JSON.stringify({ keys: [jwk] })}\n`);
    writeFileSync(join(dir, '.well-known', 'openid-configuration'), `${JSON.stringify({
      issuer,
      jwks_uri: `${issuer}/jwks.json`,
      token_endpoint: `${issuer}/token`,
      response_types_supported: ['token'],
      grant_types_supported: ['client_credentials'],
      id_token_signing_alg_values_supported: ['RS256'],
    })}\n`);
    console.log(jwk.kid);
    return;
  }
  if (command !== 'sign') usage();
  const [issuer, audience, profileKey, countText, out, flag, flagValue] = rest;
  const count = Number(countText);
  let expIn = 3600;
  if (flag !== undefined) {
    if (flag !== '--exp-in' || !Number.isInteger(Number(flagValue))) usage();
    expIn = Number(flagValue);
  }
  if (!issuer || !audience || !profileKey || !Number.isInteger(count) || count < 1 || !out) usage();
  const base = {
    pem,
    kid: publicJwk(pem).kid,
    issuer,
    audience,
    profileKey,
    expIn,
    now: Math.floor(Date.now() / 1000),
    run: randomBytes(5).toString('hex'),
  };
  const parts = Math.max(1, Math.min(availableParallelism(), Math.ceil(count / 500)));
  const chunks = await Promise.all(Array.from({ length: parts }, (_, p) => new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), {
      workerData: { ...base, first: Math.floor((count * p) / parts), last: Math.floor((count * (p + 1)) / parts) },
    });
    w.once('message', resolve);
    w.once('error', reject);
  })));
  writeFileSync(out, `${chunks.join('\n')}\n`);
}

if (isMainThread) {
  await main();
} else {
  parentPort.postMessage(signSome(workerData));
}
