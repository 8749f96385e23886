// SPDX-License-Identifier: Apache-2.0
// Hand-made JWS compact tokens for the end-to-end tests of SPEC §3: the header and payload are
// given as raw JSON text (or bytes), so a test can send what no JOSE library would produce —
// duplicate members, comments, NUL bytes, deep nesting — signed with a real key, and then change
// the token the ways attacks do (padding, non-canonical base64url, signature surgery).
//
//   const token = signJws('{"alg":"RS256","kid":"k1"}', '{"exp":1}', rsaPrivateKey);
//   const other = signJws(header, payload, ecKey, { alg: 'ES384' });   // sign as another alg
//   editSignature(token, (sig) => Buffer.alloc(sig.length));          // r = s = 0
//
// Only node:crypto is used; keys are KeyObjects (or, for HS*, the secret's bytes).

import {
  constants, createHmac, createPublicKey, generateKeyPairSync, sign,
} from 'node:crypto';

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** base64url without padding of a string (UTF-8) or Buffer. */
export function b64url(data) {
  return Buffer.from(data).toString('base64url');
}

/** The characters base64url without padding takes for n bytes. */
export function b64urlLength(n) {
  return Math.floor(n / 3) * 4 + [0, 2, 3][n % 3];
}

/** The signature of `input` (a Buffer) under `key` for a JWS alg, as JWS wants it (R||S for ECDSA). */
export function jwsSignature(alg, key, input) {
  const bits = alg.slice(2);
  const digest = `sha${bits}`;
  switch (alg.slice(0, 2)) {
    case 'RS':
      return sign(digest, input, key);
    case 'PS':
      return sign(digest, input, {
        key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
      });
    case 'ES':
      return sign(digest, input, { key, dsaEncoding: 'ieee-p1363' });
    case 'HS':
      return createHmac(digest, key).update(input).digest();
    case 'Ed':
      return sign(null, input, key);
    default:
      throw new Error(`cannot sign ${alg}`);
  }
}

/**
 * header.payload.signature: header and payload are JSON text or Buffers (used byte for byte);
 * opts.alg: the algorithm to sign with (default: the header's alg when it parses, else RS256).
 */
export function signJws(header, payload, key, opts = {}) {
  let alg = opts.alg;
  if (!alg) {
    try {
      alg = JSON.parse(Buffer.from(header).toString('utf8')).alg;
    } catch { /* a broken header: the caller names the alg */ }
    if (typeof alg !== 'string' || !/^(RS|PS|ES|HS)(256|384|512)$|^EdDSA$/.test(alg)) alg = 'RS256';
  }
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${jwsSignature(alg, key, Buffer.from(input, 'ascii')).toString('base64url')}`;
}

/** Replaces segment i (0 header, 1 payload, 2 signature) with fn(old segment text). */
export function editSegment(token, i, fn) {
  const parts = token.split('.');
  parts[i] = fn(parts[i]);
  return parts.join('.');
}

/**
 * Sets unused low bits of the last character of segment i: the same bytes, a second (non-canonical)
 * encoding that a lenient decoder accepts. The segment's length must not be a multiple of 4.
 */
export function nonCanonical(token, i) {
  return editSegment(token, i, (s) => {
    if (s.length % 4 < 2) throw new Error(`segment ${i} has no spare bits (length ${s.length})`);
    const value = B64URL.indexOf(s[s.length - 1]);
    const changed = B64URL[value | 1];
    if (changed === s[s.length - 1]) throw new Error('the spare bit was set already');
    return s.slice(0, -1) + changed;
  });
}

/** Appends the '=' padding standard base64 would have to segment i. */
export function padded(token, i) {
  return editSegment(token, i, (s) => {
    if (s.length % 4 === 0) throw new Error(`segment ${i} needs no padding`);
    return s + '='.repeat(4 - (s.length % 4));
  });
}

/** Inserts text in the middle of segment i. */
export function insertInSegment(token, i, text) {
  return editSegment(token, i, (s) => s.slice(0, s.length >> 1) + text + s.slice(s.length >> 1));
}

/** Replaces the decoded signature with fn(Buffer) and re-encodes it. */
export function editSignature(token, fn) {
  return editSegment(token, 2, (s) => Buffer.from(fn(Buffer.from(s, 'base64url'))).toString('base64url'));
}

// ---- ECDSA signature forms ----

/** The order n of P-256. */
export const P256_ORDER = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');

/** The order L of Ed25519, little-endian like its S. */
const ED25519_ORDER = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');

function derInteger(bytes) {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let body = bytes.subarray(i);
  if (body[0] & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}

/** Raw R||S turned into the DER SEQUENCE { r INTEGER, s INTEGER } (short form lengths). */
export function ecdsaRawToDer(raw) {
  const half = raw.length / 2;
  const content = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  if (content.length > 127) throw new Error('long-form DER lengths are not needed here');
  return Buffer.concat([Buffer.from([0x30, content.length]), content]);
}

/** Ed25519 signature with S + L: the malleable twin that a lax verifier still accepts. */
export function ed25519AddOrder(sig) {
  const out = Buffer.from(sig);
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const v = out[32 + i] + ED25519_ORDER[i] + carry;
    out[32 + i] = v & 0xff;
    carry = v >> 8;
  }
  return out;
}

// ---- keys ----

/** A new key pair: { privateKey, publicKey } KeyObjects. kind: 'rsa' (bits), 'p256', 'p521', 'ed25519'. */
export function newKeyPair(kind, bits = 2048) {
  switch (kind) {
    case 'rsa':
      return generateKeyPairSync('rsa', { modulusLength: bits });
    case 'p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'p521':
      return generateKeyPairSync('ec', { namedCurve: 'P-521' });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    default:
      throw new Error(`unknown key kind ${kind}`);
  }
}

/** The public key of a private KeyObject as a JWK with the members given in extra (kid, alg, use). */
export function publicJwkOf(privateKey, extra = {}) {
  return { ...createPublicKey(privateKey).export({ format: 'jwk' }), ...extra };
}

/** The private key as a JWK (for IdPs that take private JWKs), with extra members. */
export function privateJwkOf(privateKey, extra = {}) {
  return { ...privateKey.export({ format: 'jwk' }), ...extra };
}

/** SPKI PEM of a private or public KeyObject's public half. */
export function publicPem(key) {
  return createPublicKey(key).export({ type: 'spki', format: 'pem' });
}
