// SPDX-License-Identifier: Apache-2.0
// Signs COUNT distinct access tokens for bench/gateway.sh, one per line, into OUT.
// Each token has its own jti (so its own cache key) and carries the access profile key in
// https://gatehouse.dev/key, as SPEC §2 says; the payload is a typical IdP access token of about
// 550 bytes (the shape bench_verify uses). Signing is spread over worker threads, one per core.
//
// usage: node tokens.mjs ALG PRIVATE_KEY_PEM PROFILE_KEY COUNT OUT
//   ALG: RS256, PS256 (salt as long as the hash), ES256 (raw R||S, as JWS requires) or EdDSA (Ed25519)
import { constants, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export const ISSUER = 'https://idp.bench.example';
export const AUDIENCE = 'api://orders';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function signRange({ alg, pem, profileKey, from, to, now, salt }) {
  const key = createPrivateKey(pem);
  const hash = alg === 'EdDSA' ? null : 'sha256'; // Ed25519 hashes inside the signature
  const opts = {
    RS256: key,
    PS256: { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
    ES256: { key, dsaEncoding: 'ieee-p1363' },
    EdDSA: key,
  }[alg];
  const header = b64url(JSON.stringify({ alg, typ: 'at+jwt' }));
  const out = [];
  for (let i = from; i < to; i++) {
    const payload = {
      ver: 1,
      jti: `AT.${salt}.${i}`,
      iss: ISSUER,
      aud: AUDIENCE,
      iat: now - 30,
      nbf: now - 30,
      exp: now + 3600,
      auth_time: now - 45,
      cid: '0oa9x7c5v3b1n2m4q6w8',
      client_id: '0oa9x7c5v3b1n2m4q6w8',
      uid: '00u2k4m6o8q0s2u4w6y8',
      sub: 'alice.martin@example.com',
      scope: 'openid profile email offline_access orders:read orders:write',
      scp: ['openid', 'profile', 'email', 'orders:read', 'orders:write'],
      groups: ['Everyone', 'orders-admins'],
      'https://gatehouse.dev/key': profileKey,
    };
    const input = `${header}.${b64url(JSON.stringify(payload))}`;
    out.push(`${input}.${b64url(sign(hash, Buffer.from(input), opts))}`);
  }
  return out;
}

if (isMainThread) {
  const [alg, keyFile, profileKey, countText, outFile] = process.argv.slice(2);
  const count = Number(countText);
  if (!['RS256', 'PS256', 'ES256', 'EdDSA'].includes(alg) || !keyFile || !profileKey || !(count > 0) || !outFile) {
    console.error('usage: node tokens.mjs RS256|PS256|ES256|EdDSA PRIVATE_KEY_PEM PROFILE_KEY COUNT OUT');
    process.exit(2);
  }
  const pem = readFileSync(keyFile, 'utf8');
  const now = Math.floor(Date.now() / 1000);
  const salt = randomBytes(6).toString('hex');
  const n = Math.max(1, Math.min(availableParallelism(), count));
  const parts = await Promise.all(Array.from({ length: n }, (_, w) => new Promise((resolve, reject) => {
    const from = Math.floor((count * w) / n);
    const to = Math.floor((count * (w + 1)) / n);
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { alg, pem, profileKey, from, to, now, salt },
    });
    worker.once('message', resolve);
    worker.once('error', reject);
  })));
  writeFileSync(outFile, `${parts.flat().join('\n')}\n`);
} else {
  parentPort.postMessage(signRange(workerData));
}
