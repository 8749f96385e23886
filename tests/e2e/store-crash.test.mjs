// SPDX-License-Identifier: Apache-2.0
// Crash safety of the store: `gatehouse serve` is killed with SIGKILL in the middle of a stream of
// admin API writes (one at a time, then 8 at once), and started again on the same directory.
// Every write that was answered 2xx before the kill must be there, nothing may be half-written,
// and nothing may appear that was never sent. Three kill/restart cycles on one data directory.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { gatehouseBin, haveGatehouse } from './lib/run.mjs';
import { sleep, startServer } from './lib/server.mjs';
import { configOf, expectStatus, idPattern, listAll, TIME } from './lib/check.mjs';

// No skipping: `make test` builds the binary first, and a run without it must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const PARALLEL = 8;
const SEQUENTIAL_MS = 1000;
const STREAM_MS = 3000;
const CLIENT_FIELDS = ['active', 'created_at', 'description', 'id', 'name', 'updated_at'];

/** The description a client of this name is created with: long enough that a torn write shows. */
function descriptionOf(name) {
  const filler = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(40);
  return `${name}|${filler.slice(0, 200 + (name.length * 37) % 1000)}|${name}`;
}

function randomBetween(lo, hi) {
  return lo + Math.random() * (hi - lo);
}

describe('the store survives kill -9 in the middle of writes', () => {
  let gh;
  let owner; // the client that the written profiles belong to
  let counter; // the client whose description is overwritten again and again
  const acked = { clients: new Map(), profiles: new Map() }; // id -> name, answered 2xx
  const sent = { clients: new Set(), profiles: new Set() }; // every name ever sent
  let ackedWrites = 0; // every write answered 2xx (each is one generation)
  let sentWrites = 0;
  let counterAcked = -1; // highest counter value whose PATCH was answered 2xx
  let counterSent = -1;

  before(async () => {
    gh = await startServer();
    owner = expectStatus(await gh.api('POST', '/v1/clients', { name: 'crash-owner' }), 201);
    counter = expectStatus(await gh.api('POST', '/v1/clients', { name: 'crash-counter', description: '-1' }), 201);
    ackedWrites = sentWrites = 2;
  });
  after(async () => {
    await gh?.stop();
  });

  /**
   * Writes until state.killing is set (just before the kill); returns the unexpected answers (a
   * 4xx or 5xx before the kill).
   * Worker 0 of the parallel phase PATCHes the counter client; the others create clients and
   * token profiles.
   */
  async function writeStream(cycle, state) {
    const unexpected = [];
    const started = Date.now();
    let n = 0;

    async function createOne(worker) {
      const i = n++;
      const kind = i % 3 === 2 ? 'profiles' : 'clients';
      const name = `crash-${cycle}-${worker}-${i}`;
      const body = kind === 'clients'
        ? { name, description: descriptionOf(name) }
        : { client_id: owner.id, name, auth_type: 'token', leeway_seconds: i % 301 };
      sent[kind].add(name);
      sentWrites++;
      let r;
      try {
        r = await gh.api('POST', `/v1/${kind}`, body);
      } catch {
        return false; // the connection broke: the kill came; the write may or may not be in
      }
      if (r.status === 201) {
        acked[kind].set(r.json.id, name);
        ackedWrites++;
        return true;
      }
      if (!state.killing) unexpected.push(`${r.request} ${r.status} ${r.text}`);
      return false;
    }

    async function bumpCounter() {
      const value = ++counterSent;
      sentWrites++;
      let r;
      try {
        r = await gh.api('PATCH', `/v1/clients/${counter.id}`, { description: String(value) });
      } catch {
        return false;
      }
      if (r.status === 200) {
        counterAcked = Math.max(counterAcked, value);
        ackedWrites++;
        return true;
      }
      if (!state.killing) unexpected.push(`${r.request} ${r.status} ${r.text}`);
      return false;
    }

    // one at a time
    while (!state.killing && Date.now() - started < SEQUENTIAL_MS) {
      if (!(await createOne('s'))) break;
    }
    // then 8 at once
    const workers = [];
    for (let w = 0; w < PARALLEL; w++) {
      workers.push((async () => {
        while (!state.killing && Date.now() - started < STREAM_MS + 2000) {
          const ok = w === 0 ? await bumpCounter() : await createOne(`p${w}`);
          if (!ok) break;
        }
      })());
    }
    await Promise.all(workers);
    return unexpected;
  }

  async function checkAfterRestart(cycle) {
    // the database opens and answers
    const config = await configOf(gh);
    expectStatus(await gh.api('GET', '/healthz'), 200);
    assert.equal(expectStatus(await gh.api('GET', '/readyz'), 200).ready, true);

    // clients: every acknowledged one is there, each whole, none that was never sent
    const clients = await listAll(gh, '/v1/clients');
    const byId = new Map(clients.map((c) => [c.id, c]));
    assert.equal(byId.size, clients.length, 'no client is listed twice');
    for (const [id, name] of acked.clients) {
      const c = byId.get(id);
      assert.ok(c, `cycle ${cycle}: client ${id} (${name}) was answered 201 before the kill and must survive`);
      assert.equal(c.name, name);
    }
    for (const c of clients) {
      assert.deepEqual(Object.keys(c).sort(), CLIENT_FIELDS, `client ${c.id} has every field`);
      assert.match(c.id, idPattern('cli'));
      assert.match(c.created_at, TIME);
      assert.match(c.updated_at, TIME);
      assert.equal(c.active, true);
      if (c.id === owner.id || c.id === counter.id) continue;
      assert.ok(sent.clients.has(c.name), `client ${c.id} (${c.name}) was sent`);
      assert.equal(c.description, descriptionOf(c.name), `client ${c.id}: the description is whole`);
    }
    assert.ok(clients.length <= sent.clients.size + 2);
    assert.deepEqual(config.clients.map((c) => c.id).sort(), clients.map((c) => c.id).sort(), '/v1/config lists the same clients');

    // the overwritten description holds the last acknowledged value or a later one that was sent
    const value = Number(byId.get(counter.id).description);
    assert.ok(Number.isInteger(value), `the counter is a whole write: ${byId.get(counter.id).description}`);
    assert.ok(value >= counterAcked && value <= counterSent,
      `cycle ${cycle}: counter ${value} is between the last acknowledged ${counterAcked} and the last sent ${counterSent}`);

    // profiles: every acknowledged one is there, each with exactly one key (profile and key are one write)
    const profiles = await listAll(gh, '/v1/profiles');
    const profileIds = new Set(profiles.map((p) => p.id));
    for (const [id, name] of acked.profiles) {
      assert.ok(profileIds.has(id), `cycle ${cycle}: profile ${id} (${name}) was answered 201 before the kill and must survive`);
    }
    const keysByProfile = new Map();
    for (const k of config.keys) {
      assert.ok(profileIds.has(k.profile_id), `key ${k.id} belongs to an existing profile`);
      assert.match(k.hash, /^[0-9a-f]{64}$/);
      assert.match(k.prefix, /^gk_[A-Za-z0-9_-]{5}$/);
      keysByProfile.set(k.profile_id, (keysByProfile.get(k.profile_id) ?? 0) + 1);
    }
    for (const p of profiles) {
      assert.ok(sent.profiles.has(p.name), `profile ${p.id} (${p.name}) was sent`);
      assert.equal(p.client_id, owner.id);
      assert.equal(p.auth_type, 'token');
      assert.deepEqual(p.required_claims, ['exp']);
      assert.equal(p.leeway_seconds, Number(p.name.split('-').pop()) % 301, `profile ${p.id} is whole`);
      assert.equal(keysByProfile.get(p.id), 1, `profile ${p.id} has exactly its one key`);
    }
    // each answered write bumped the generation once; nothing counted twice, nothing lost
    assert.ok(config.generation >= ackedWrites && config.generation <= sentWrites,
      `generation ${config.generation} is between ${ackedWrites} acknowledged and ${sentWrites} sent writes`);
  }

  for (const cycle of [1, 2, 3]) {
    test(`cycle ${cycle}: SIGKILL during ${cycle === 1 ? 'sequential' : 'parallel'} writes, restart, nothing lost or torn`, { timeout: 30000 }, async (t) => {
      // the first cycle is killed while writing one at a time, the others while writing 8 at once
      const killAfter = cycle === 1 ? randomBetween(300, SEQUENTIAL_MS - 100) : randomBetween(SEQUENTIAL_MS + 300, STREAM_MS - 200);
      const pid = gh.pid;
      const state = { killing: false };
      const ackedBefore = ackedWrites;
      const sentBefore = sentWrites;
      const t0 = Date.now();
      const stream = writeStream(cycle, state);
      await sleep(killAfter);
      // on a slow disk, wait for a few answers first, so that the kill really is in the middle
      for (let waited = 0; ackedWrites - ackedBefore < 5 && waited < 10000; waited += 20) await sleep(20);
      state.killing = true; // no new write starts from here; those in flight are cut
      const result = await gh.kill('SIGKILL');
      const unexpected = await stream;
      assert.equal(result.signal, 'SIGKILL', `process ${pid} was killed by SIGKILL`);
      assert.deepEqual(unexpected, [], 'no write was refused before the kill');
      assert.ok(ackedWrites - ackedBefore >= 5, `writes were answered before the kill (${ackedWrites - ackedBefore})`);
      t.diagnostic(`killed after ${Date.now() - t0} ms: ${ackedWrites - ackedBefore} writes answered, ${sentWrites - sentBefore - (ackedWrites - ackedBefore)} in flight when it came`);

      await gh.start();
      assert.notEqual(gh.pid, pid);
      await checkAfterRestart(cycle);
      // and it still takes writes
      const c = expectStatus(await gh.api('POST', '/v1/clients', { name: `after-crash-${cycle}`, description: descriptionOf(`after-crash-${cycle}`) }), 201);
      acked.clients.set(c.id, c.name);
      sent.clients.add(c.name);
      ackedWrites++;
      sentWrites++;
    });
  }
});
