// SPDX-License-Identifier: Apache-2.0
// Issue 11, the HTTP/2 findings, written from the security review's reproducers: header lists
// without a limit (101 fields, over 64 KiB, one `cookie` repeated 10,000 times through the HPACK
// dynamic table), a CONTINUATION flood, rapid reset (streams opened and reset at once must not
// open upstream connections) and streams over the concurrency limit. node:http2 for the normal
// clients, hand-built frames (lib/h2frames.mjs) where node refuses to misbehave. The gateway speaks
// TLS with ALPN h2; its upstream is lib/rawupstream.mjs, which counts every connection it accepts
// and never answers a path under /hang. Everything on 127.0.0.1 with ephemeral ports.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';

import { MiB, startFrontend } from './lib/frontend.mjs';
import {
  continuation, E, h2connect, headers, indexed, literal, requestBlock, rstStream, SETTINGS, T,
} from './lib/h2frames.mjs';
import { gatehouseBin, haveGatehouse } from './lib/run.mjs';
import { sleep } from './lib/server.mjs';

// No skipping: a run without the binary must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

/** One request on a node:http2 session: { status, text, json } or { error } (a reset stream, ...). */
function h2request(session, fields) {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': '/fe/v1/x', ...fields });
    let text = '';
    let status;
    stream.on('response', (h) => { status = h[':status']; });
    stream.on('data', (d) => { text += d; });
    stream.on('end', () => {
      let json;
      try {
        json = JSON.parse(text);
      } catch { /* not JSON */ }
      resolve({ status, text, json });
    });
    stream.on('error', (err) => resolve({ error: err.code ?? err.message, rstCode: stream.rstCode, status }));
    stream.on('close', () => {
      if (stream.rstCode && status === undefined) resolve({ error: 'reset', rstCode: stream.rstCode });
    });
    stream.end();
  });
}

/** A refused request: a stream reset, or 431 headers_too_large. */
function assertRefused(r, what) {
  if (r.error !== undefined && r.status === undefined) return; // the stream (or the connection) was reset
  assert.equal(r.status, 431, `${what}: expected a reset stream or 431, got ${JSON.stringify(r).slice(0, 300)}`);
  assert.equal(r.json?.error, 'headers_too_large', `${what}: ${r.text.slice(0, 300)}`);
}

describe('issue 11: HTTP/2 header lists, CONTINUATION, rapid reset and concurrent streams', () => {
  let fe;
  let session;
  const growth = () => fe.memory().hwm - fe.baseline;

  before(async () => {
    fe = await startFrontend({ tls: true, threads: 1 });
    fe.up.handle = (req, sock) => {
      if (!req.target.startsWith('/hang')) sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    };
    session = http2.connect(`https://${fe.address}`, { ca: fe.ca, maxHeaderListPairs: 20000, maxSendHeaderBlockLength: 1 << 24 });
    session.on('error', () => {});
    assert.equal((await h2request(session, { 'api-token': fe.key })).status, 200, 'h2 answers');
  });
  after(async () => {
    session?.destroy();
    await fe?.stop();
  });

  /** Resets the peak RSS (VmHWM) to the current RSS and remembers it. */
  function markMemory() {
    fe.resetPeak();
    fe.baseline = fe.memory().rss;
  }

  /** A fresh node:http2 session (a refusal may end the shared one's connection). */
  async function fresh() {
    session?.destroy();
    session = http2.connect(`https://${fe.address}`, { ca: fe.ca, maxHeaderListPairs: 20000, maxSendHeaderBlockLength: 1 << 24 });
    session.on('error', () => {});
  }

  test('101 header fields → refused (reset or 431); 95 pass', async () => {
    const fields = (n) => Object.fromEntries([['api-token', fe.key], ...Array.from({ length: n - 1 }, (_, i) => [`x-field-${i}`, `${i}`])]);
    const ok = await h2request(session, fields(95));
    assert.equal(ok.status, 200, JSON.stringify(ok).slice(0, 300));
    const before = fe.up.requests.length;
    assertRefused(await h2request(session, fields(101)), '101 fields');
    assert.equal(fe.up.requests.length, before, 'nothing reached the upstream');
  });

  test('a header list over 64 KiB → refused, even of fields that never go upstream; 40 KB passes', async () => {
    await fresh();
    const pads = (size) => Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`x_pad_${i}`, 'p'.repeat(size)]));
    const ok = await h2request(session, { 'api-token': fe.key, ...pads(4000) });
    assert.equal(ok.status, 200, JSON.stringify(ok).slice(0, 300));
    const before = fe.up.requests.length;
    assertRefused(await h2request(session, { 'api-token': fe.key, ...pads(7000) }), '70 KB of fields');
    assert.equal(fe.up.requests.length, before, 'nothing reached the upstream');
  });

  test('cookie repeated 10,000 times by HPACK indexing (a 14 KB request, 40 MB decoded) → refused, RSS stays low', async () => {
    const c = await h2connect(fe.address, fe.ca);
    try {
      markMemory();
      const before = fe.up.requests.length;
      const block = Buffer.concat([
        requestBlock({ path: '/fe/v1/bomb', headers: [['api-token', fe.key]] }),
        literal('cookie', `c=${'v'.repeat(3990)}`, { index: true }), // 4,030 bytes in the table: index 62
        Buffer.alloc(10000, indexed(62)), // ten thousand one-byte references to it
      ]);
      assert.ok(block.length < 16384, 'one frame');
      await c.write(headers(1, block, { endStream: true }));
      const ended = await c.waitFor(() => c.closed() || c.goaway || c.of(1).some((f) => f.type === T.HEADERS || f.type === T.RST_STREAM), 10000);
      assert.ok(ended, 'no answer to the bomb within 10 s');
      assert.ok(!c.ok200(1), 'the bomb was answered 200');
      await sleep(100);
      assert.equal(fe.up.requests.length, before, 'the bomb reached the upstream');
      assert.ok(growth() < 32 * MiB, `peak RSS grew by ${(growth() / MiB).toFixed(1)} MiB for one 14 KB request`);
    } finally {
      c.destroy();
    }
  });

  test('a CONTINUATION flood (16 MB of header block, END_HEADERS never sent) ends the connection; RSS stays low', async () => {
    const c = await h2connect(fe.address, fe.ca);
    try {
      markMemory();
      const received = fe.up.receivedBytes();
      await c.write(headers(1, requestBlock({ path: '/fe/v1/cont', headers: [['api-token', fe.key]] }), { endHeaders: false }));
      const piece = Buffer.concat([literal('x-c', 'c'.repeat(8000)), literal('x-d', 'd'.repeat(8000))]);
      let sent = 0;
      for (; sent < 1000 && !c.closed() && !c.goaway; sent++) {
        if (!(await c.write(continuation(1, piece)))) break;
      }
      const ended = await c.waitFor(() => c.closed() || c.goaway, 10000);
      assert.ok(ended, `the connection survived ${sent} CONTINUATION frames (${(sent * piece.length / MiB).toFixed(1)} MiB)`);
      assert.ok(growth() < 32 * MiB, `peak RSS grew by ${(growth() / MiB).toFixed(1)} MiB`);
      assert.equal(fe.up.receivedBytes(), received, 'nothing reached the upstream');
    } finally {
      c.destroy();
    }
  });

  test('rapid reset: 1,000 HEADERS + RST_STREAM pairs open (almost) no upstream connection, and GOAWAY ends it', async () => {
    const c = await h2connect(fe.address, fe.ca);
    try {
      await c.waitFor(() => c.serverSettings.size > 0 || c.frames.some((f) => f.type === T.SETTINGS), 5000);
      const accepted = fe.up.accepted();
      const requests = fe.up.requests.length;
      const pairs = [];
      for (let i = 0; i < 1000; i++) {
        const id = 2 * i + 1;
        pairs.push(headers(id, requestBlock({ path: `/fe/v1/hang/rr${i}`, headers: [['api-token', fe.key]] }), { endStream: true }),
          rstStream(id, E.CANCEL));
      }
      await c.write(Buffer.concat(pairs));
      const ended = await c.waitFor(() => c.goaway || c.closed(), 10000);
      await sleep(300); // connections the gateway might still open for reset streams
      const opened = fe.up.accepted() - accepted;
      const forwarded = fe.up.requests.length - requests;
      assert.ok(opened <= 5, `${opened} upstream connections for 1,000 reset streams (${forwarded} requests)`);
      assert.ok(forwarded <= 5, `${forwarded} requests of reset streams reached the upstream`);
      assert.ok(ended, 'neither GOAWAY nor a close after 1,000 resets');
    } finally {
      c.destroy();
    }
  });

  test('101 concurrent streams: the server allows 100, the 101st is refused, the first 100 are not reset', async () => {
    const c = await h2connect(fe.address, fe.ca);
    try {
      await c.waitFor(() => c.serverSettings.size > 0, 5000);
      assert.equal(c.serverSettings.get(SETTINGS.MAX_CONCURRENT_STREAMS), 100, 'SETTINGS_MAX_CONCURRENT_STREAMS');
      const frames = [];
      for (let i = 0; i < 101; i++) {
        frames.push(headers(2 * i + 1, requestBlock({ path: `/fe/v1/hang/s${i}`, headers: [['api-token', fe.key]] }), { endStream: true }));
      }
      await c.write(Buffer.concat(frames));
      // RFC 9113 §5.1.2: a stream error REFUSED_STREAM or PROTOCOL_ERROR; nghttp2 makes it a
      // connection error (GOAWAY PROTOCOL_ERROR) whose last stream leaves the 101st out
      const refusedByGoaway = () => c.goaway !== null && c.goaway.lastStream < 201;
      const refused = await c.waitFor(() => c.resetCode(201) !== null || refusedByGoaway(), 5000);
      assert.ok(refused, `the 101st stream (201) was not refused: GOAWAY ${JSON.stringify(c.goaway)}, closed ${c.closed()}`);
      assert.ok(refusedByGoaway() || c.resetCode(201) === E.REFUSED_STREAM || c.resetCode(201) === E.PROTOCOL_ERROR,
        `stream 201: RST_STREAM ${c.resetCode(201)}, GOAWAY ${JSON.stringify(c.goaway)}`);
      const resetEarly = Array.from({ length: 100 }, (_, i) => 2 * i + 1).filter((id) => c.resetCode(id) !== null);
      assert.deepEqual(resetEarly, [], 'streams within the limit were reset');
      if (c.goaway) assert.ok(c.goaway.lastStream >= 199, `GOAWAY dropped streams within the limit: ${JSON.stringify(c.goaway)}`);
    } finally {
      c.destroy();
    }
  });

  test('after all this the gateway still answers HTTP/2', async () => {
    await fresh();
    const r = await h2request(session, { 'api-token': fe.key });
    assert.equal(r.status, 200, JSON.stringify(r).slice(0, 300));
  });
});
