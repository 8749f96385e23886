// SPDX-License-Identifier: Apache-2.0
// A real OpenID Provider (the npm package `oidc-provider`) on loopback, set up the way a
// production IdP is for machine-to-machine access: the client credentials grant, resource
// indicators (RFC 8707) with a resource server whose access tokens are signed JWTs, and the
// gatehouse access profile key in the claim `https://gatehouse.dev/key`.
//
//   const idp = await start({ profileKey: 'orders' });
//   const token = await idp.getToken();            // a real POST to the token endpoint
//   const { kid } = await idp.rotate();            // publish a new key and sign with it
//   await idp.dropKey(previousKid);                 // later: retire the old one
//   await idp.stop();
//
// The issuer is `http://127.0.0.1:<port>` on an ephemeral port (with a terminating '/' when asked). The HTTP server lives as long as
// the harness; the Provider behind it is rebuilt when its key set changes (oidc-provider reads
// `jwks` once, at construction), so the issuer, port and endpoints never change.

import http from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider, { errors as oidcErrors } from 'oidc-provider';
import {
  calculateJwkThumbprint,
  CompactSign,
  exportJWK,
  generateKeyPair,
  importJWK,
} from 'jose';

export const KEY_CLAIM = 'https://gatehouse.dev/key';
export const DEFAULT_RESOURCE = 'https://api.gatehouse.test';
export const DEFAULT_SCOPE = 'gatehouse:read gatehouse:write';
export const DEFAULT_CLIENT_ID = 'gatehouse-e2e';

const DISCOVERY_PATH = '/.well-known/openid-configuration';
const JWKS_PATH = '/jwks';
const TOKEN_PATH = '/token';

// oidc-provider prints its development notices with console.info, that is on stdout, where they
// would mix with the test runner's output. Send them to stderr; everything else is untouched.
let noticesRedirected = false;
function redirectProviderNotices() {
  if (noticesRedirected) return;
  noticesRedirected = true;
  const info = console.info;
  console.info = (...args) => {
    if (typeof args[0] === 'string' && args[0].includes('oidc-provider ')) {
      console.error(...args);
    } else {
      info.apply(console, args);
    }
  };
}

const PUBLIC_MEMBERS = {
  RSA: ['kty', 'n', 'e'],
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
};

/** The public half of a private JWK, with its kid, alg and use. */
export function publicJwk(jwk) {
  const members = PUBLIC_MEMBERS[jwk.kty];
  if (!members) throw new Error(`unsupported key type ${jwk.kty}`);
  const pub = {};
  for (const m of [...members, 'kid', 'alg', 'use']) if (jwk[m] !== undefined) pub[m] = jwk[m];
  return pub;
}

/**
 * A new private signing key as a JWK with kid (its RFC 7638 thumbprint), alg and use.
 * alg: 'RS256' (2048-bit RSA) or 'ES256' (P-256), or any other JWS alg jose can generate.
 */
export async function generateSigningKey(alg = 'RS256') {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(jwk);
  jwk.alg = alg;
  jwk.use = 'sig';
  return jwk;
}

/**
 * The token with its signature really changed: one significant bit of the last base64url
 * character of the signature flipped (never only the padding bits, which a lenient decoder
 * would ignore), so the result is still canonical base64url of a wrong signature.
 */
export function tamperSignature(token) {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[2].length === 0) throw new Error('not a signed compact JWS');
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const sig = parts[2];
  const value = alphabet.indexOf(sig[sig.length - 1]);
  if (value < 0) throw new Error('signature is not base64url');
  const unusedBits = (sig.length * 6) % 8; // low bits of the last character that carry nothing
  parts[2] = sig.slice(0, -1) + alphabet[value ^ (1 << unusedBits)];
  return parts.join('.');
}

// A small in-memory adapter shared by every Provider instance of one harness (the stock one
// warns on each construction, and is a process-wide singleton).
function memoryAdapterFactory() {
  const store = new Map();
  const expired = (entry) => entry.expiresAt !== undefined && entry.expiresAt <= Date.now();
  const get = (key) => {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (expired(entry)) {
      store.delete(key);
      return undefined;
    }
    return entry.payload;
  };
  return class Adapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${this.model}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const expiresAt = expiresIn ? Date.now() + expiresIn * 1000 : undefined;
      store.set(this.key(id), { payload: { ...payload }, expiresAt });
      if (payload.grantId) {
        const grantKey = `grant:${payload.grantId}`;
        const ids = store.get(grantKey)?.payload ?? [];
        ids.push(this.key(id));
        store.set(grantKey, { payload: ids, expiresAt });
      }
      if (payload.userCode) store.set(`userCode:${payload.userCode}`, { payload: id, expiresAt });
      if (payload.uid) store.set(`uid:${payload.uid}`, { payload: id, expiresAt });
    }

    async find(id) {
      return get(this.key(id));
    }

    async findByUserCode(userCode) {
      const id = get(`userCode:${userCode}`);
      return id === undefined ? undefined : this.find(id);
    }

    async findByUid(uid) {
      const id = get(`uid:${uid}`);
      return id === undefined ? undefined : this.find(id);
    }

    async consume(id) {
      const entry = store.get(this.key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id) {
      store.delete(this.key(id));
    }

    async revokeByGrantId(grantId) {
      for (const key of get(`grant:${grantId}`) ?? []) store.delete(key);
      store.delete(`grant:${grantId}`);
    }
  };
}

function normalizeClient(c) {
  if (!c.client_id || !c.client_secret) throw new Error('a client needs client_id and client_secret');
  return {
    token_endpoint_auth_method: 'client_secret_basic',
    scope: DEFAULT_SCOPE,
    ...c,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  };
}

function closeServer(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/**
 * Starts the IdP on 127.0.0.1, port 0.
 *
 * options:
 *   keys        private JWKs (each with alg; kid defaults to the thumbprint). Default: one RS256
 *               and one ES256 key, generated now. The first key of each alg signs.
 *   profileKey  the value of the 'https://gatehouse.dev/key' claim for clients that set none:
 *               a string, or a function (client) => string|undefined. Default 'e2e-profile';
 *               null leaves the claim out.
 *   clients     client metadata objects ({ client_id, client_secret, profile_key?,
 *               token_endpoint_auth_method?: 'client_secret_basic'|'client_secret_post',
 *               scope? }). Default: one client 'gatehouse-e2e' with a random secret.
 *               A client's profile_key (null: no claim) overrides profileKey.
 *   resources   { [resourceIndicator]: { alg?, scope?, accessTokenTTL?, audience? } }.
 *               Default: { 'https://api.gatehouse.test': { alg: 'RS256' } }. The first one is
 *               used when a token request names none.
 *   extraClaims more claims for every access token: an object, or a function (client) => object.
 *   cacheControl { discovery?, jwks? }: Cache-Control values to send (oidc-provider sends none).
 *   issuerTrailingSlash  true: the issuer is `http://127.0.0.1:<port>/`, with a terminating '/'
 *               as Auth0 publishes it (discovery still at `<base>/.well-known/...`).
 */
export async function start(options = {}) {
  redirectProviderNotices();

  const clients = (options.clients ?? [
    { client_id: DEFAULT_CLIENT_ID, client_secret: randomBytes(24).toString('base64url') },
  ]).map(normalizeClient);
  const resources = options.resources ?? { [DEFAULT_RESOURCE]: { alg: 'RS256' } };
  const defaultResource = Object.keys(resources)[0];
  const allScopes = new Set([DEFAULT_SCOPE, ...Object.values(resources).map((r) => r.scope ?? '')]
    .flatMap((s) => s.split(' ')).filter(Boolean));
  const profileKey = options.profileKey === undefined ? 'e2e-profile' : options.profileKey;
  const extraClaims = options.extraClaims;
  const cacheControl = { ...(options.cacheControl ?? {}) };
  const cookieKeys = [randomBytes(32).toString('base64url')];
  const Adapter = memoryAdapterFactory();

  // The signing key set (private JWKs, in publication order) and the kid that signs per alg.
  let keys = options.keys
    ? await Promise.all(options.keys.map(async (k) => ({
      use: 'sig', ...k, kid: k.kid ?? await calculateJwkThumbprint(k),
    })))
    : [await generateSigningKey('RS256'), await generateSigningKey('ES256')];
  const active = new Map();
  for (const k of keys) {
    if (!k.alg) throw new Error('each key needs an alg');
    if (!active.has(k.alg)) active.set(k.alg, k.kid);
  }

  const requests = { discovery: 0, jwks: 0, token: 0, other: 0 };
  let failure = null; // { status, paths: Set }
  let handler = null;

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const kind = path === DISCOVERY_PATH ? 'discovery'
      : path === JWKS_PATH ? 'jwks'
        : path === TOKEN_PATH ? 'token' : 'other';
    requests[kind] += 1;
    if (failure && failure.paths.has(kind)) {
      res.writeHead(failure.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ error: 'temporarily_unavailable' }));
      return;
    }
    handler(req, res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address();
  const base = `http://127.0.0.1:${port}`;
  // Auth0 spells its issuer with a terminating '/'; its endpoints are still at the base
  const issuer = options.issuerTrailingSlash ? `${base}/` : base;

  const clientProfileKey = (client) => {
    const own = client?.metadata?.()?.profile_key;
    if (own !== undefined) return own;
    return typeof profileKey === 'function' ? profileKey(client) : profileKey;
  };

  function buildProvider() {
    const provider = new Provider(issuer, {
      adapter: Adapter,
      clients,
      jwks: { keys: keys.map((k) => ({ ...k })) },
      cookies: { keys: cookieKeys },
      extraClientMetadata: { properties: ['profile_key'] },
      scopes: [...allScopes],
      claims: { openid: ['sub'] },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: false },
        revocation: { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => defaultResource,
          useGrantedResource: async () => false,
          getResourceServerInfo: async (ctx, indicator) => {
            const rs = resources[indicator];
            if (!rs) throw new oidcErrors.InvalidTarget();
            const alg = rs.alg ?? 'RS256';
            const kid = active.get(alg);
            if (!kid) throw new Error(`no signing key for ${alg}`);
            return {
              scope: rs.scope ?? DEFAULT_SCOPE,
              audience: rs.audience ?? indicator,
              accessTokenTTL: rs.accessTokenTTL ?? 300,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg, kid } },
            };
          },
        },
      },
      async extraTokenClaims(ctx, token) {
        const client = ctx?.oidc?.client;
        const claims = {};
        const key = clientProfileKey(client);
        if (key !== null && key !== undefined) claims[KEY_CLAIM] = key;
        const extra = typeof extraClaims === 'function' ? extraClaims(client, token) : extraClaims;
        return { ...extra, ...claims };
      },
      ttl: {
        AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
        ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL ?? 300,
        Grant: 600,
        Interaction: 600,
        Session: 600,
        IdToken: 300,
        AuthorizationCode: 60,
        RefreshToken: 600,
      },
      findAccount: async () => undefined,
      clientBasedCORS: () => false,
      pairwiseIdentifier: async (ctx, accountId, client) => `${client.clientId}:${accountId}`,
      renderError: async (ctx, out) => {
        ctx.type = 'application/json';
        ctx.body = out;
      },
    });
    provider.use(async (ctx, next) => {
      await next();
      if (ctx.path === DISCOVERY_PATH && cacheControl.discovery) ctx.set('cache-control', cacheControl.discovery);
      if (ctx.path === JWKS_PATH && cacheControl.jwks) ctx.set('cache-control', cacheControl.jwks);
    });
    return provider;
  }

  let provider = buildProvider();
  handler = provider.callback();
  const republish = () => {
    provider = buildProvider();
    handler = provider.callback();
  };

  const tokenEndpoint = `${base}${TOKEN_PATH}`;

  /**
   * A real client credentials request. opts: clientId, clientSecret (default: that client's),
   * resource (default: the first resource), scope (default: none requested), authMethod
   * (default: the client's token_endpoint_auth_method). Resolves to the whole token response.
   */
  async function getTokenResponse(opts = {}) {
    const client = clients.find((c) => c.client_id === (opts.clientId ?? clients[0].client_id));
    const clientId = opts.clientId ?? client.client_id;
    const clientSecret = opts.clientSecret ?? client?.client_secret;
    const method = opts.authMethod ?? client?.token_endpoint_auth_method ?? 'client_secret_basic';
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    const resource = opts.resource === undefined ? defaultResource : opts.resource;
    if (resource !== null) body.set('resource', resource);
    if (opts.scope) body.set('scope', opts.scope);
    const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (method === 'client_secret_post') {
      body.set('client_id', clientId);
      body.set('client_secret', clientSecret);
    } else {
      const enc = (s) => encodeURIComponent(s);
      headers.authorization = `Basic ${Buffer.from(`${enc(clientId)}:${enc(clientSecret)}`).toString('base64')}`;
    }
    const res = await fetch(tokenEndpoint, { method: 'POST', headers, body });
    const json = await res.json();
    if (!res.ok) {
      const err = new Error(`token request failed: ${res.status} ${json.error}: ${json.error_description}`);
      err.status = res.status;
      err.response = json;
      throw err;
    }
    return json;
  }

  return {
    issuer,
    port,
    discoveryUrl: `${base}${DISCOVERY_PATH}`,
    jwksUrl: `${base}${JWKS_PATH}`,
    tokenEndpoint,
    resource: defaultResource,
    keyClaim: KEY_CLAIM,
    clients: clients.map((c) => ({ ...c })),
    /** How many requests reached each endpoint (failed ones included). */
    requests,

    getTokenResponse,
    /** Same as getTokenResponse, resolving to the access token string. */
    async getToken(opts) {
      return (await getTokenResponse(opts)).access_token;
    },

    /** The published key set, as served at jwks_uri (public keys). */
    publicJwks() {
      return { keys: keys.map(publicJwk) };
    },
    /** The kid that signs tokens of this alg now. */
    activeKid(alg = 'RS256') {
      return active.get(alg);
    },

    /**
     * Publishes a new signing key. options: alg ('RS256'), key (a private JWK; default: a new
     * one), activate (true: tokens are signed with it from now on), dropPrevious (false: the key
     * that signed before stays published, as a real IdP does during a rotation).
     * Resolves to { kid, previousKid }.
     */
    async rotate({ alg = 'RS256', key, activate = true, dropPrevious = false } = {}) {
      const jwk = key
        ? { use: 'sig', alg, ...key, kid: key.kid ?? await calculateJwkThumbprint(key) }
        : await generateSigningKey(alg);
      if (keys.some((k) => k.kid === jwk.kid)) throw new Error(`kid ${jwk.kid} is already published`);
      const previousKid = active.get(jwk.alg);
      keys = [...keys, jwk];
      if (activate || previousKid === undefined) active.set(jwk.alg, jwk.kid);
      if (dropPrevious && previousKid !== undefined && activate) {
        keys = keys.filter((k) => k.kid !== previousKid);
      }
      republish();
      return { kid: jwk.kid, previousKid };
    },
    /** Signs tokens of that key's alg with the published key kid from now on. */
    useKey(kid) {
      const k = keys.find((x) => x.kid === kid);
      if (!k) throw new Error(`kid ${kid} is not published`);
      active.set(k.alg, kid);
    },
    /** Unpublishes a key (not the one that signs now: rotate or useKey first). */
    async dropKey(kid) {
      if ([...active.values()].includes(kid)) throw new Error(`kid ${kid} is signing; activate another key first`);
      if (!keys.some((k) => k.kid === kid)) throw new Error(`kid ${kid} is not published`);
      keys = keys.filter((k) => k.kid !== kid);
      republish();
    },

    /**
     * Signs any header and payload with a published key (for tokens a real IdP would not issue:
     * expired, wrong audience, odd headers). Defaults: iss, aud, iat, exp (+300 s), the key
     * claim, header { alg, kid, typ: 'at+jwt' }. A member set to undefined is left out.
     */
    async sign(payload = {}, { alg = 'RS256', kid = active.get(alg), header = {} } = {}) {
      const jwk = keys.find((k) => k.kid === kid);
      if (!jwk) throw new Error(`kid ${kid} is not published`);
      const now = Math.floor(Date.now() / 1000);
      const full = {
        iss: issuer, aud: defaultResource, iat: now, exp: now + 300, [KEY_CLAIM]: clientProfileKey(null), ...payload,
      };
      const hdr = { alg: jwk.alg, kid, typ: 'at+jwt', ...header };
      for (const o of [full, hdr]) for (const m of Object.keys(o)) if (o[m] === undefined || o[m] === null) delete o[m];
      const privateKey = await importJWK(jwk, jwk.alg);
      return new CompactSign(new TextEncoder().encode(JSON.stringify(full)))
        .setProtectedHeader(hdr)
        .sign(privateKey);
    },

    /** Sets the Cache-Control sent with the discovery document and/or the key set. */
    setCacheControl(values) {
      Object.assign(cacheControl, values);
    },
    /**
     * Makes the IdP answer `status` (e.g. 503) on some endpoints, as an outage would; null ends
     * it. paths: any of 'discovery', 'jwks', 'token', 'other' (default discovery and jwks, so
     * tests can still get tokens while gatehouse cannot refresh keys).
     */
    setFailure(status, paths = ['discovery', 'jwks']) {
      failure = status ? { status, paths: new Set(paths) } : null;
    },

    /** Closes the server and every connection to it. */
    async stop() {
      await closeServer(server);
    },
  };
}
