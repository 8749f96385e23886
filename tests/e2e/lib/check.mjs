// SPDX-License-Identifier: Apache-2.0
// Assertions shared by the admin API tests.

import assert from 'node:assert/strict';

/** RFC 3339 UTC, as every timestamp of the admin API. */
export const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** An id of SPEC §1: the prefix, '_', at least 12 base62 characters. */
export function idPattern(prefix) {
  return new RegExp(`^${prefix}_[0-9A-Za-z]{12,}$`);
}

/** An access profile key: gk_ and 43 base64url characters (32 bytes). */
export const PLAIN_KEY = /^gk_[A-Za-z0-9_-]{43}$/;

/** Asserts the status of an adminRequest answer (showing the answer when it differs); its JSON. */
export function expectStatus(r, status) {
  assert.equal(r.status, status, `${r.request} answered ${r.status}, expected ${status}: ${r.text.slice(0, 600)}`);
  return r.json;
}

/**
 * Asserts an error answer of SPEC §6: status, {"error": code, "message": ...} as JSON and, when
 * given, "field". Returns the body.
 */
export function expectError(r, status, code, field) {
  expectStatus(r, status);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${r.request}: JSON error`);
  assert.equal(r.json?.error, code, `${r.request}: error code in ${r.text}`);
  assert.equal(typeof r.json.message, 'string', `${r.request}: a message`);
  assert.ok(r.json.message.length > 0, `${r.request}: a non-empty message`);
  if (field !== undefined) assert.equal(r.json.field, field, `${r.request}: field in ${r.text}`);
  return r.json;
}

/** Asserts a list answer {"data":[...],"next":...}; returns it. */
export function expectList(r) {
  const body = expectStatus(r, 200);
  assert.ok(Array.isArray(body.data), `${r.request}: data is an array`);
  assert.ok(body.next === null || typeof body.next === 'string', `${r.request}: next is a cursor or null`);
  return body;
}

/** Every page of a list, following next; returns all items. */
export async function listAll(gh, path, limit = 1000) {
  const items = [];
  let after = null;
  for (let pages = 0; pages < 10000; pages++) {
    const sep = path.includes('?') ? '&' : '?';
    const r = await gh.api('GET', `${path}${sep}limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ''}`);
    const body = expectList(r);
    items.push(...body.data);
    if (body.next === null) return items;
    after = body.next;
  }
  throw new Error(`${path}: too many pages`);
}

/** The whole configuration with secrets (key hashes, jwt_key): what "nothing changed" compares. */
export async function configOf(gh) {
  return expectStatus(await gh.api('GET', '/v1/config?secrets=true'), 200);
}

/** Runs fn and asserts that GET /v1/config?secrets=true is the same before and after. */
export async function assertUnchanged(gh, fn) {
  const before = await configOf(gh);
  const result = await fn();
  const afterwards = await configOf(gh);
  assert.deepStrictEqual(afterwards, before, 'a rejected write changed the configuration');
  return result;
}
