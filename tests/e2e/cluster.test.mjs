// SPDX-License-Identifier: Apache-2.0
// Several gatehouse nodes on one PostgreSQL (issue 12, points 2, 3 and 5): a throwaway cluster on
// loopback (lib/postgres.mjs), three nodes on it, each with its own gateway and admin ports, and
// the proofs that every node sees every change within the goal, that the database enforces one
// winner when two nodes race, that the database may go away and come back under load without one
// valid request refused, that a node started while it is away serves nothing, says why, and
// serves once it is back, that a node killed in the middle of admin writes loses none it
// acknowledged, and that ten nodes starting at once on an empty database migrate it once.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { startPostgres } from './lib/postgres.mjs';
import { startGateway, stopClean } from './lib/proofs-http.mjs';
import { sleep, waitUntil } from './lib/server.mjs';
import { startUpstream } from './lib/upstream.mjs';

const TOKEN = 'gha_cluster-e2e-admin-token-0123456789';
// the propagation goal of the issue is p99 under 250 ms on loopback; the test asserts the 1 s
// bound with room for a noisy machine, and prints what it measured
const PROPAGATION_BOUND_MS = 1000;

let pg;
let upstream;

/** A node on `url`: its gateway in gw, admin API through api(). */
function startNode(url, extra = {}) {
  return startGateway({
    env: { GATEHOUSE_ADMIN_TOKEN: TOKEN },
    args: ['--db', url, '--store-poll-ms', '1000', '--log-level', 'info', ...(extra.args ?? [])],
    timeoutMs: extra.timeoutMs ?? 20000,
  });
}

async function created(gh, path, body) {
  const r = await gh.api('POST', path, body);
  assert.equal(r.status, 201, `${r.request} on ${gh.url}: ${r.text}`);
  return r.json;
}

/** The gateway's status for GET path (no credential: 404 until routed, 401 once it is). */
async function routeStatus(gh, path) {
  const r = await fetch(`${gh.gw}${path}`);
  await r.arrayBuffer();
  return r.status;
}

/** SIGTERM to each node still running: each must drain and exit 0 (no sanitizer report). */
async function stopAll(nodes) {
  const results = await Promise.allSettled(nodes.filter(Boolean).map((n) => stopClean(n)));
  const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
  assert.deepEqual(failed, [], 'every node stops cleanly');
}

/** No node's output may hold the database password. */
function assertNoPassword(nodes) {
  for (const n of nodes) assert.ok(!n.log().includes(pg.password), `the password is in the log of ${n.url}`);
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

describe('several nodes on one PostgreSQL (issue 12)', () => {
  before(async () => {
    pg = await startPostgres();
    upstream = await startUpstream();
  });
  after(async () => {
    await upstream?.close();
    await pg?.close();
  });

  test('a change on node A is routed by nodes B and C within the goal (100 changes, p50/p99)', async () => {
    const url = await pg.newDatabase('propagation');
    const nodes = [];
    try {
      for (let i = 0; i < 3; i++) nodes.push(await startNode(url));
      const [a, b, c] = nodes;
      const col = await created(a, '/v1/collections', { name: 'orders', path: '/orders/v1', upstream: upstream.url });
      const times = [];
      for (let i = 0; i < 100; i++) {
        await created(a, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: `/p${i}` });
        const acked = performance.now();
        // both other nodes, polled together until each routes the new path
        await Promise.all([b, c].map(async (n) => {
          const deadline = acked + 5000;
          while ((await routeStatus(n, `/orders/v1/p${i}`)) === 404) {
            if (performance.now() > deadline) assert.fail(`node ${n.url} never routed /orders/v1/p${i}`);
            await sleep(2);
          }
        }));
        times.push(performance.now() - acked);
      }
      times.sort((x, y) => x - y);
      const p50 = percentile(times, 50);
      const p99 = percentile(times, 99);
      console.log(`propagation A -> B and C over ${times.length} changes: p50 ${p50.toFixed(1)} ms, `
        + `p99 ${p99.toFixed(1)} ms, max ${times[times.length - 1].toFixed(1)} ms (goal p99 < 250 ms, `
        + `bound ${PROPAGATION_BOUND_MS} ms)`);
      assert.ok(p99 < PROPAGATION_BOUND_MS, `p99 ${p99.toFixed(1)} ms`);
      // they came by NOTIFY, not by the 1 s generation check
      const m = await (await fetch(`${b.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
      const notified = Number(m.match(/^gatehouse_config_reloads_total\{cause="notify"\} (\d+)$/m)?.[1]);
      const polled = Number(m.match(/^gatehouse_config_reloads_total\{cause="poll"\} (\d+)$/m)?.[1]);
      console.log(`node B reloads: notify ${notified}, poll ${polled}`);
      assert.ok(notified >= 90, `node B reloaded ${notified} times on a notification`);
      assert.match(m, /^gatehouse_store_up 1$/m);
      const gen = (await a.api('GET', '/v1/config')).json.generation;
      assert.match(m, new RegExp(`^gatehouse_config_generation ${gen}$`, 'm'));

      // the safety net: a generation moved without a notification (as one missed during a
      // reconnect would be) is found by the generation check (--store-poll-ms 1000 here)
      await pg.sql('propagation', 'UPDATE meta SET value = value + 1 WHERE name = \'generation\'');
      const t0 = performance.now();
      for (const n of nodes) {
        await waitUntil(async () => {
          const text = (await n.api('GET', '/metrics', undefined, { raw: true })).text;
          return new RegExp(`^gatehouse_config_generation ${gen + 1}$`, 'm').test(text)
            && /^gatehouse_config_reloads_total\{cause="poll"\} [1-9]/m.test(text);
        }, { what: `${n.url} finding generation ${gen + 1} by its check`, timeoutMs: 5000, intervalMs: 20 });
      }
      console.log(`a generation moved without NOTIFY was found by every node's check in ${(performance.now() - t0).toFixed(0)} ms (period 1000 ms)`);
      assertNoPassword(nodes);
    } finally {
      await stopAll(nodes);
    }
  });

  test('two nodes creating the same collection path at once: exactly one 201, one 409', async () => {
    const url = await pg.newDatabase('race');
    const nodes = [];
    try {
      for (let i = 0; i < 2; i++) nodes.push(await startNode(url));
      for (let round = 0; round < 5; round++) {
        const body = (n) => ({ name: `race${round}-${n}`, path: `/race${round}`, upstream: upstream.url });
        const answers = await Promise.all(nodes.map((n, i) => n.api('POST', '/v1/collections', body(i))));
        const statuses = answers.map((r) => r.status).sort();
        assert.deepEqual(statuses, [201, 409], answers.map((r) => r.text).join('\n'));
        const loser = answers.find((r) => r.status === 409);
        assert.equal(loser.json.error, 'conflict');
      }
      console.log('5 rounds of two nodes racing for one path: one 201 and one 409 each');
    } finally {
      await stopAll(nodes);
    }
  });

  test('PostgreSQL stopped under load and started again: 0 refused, 503 writes, /readyz 200, catch-up; a node started meanwhile says why', async () => {
    const url = await pg.newDatabase('outage');
    const nodes = [];
    let late;
    try {
      for (let i = 0; i < 3; i++) nodes.push(await startNode(url));
      const [a, b, c] = nodes;
      const col = await created(a, '/v1/collections', { name: 'orders', path: '/orders/v1', upstream: upstream.url });
      await created(a, `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/items' });
      const client = await created(a, '/v1/clients', { name: 'acme' });
      const profile = await created(a, '/v1/profiles', {
        client_id: client.id, name: 'acme', auth_type: 'token', collection_ids: [col.id],
      });
      for (const n of nodes) {
        await waitUntil(async () => (await routeStatus(n, '/orders/v1/items')) === 401, { what: `${n.url} routes`, timeoutMs: 5000 });
      }

      // a steady stream of valid requests to every node, counted by answer
      let running = true;
      const counts = { ok: 0, refused: 0, statuses: {} };
      const load = nodes.map(async (n) => {
        const started = Date.now();
        while (running && Date.now() - started < 90000) {
          try {
            const r = await fetch(`${n.gw}/orders/v1/items`, { headers: { 'api-token': profile.key } });
            await r.arrayBuffer();
            if (r.status === 200) counts.ok++;
            else {
              counts.refused++;
              counts.statuses[r.status] = (counts.statuses[r.status] ?? 0) + 1;
            }
          } catch (err) {
            counts.refused++;
            counts.statuses[err.message] = (counts.statuses[err.message] ?? 0) + 1;
          }
        }
      });
      await sleep(300);
      const stoppedAt = Date.now();
      await pg.stopServer();

      // every node notices, stays ready, and says the store is away
      for (const n of nodes) {
        const r = await waitUntil(async () => {
          const rz = await n.api('GET', '/readyz');
          return rz.json?.store?.reachable === false ? rz : null;
        }, { what: `${n.url} /readyz saying the store is unreachable`, timeoutMs: 10000 });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json.ready, true);
        assert.match(r.json.store.message, /cannot be reached/);
        const m = await n.api('GET', '/metrics', undefined, { raw: true });
        assert.match(m.text, /^gatehouse_store_up 0$/m);
      }
      console.log(`all three nodes reported the store unreachable ${Date.now() - stoppedAt} ms after the stop`);
      // writes answer 503 store_unavailable with a sentence, quickly, on every node
      for (const n of nodes) {
        const t0 = performance.now();
        const w = await n.api('POST', '/v1/clients', { name: `during-${n.address}` });
        const ms = performance.now() - t0;
        assert.equal(w.status, 503, w.text);
        assert.equal(w.json.error, 'store_unavailable');
        assert.match(w.json.message, /cannot be reached; nothing was changed/);
        assert.ok(ms < 3000, `a write during the outage took ${ms.toFixed(0)} ms`);
        console.log(`write during the outage on ${n.address}: 503 in ${ms.toFixed(1)} ms`);
        // reads of the store too (docs/admin-api.md): what they would show may be out of date
        const read = await n.api('GET', '/v1/clients');
        assert.equal(read.status, 503, read.text);
        assert.equal(read.json.error, 'store_unavailable');
        assert.ok(!read.text.includes(pg.password));
      }

      // a node started now starts, serves nothing, says why
      late = await startNode(url);
      const early = await fetch(`${late.gw}/orders/v1/items`, { headers: { 'api-token': profile.key } });
      assert.equal(early.status, 503, await early.text());
      const rz = await late.api('GET', '/readyz');
      assert.equal(rz.status, 503, rz.text);
      assert.match(rz.json.reasons.join(' '), /configuration store cannot be reached/);
      const why = late.output().stdout.split('\n').find((l) => l.includes('configuration store cannot be reached'));
      assert.ok(why, late.output().stdout);
      assert.ok(why.includes(`127.0.0.1:${pg.port}/outage`), why);

      await sleep(1000); // the outage lasts a while under load
      await pg.startServer();
      const backAt = Date.now();
      for (const n of [...nodes, late]) {
        await waitUntil(async () => (await n.api('GET', '/readyz')).json?.store?.reachable === true,
          { what: `${n.url} reconnecting`, timeoutMs: 15000 });
      }
      console.log(`all four nodes reconnected ${Date.now() - backAt} ms after the start`);
      // the late node serves the configuration now
      await waitUntil(async () => {
        const r = await fetch(`${late.gw}/orders/v1/items`, { headers: { 'api-token': profile.key } });
        await r.arrayBuffer();
        return r.status === 200;
      }, { what: 'the late node serving', timeoutMs: 10000 });

      // writes work again on every node, and propagate
      const w = await waitUntil(async () => {
        const r = await b.api('POST', `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/after' });
        return r.status === 201 ? r : null;
      }, { what: 'a write after the outage', timeoutMs: 10000 });
      assert.equal(w.status, 201);
      const t0 = performance.now();
      for (const n of [a, c, late]) {
        await waitUntil(async () => (await routeStatus(n, '/orders/v1/after')) === 401,
          { what: `${n.url} routing the change made after the outage`, timeoutMs: 5000, intervalMs: 5 });
      }
      console.log(`a write after the outage reached the other nodes in ${(performance.now() - t0).toFixed(1)} ms`);

      running = false;
      await Promise.all(load);
      console.log(`load through the outage: ${counts.ok} answered 200, ${counts.refused} refused ${JSON.stringify(counts.statuses)}`);
      assert.equal(counts.refused, 0, JSON.stringify(counts.statuses));
      assert.ok(counts.ok > 100, `only ${counts.ok} requests went through`);

      for (const n of nodes) {
        const log = n.output().stdout;
        const lost = log.split('\n').filter((l) => l.includes('"the configuration store cannot be reached')).length;
        const back = log.split('\n').filter((l) => l.includes('"the configuration store is reachable again"')).length;
        assert.equal(lost, 1, `the loss is said once:\n${log}`);
        assert.equal(back, 1, `the return is said once:\n${log}`);
        const m = await n.api('GET', '/metrics', undefined, { raw: true });
        assert.match(m.text, /^gatehouse_store_reconnects_total 1$/m);
        // the server's goodbye to idle sessions is not echoed raw on stderr: the log said it once
        assert.doesNotMatch(n.output().stderr, /FATAL|terminating connection/, n.output().stderr);
      }
      assertNoPassword([...nodes, late]);
    } finally {
      await stopAll([...nodes, late]);
    }
  });

  test('kill -9 of a node in the middle of admin writes: every acknowledged write is there', async () => {
    const url = await pg.newDatabase('crash');
    const nodes = [];
    try {
      for (let i = 0; i < 2; i++) nodes.push(await startNode(url));
      const [a, b] = nodes;
      const acked = [];
      let stop = false;
      const writer = (async () => {
        for (let i = 0; !stop && i < 10000; i++) {
          try {
            const r = await a.api('POST', '/v1/clients', { name: `c${i}` });
            if (r.status === 201) acked.push(r.json.id);
          } catch { return; } // the node is gone
        }
      })();
      await waitUntil(() => acked.length >= 30, { what: '30 acknowledged writes', timeoutMs: 20000 });
      await a.kill('SIGKILL');
      stop = true;
      await writer;
      const ids = new Set();
      for (let after = null; ;) {
        const r = await b.api('GET', `/v1/clients?limit=1000${after ? `&after=${after}` : ''}`);
        assert.equal(r.status, 200, r.text);
        for (const item of r.json.data) ids.add(item.id);
        if (!r.json.next) break;
        after = r.json.next;
      }
      const missing = acked.filter((id) => !ids.has(id));
      console.log(`kill -9 after ${acked.length} acknowledged writes: ${ids.size} clients stored, ${missing.length} missing`);
      assert.deepEqual(missing, []);
    } finally {
      await stopAll(nodes);
    }
  });

  test('ten nodes started at once on an empty database: one migration, all serve', async () => {
    const url = await pg.newDatabase('tennodes');
    let nodes = [];
    try {
      const started = await Promise.allSettled(Array.from({ length: 10 },
        () => startNode(url, { args: ['--threads', '1'], timeoutMs: 30000 })));
      nodes = started.filter((s) => s.status === 'fulfilled').map((s) => s.value);
      const failed = started.filter((s) => s.status === 'rejected').map((s) => s.reason.message);
      assert.deepEqual(failed, []);
      for (const n of nodes) {
        const r = await n.api('GET', '/readyz');
        assert.equal(r.status, 200, r.text);
      }
      const versions = await pg.sql('tennodes', 'SELECT string_agg(version::text, \',\' ORDER BY version) FROM schema_migrations');
      console.log(`ten nodes ready; schema_migrations: ${versions}`);
      assert.equal(versions, '1,2,3,4,5,6');
      // and a write on one is routed by all
      const col = await created(nodes[3], '/v1/collections', { name: 'ten', path: '/ten', upstream: upstream.url });
      await created(nodes[3], `/v1/collections/${col.id}/endpoints`, { method: 'GET', path: '/x' });
      for (const n of nodes) {
        await waitUntil(async () => (await routeStatus(n, '/ten/x')) === 401, { what: `${n.url} routing`, timeoutMs: 5000 });
      }
    } finally {
      await stopAll(nodes);
    }
  });
});
