// SPDX-License-Identifier: Apache-2.0
// Issue 11, what the front end knows of its peers: a connection limit that keeps the gateway and
// the admin API up (~1,100 idle connections made both unreachable), the caller's own
// X-Forwarded-For / Forwarded / X-Real-IP replaced unless the peer is a trusted proxy, and IPv4
// rules (ip_deny 127.0.0.0/8) matching an IPv4 client on a dual-stack listener, where its address
// reads ::ffff:127.0.0.1. The upstream is lib/rawupstream.mjs. Everything on loopback with
// ephemeral ports.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { connectRaw, exchange, expectRefusal, startFrontend } from './lib/frontend.mjs';
import { gatehouseBin, haveGatehouse } from './lib/run.mjs';
import { waitUntil } from './lib/server.mjs';

// No skipping: a run without the binary must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const get = (address, path, fields) => exchange(address,
  `GET ${path} HTTP/1.1\r\nHost: fe.example\r\nConnection: close\r\n${fields.map((f) => `${f}\r\n`).join('')}\r\n`, { closeWaitMs: 0 });

/** The values of a field as the upstream received it (every line of that name). */
function seen(req, name) {
  return req.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
}

describe('issue 11: --max-connections keeps the gateway and the admin API up', () => {
  let fe;
  const conns = [];
  before(async () => {
    fe = await startFrontend({ flags: ['--max-connections', '50'] });
  });
  after(async () => {
    for (const c of conns) c.destroy();
    await fe?.stop();
  });

  test('60 idle connections: those over 50 are closed at once, /healthz answers, and after some close a request works', async () => {
    for (let i = 0; i < 60; i++) {
      try {
        conns.push(await connectRaw(fe.address, { connectTimeoutMs: 1000 }));
      } catch (err) {
        conns.push({ closed: () => true, destroy() {}, error: err }); // refused at connect: as good as closed
      }
    }
    const closedCount = () => conns.filter((c) => c.closed()).length;
    await waitUntil(() => closedCount() >= 10, { timeoutMs: 3000, what: `10 of 60 connections closed (${closedCount()} so far)` })
      .catch((err) => assert.fail(`${err.message}: ${closedCount()} closed`));
    const open = conns.filter((c) => !c.closed()).length;
    assert.ok(open <= 50, `${open} connections open over a limit of 50`);
    assert.ok(open >= 25, `only ${open} connections stayed open under a limit of 50`);
    const health = await fe.gh.api('GET', '/healthz');
    assert.equal(health.status, 200, 'the admin API answers while the gateway is full');
    // room again: close 20 of the open ones; a new request is served
    for (const c of conns.filter((x) => !x.closed()).slice(0, 20)) c.destroy();
    const r = await waitUntil(async () => {
      const x = await get(fe.address, '/fe/v1/after', [`api-token: ${fe.key}`]);
      return x.first?.status === 200 ? x : null;
    }, { timeoutMs: 5000, what: 'a request served once connections were closed' });
    assert.equal(r.first.body.toString(), 'ok');
  });
});

describe('issue 11: the caller\'s forwarding headers are replaced unless the peer is a trusted proxy', () => {
  let fe;
  before(async () => {
    fe = await startFrontend();
  });
  after(async () => {
    await fe?.stop();
  });

  test('by default the upstream sees X-Forwarded-For: 127.0.0.1 only, and no Forwarded or X-Real-IP of the caller', async () => {
    const r = await get(fe.address, '/fe/v1/xff', [`api-token: ${fe.key}`, 'X-Forwarded-For: 203.0.113.9',
      'X-Forwarded-For: 198.51.100.7', 'Forwarded: for=192.0.2.60;proto=https', 'X-Real-IP: 192.0.2.61']);
    assert.equal(r.first?.status, 200, r.text.slice(0, 300));
    const req = fe.up.requests.at(-1);
    assert.deepEqual(seen(req, 'x-forwarded-for'), ['127.0.0.1'], 'X-Forwarded-For is the peer only');
    assert.deepEqual(seen(req, 'forwarded'), [], 'the caller\'s Forwarded stays behind');
    assert.deepEqual(seen(req, 'x-real-ip'), [], 'the caller\'s X-Real-IP stays behind');
  });
});

describe('issue 11: --trusted-proxies keeps and extends the X-Forwarded-For of a trusted peer', () => {
  let fe;
  before(async () => {
    fe = await startFrontend({ flags: ['--trusted-proxies', '127.0.0.1/32'] });
  });
  after(async () => {
    await fe?.stop();
  });

  test('from 127.0.0.1 (trusted) the upstream sees "203.0.113.9, 127.0.0.1"', async () => {
    const r = await get(fe.address, '/fe/v1/xff', [`api-token: ${fe.key}`, 'X-Forwarded-For: 203.0.113.9']);
    assert.equal(r.first?.status, 200, r.text.slice(0, 300));
    assert.deepEqual(seen(fe.up.requests.at(-1), 'x-forwarded-for'), ['203.0.113.9, 127.0.0.1']);
  });
});

describe('issue 11: IPv4 rules match IPv4-mapped IPv6 peers', () => {
  let fe;
  let open; // a profile of the same client without ip_deny: the twin
  before(async () => {
    fe = await startFrontend({ listen: '[::]:0', profile: { ip_deny: ['127.0.0.0/8'] } });
    const r = await fe.gh.api('POST', '/v1/profiles', {
      client_id: fe.clientId, name: 'open', auth_type: 'token', collection_ids: [fe.collectionId],
    });
    assert.equal(r.status, 201, r.text);
    open = r.json.key;
  });
  after(async () => {
    await fe?.stop();
  });

  test('on a [::] listener, a client of 127.0.0.1 (::ffff:127.0.0.1) is denied by ip_deny 127.0.0.0/8', async () => {
    assert.match(fe.listening, /^\[::\]:\d+$/, 'a dual-stack listener');
    const ok = await get(fe.address, '/fe/v1/mapped', [`api-token: ${open}`]);
    assert.equal(ok.first?.status, 200, `the twin without ip_deny: ${ok.text.slice(0, 300)}`);
    const before = fe.up.requests.length;
    const r = await get(fe.address, '/fe/v1/mapped', [`api-token: ${fe.key}`]);
    expectRefusal(r, 403, 'forbidden', 'ip_deny 127.0.0.0/8 over IPv4-mapped IPv6');
    assert.match(r.first.json.message, /client address is denied/);
    assert.equal(fe.up.requests.length, before, 'nothing reached the upstream');
  });
});
