// SPDX-License-Identifier: Apache-2.0
// Issue 11, section 8: under a bounded flood of each bomb of the security review (HTTP/2 header
// repetition with and without a credential, CONTINUATION, rapid reset, 2,000 idle connections, 50
// large anonymous bodies) the gateway's peak RSS (VmHWM of /proc/PID/status) stays under 150 MB
// and a normal authorized request beside the flood, each on a new connection, answers 200 within
// 100 ms (the median of 5). Each flood gets a gatehouse of its own, so that one peak never hides
// or blames another. Everything on 127.0.0.1 with ephemeral ports; every process is ours and is
// stopped by its pid.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

import { median, MiB, startFrontend } from './lib/frontend.mjs';
import {
  continuation, E, h2connect, headers, indexed, literal, requestBlock, rstStream, T,
} from './lib/h2frames.mjs';
import { E2E_DIR, gatehouseBin, haveGatehouse } from './lib/run.mjs';
import { sleep } from './lib/server.mjs';

// No skipping: a run without the binary must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const PEAK_LIMIT = 150 * 1000 * 1000;
const LATENCY_LIMIT_MS = 100;
const FLOOD_MS = 6000;

/**
 * Five authorized GETs, 200 ms apart, each on a new connection (TLS when fe has a certificate),
 * from lib/normalreq.mjs in a process of its own to /normal/v1, whose upstream (lib/okchild.mjs)
 * is a process of its own too: [{ status, ms } or { error, ms }].
 */
function normalRequests(fe) {
  const url = `${fe.caFile ? 'https' : 'http'}://${fe.address}/normal/v1/x`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(E2E_DIR, 'lib', 'normalreq.mjs'), url, fe.normalKey, '5', '200',
      ...(fe.caFile ? [fe.caFile] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    child.once('error', reject);
    child.once('close', (code) => {
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`normalreq.mjs exited ${code}: ${out}`));
      }
    });
  });
}

/**
 * Runs `loops` copies of attack(stillFlooding) until FLOOD_MS has passed; one second in, the five
 * normal requests. Then asserts the peak RSS and the answers.
 */
async function underFlood(fe, {
  loops, attack, what, t,
}) {
  const deadline = Date.now() + FLOOD_MS;
  const flooding = () => Date.now() < deadline;
  let attacks = 0;
  const flood = Promise.all(Array.from({ length: loops }, async () => {
    while (flooding()) {
      await attack(flooding);
      attacks += 1;
      await sleep(50); // bounded: the machine is shared, the point is memory and starvation, not CPU
    }
  }));
  await sleep(1000);
  const normal = await normalRequests(fe);
  await flood;
  const { hwm } = fe.memory();
  const shown = normal.map((r) => r.error ?? `${r.status} in ${r.ms.toFixed(1)} ms`).join(', ');
  t?.diagnostic(`${what}: ${attacks} attacks, peak RSS ${(hwm / MiB).toFixed(1)} MiB, normal requests: ${shown}`);
  assert.ok(attacks > 0, `${what}: no attack ran`);
  assert.ok(hwm < PEAK_LIMIT, `${what}: peak RSS ${(hwm / MiB).toFixed(1)} MiB (${attacks} attacks)`);
  assert.deepEqual(normal.map((r) => r.status), [200, 200, 200, 200, 200], `${what}: normal requests: ${shown}`);
  const m = median(normal.map((r) => r.ms));
  assert.ok(m < LATENCY_LIMIT_MS, `${what}: normal requests took ${m.toFixed(1)} ms (median): ${shown}`);
  return { hwm, attacks, normal };
}

/** One connection: 50 streams of the HPACK cookie bomb, then wait for them or the end (3 s). */
async function hpackBomb(fe, withKey) {
  const c = await h2connect(fe.address, fe.ca).catch(() => null);
  if (!c) return;
  try {
    const auth = withKey ? [['api-token', fe.key]] : [];
    const frames = [];
    for (let i = 0; i < 50; i++) {
      frames.push(headers(2 * i + 1, Buffer.concat([
        requestBlock({ path: `/fe/v1/bomb${i}`, headers: auth }),
        literal('cookie', `c=${'v'.repeat(3990)}`, { index: true }),
        Buffer.alloc(10000, indexed(62)),
      ]), { endStream: true }));
    }
    await c.write(Buffer.concat(frames));
    await c.waitFor(() => c.closed() || c.goaway || c.frames.filter((f) => f.type === T.HEADERS || f.type === T.RST_STREAM).length >= 50, 3000);
  } finally {
    c.destroy();
  }
}

describe('issue 11 §8: peak RSS under 150 MB and normal requests within 100 ms under each flood', () => {
  /**
   * A fresh gatehouse for one flood; the raw upstream never answers paths under /hang. The normal
   * requests go to /normal/v1 (upstream lib/okchild.mjs) with a profile of their own (normalKey).
   */
  async function withGateway(options, fn) {
    const ok = spawn(process.execPath, [join(E2E_DIR, 'lib', 'okchild.mjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
    const okExited = new Promise((resolve) => ok.once('close', resolve));
    let fe;
    try {
      const { port } = await new Promise((resolve, reject) => {
        ok.stdout.setEncoding('utf8').once('data', (d) => resolve(JSON.parse(d)));
        ok.once('close', () => reject(new Error('okchild.mjs exited')));
      });
      fe = await startFrontend(options);
      fe.up.handle = (req, sock) => {
        if (!req.target.startsWith('/hang')) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      };
      const col = await fe.gh.api('POST', '/v1/collections', { name: 'normal', path: '/normal/v1', upstream: `http://127.0.0.1:${port}` });
      await fe.gh.api('POST', `/v1/collections/${col.json.id}/endpoints`, { method: 'GET', path: '/*' });
      const prof = await fe.gh.api('POST', '/v1/profiles', {
        client_id: fe.clientId, name: 'normal', auth_type: 'token', collection_ids: [col.json.id],
      });
      assert.equal(prof.status, 201, prof.text);
      fe.normalKey = prof.json.key;
      return await fn(fe);
    } finally {
      try {
        await fe?.stop();
      } finally {
        ok.stdin.end();
        await okExited;
      }
    }
  }

  test('HTTP/2 header repetition with a credential (2 × 50 streams of 10,000 cookies at a time)', (t) => withGateway({ tls: true }, async (fe) => {
    await underFlood(fe, {
      t,
      loops: 2, what: 'HPACK bomb with api-token', attack: () => hpackBomb(fe, true),
    });
    assert.equal(fe.up.requests.filter((q) => q.target.startsWith('/bomb')).length, 0, 'a bomb reached the upstream');
  }));

  test('HTTP/2 header repetition without a credential', (t) => withGateway({ tls: true }, async (fe) => {
    await underFlood(fe, {
      t,
      loops: 2, what: 'HPACK bomb without credential', attack: () => hpackBomb(fe, false),
    });
    assert.equal(fe.up.requests.filter((q) => q.target.startsWith('/bomb')).length, 0, 'a bomb reached the upstream');
  }));

  test('CONTINUATION floods (4 connections at a time, up to 4 MB of header block each)', (t) => withGateway({ tls: true }, async (fe) => {
    let ended = 0;
    let connections = 0;
    await underFlood(fe, {
      t,
      loops: 4,
      what: 'CONTINUATION flood',
      attack: async () => {
        const c = await h2connect(fe.address, fe.ca).catch(() => null);
        if (!c) return;
        connections += 1;
        try {
          await c.write(headers(1, requestBlock({ path: '/fe/v1/cont', headers: [['api-token', fe.key]] }), { endHeaders: false }));
          const piece = Buffer.concat([literal('x-c', 'c'.repeat(8000)), literal('x-d', 'd'.repeat(8000))]);
          for (let i = 0; i < 256 && !c.closed() && !c.goaway; i++) {
            if (!(await c.write(continuation(1, piece)))) break;
          }
          if (await c.waitFor(() => c.closed() || c.goaway, 3000)) ended += 1;
        } finally {
          c.destroy();
        }
      },
    });
    assert.equal(ended, connections, `${connections - ended} of ${connections} flooding connections were never ended`);
  }));

  test('rapid reset (4 connections at a time, 1,000 HEADERS + RST_STREAM pairs each)', (t) => withGateway({ tls: true }, async (fe) => {
    let connections = 0;
    const accepted = fe.up.accepted();
    await underFlood(fe, {
      t,
      loops: 4,
      what: 'rapid reset',
      attack: async () => {
        const c = await h2connect(fe.address, fe.ca).catch(() => null);
        if (!c) return;
        connections += 1;
        try {
          const pairs = [];
          for (let i = 0; i < 1000; i++) {
            pairs.push(headers(2 * i + 1, requestBlock({ path: `/fe/v1/hang/${i}`, headers: [['api-token', fe.key]] }), { endStream: true }),
              rstStream(2 * i + 1, E.CANCEL));
          }
          await c.write(Buffer.concat(pairs));
          await c.waitFor(() => c.closed() || c.goaway, 3000);
        } finally {
          c.destroy();
        }
      },
    });
    const opened = fe.up.accepted() - accepted;
    assert.ok(opened <= 5 * connections + 5, `${opened} upstream connections for ${connections} rapid-reset connections`);
  }));

  test('2,000 idle connections (gatehouse started with a soft open-file limit of 1024), /healthz up', (t) => {
    const hard = hardNofile();
    assert.ok(hard >= 4096, `the hard open-file limit (${hard}) leaves no room for 2,000 connections`);
    return withGateway({ wrap: ['prlimit', `--nofile=1024:${hard}`] }, async (fe) => {
      const holder = await holdConnections(fe.address, 2000, Math.min(hard, 8192));
      try {
        assert.equal(holder.opened, 2000, `connections accepted: ${JSON.stringify(holder)}`);
        await underFlood(fe, {
      t,
          loops: 1,
          what: '2,000 idle connections',
          attack: async () => {
            const health = await fe.gh.api('GET', '/healthz').catch((err) => ({ status: err.message }));
            assert.equal(health.status, 200, 'the admin API answers beside 2,000 idle connections');
            await sleep(200);
          },
        });
      } finally {
        await holder.stop();
      }
    });
  });

  test('50 connections each POSTing an 8 MB body without a credential', (t) => withGateway({}, async (fe) => {
    const answers = [];
    await underFlood(fe, {
      t,
      loops: 50,
      what: '50 large anonymous bodies',
      attack: async (flooding) => {
        answers.push(await anonymousUpload(fe.address, 8000000, flooding));
      },
    });
    const statuses = new Set(answers.filter((a) => a.status).map((a) => a.status));
    assert.ok([...statuses].every((s) => s === 401), `the anonymous uploads were answered ${[...statuses]}`);
  }));
});

/** The hard limit of open files of this process (/proc/self/limits). */
function hardNofile() {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const hard = line.trim().split(/\s+/)[4];
  return hard === 'unlimited' ? 1 << 20 : Number(hard);
}

/**
 * Starts lib/holdconns.mjs under prlimit with `soft` open files; resolves once it holds its
 * connections: { opened, failed, stop() } (stop ends it and resolves to { closedByServer }).
 */
async function holdConnections(address, count, soft) {
  const [host, port] = address.split(':');
  const child = spawn('prlimit', [`--nofile=${soft}:${hardNofile()}`, process.execPath, join(E2E_DIR, 'lib', 'holdconns.mjs'),
    host, port, String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const lines = [];
  const waiters = [];
  child.stdout.setEncoding('utf8').on('data', (d) => {
    out += d;
    let nl;
    while ((nl = out.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(out.slice(0, nl)));
      out = out.slice(nl + 1);
      waiters.splice(0).forEach((w) => w());
    }
  });
  const exited = new Promise((resolve) => child.once('close', resolve));
  const nextLine = (n) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the connection holder did not answer within 60 s')), 60000);
    const check = () => {
      if (lines.length >= n) {
        clearTimeout(timer);
        resolve(lines[n - 1]);
      } else {
        waiters.push(check);
      }
    };
    exited.then(() => waiters.splice(0).forEach((w) => w()));
    check();
  });
  try {
    const first = await nextLine(1);
    return {
      ...first,
      async stop() {
        child.stdin.end();
        const last = await nextLine(2).catch(() => ({}));
        await exited;
        return last;
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

/**
 * POSTs `size` bytes without a credential as fast as the gateway takes them, on a new plain
 * connection, until it answers, closes, or the flood is over. Resolves to { status, sent }.
 */
function anonymousUpload(address, size, flooding) {
  const [host, port] = address.split(':');
  const chunk = Buffer.alloc(1024 * 1024, 'z');
  return new Promise((resolve) => {
    let sent = 0;
    let text = '';
    let done = false;
    const sock = net.connect({ host, port: Number(port) });
    const finish = () => {
      if (done) return;
      done = true;
      sock.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : null, sent });
    };
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) finish();
    });
    sock.on('error', finish);
    sock.on('close', finish);
    sock.on('connect', async () => {
      sock.write(`POST /fe/v1/upload HTTP/1.1\r\nHost: fe.example\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`);
      while (!done && sent < size && flooding()) {
        const piece = chunk.subarray(0, Math.min(chunk.length, size - sent));
        sent += piece.length;
        if (!sock.write(piece)) await new Promise((r) => { sock.once('drain', r); sock.once('close', r); });
      }
      setTimeout(finish, 3000); // the whole body was sent: the answer comes, or not
    });
  });
}
