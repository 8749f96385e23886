// SPDX-License-Identifier: Apache-2.0
// Issue 11, "Framing" and the limits of the front end over HTTP/1.1, written from the security
// review's reproducers: each malformed request over a raw socket (node:net, so no HTTP library
// fixes it up) must be refused with its status and the gateway's JSON error, the connection must
// be closed after the answer, and the upstream (lib/rawupstream.mjs, which keeps every byte it
// receives) must get nothing of it: neither the request nor the second one smuggled behind it.
// Each has its valid twin, which the upstream answers with 200. Then the limits (header bytes and
// count, target, body), the head, idle and body timeouts, and the credential decided on the head,
// before any body byte is read. Everything on 127.0.0.1 with ephemeral ports.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  connectRaw, exchange, expectRefusal, startFrontend,
} from './lib/frontend.mjs';
import { gatehouseBin, haveGatehouse } from './lib/run.mjs';
import { sleep, waitUntil } from './lib/server.mjs';

// No skipping: a run without the binary must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const SMUGGLED = 'GET /fe/v1/smuggled HTTP/1.1\r\nHost: fe.example\r\n\r\n';

/** A request head: line, then fields (each "Name: value" or a raw string), CRLF unless told. */
function head(line, fields, eol = '\r\n') {
  return `${line}${eol}${fields.join(eol)}${eol}${eol}`;
}

describe('issue 11: strict HTTP/1.1 framing (RFC 9112): 400 and close, nothing reaches the upstream', () => {
  let fe;
  before(async () => {
    fe = await startFrontend();
  });
  after(async () => {
    await fe?.stop();
  });

  const auth = () => `api-token: ${fe.key}`;

  /** Sends bytes; asserts the refusal, the close, and that the upstream received nothing. */
  async function refused(bytes, status, code, what) {
    const requests = fe.up.requests.length;
    const received = fe.up.receivedBytes();
    const r = await exchange(fe.address, bytes);
    expectRefusal(r, status, code, what);
    assert.ok(r.closed, `${what}: the connection stayed open after the ${r.first.status}`);
    assert.equal(r.responses.length, 1, `${what}: one answer only: ${JSON.stringify(r.text.slice(0, 600))}`);
    await sleep(100); // what the gateway might still forward would be on its way
    assert.equal(fe.up.requests.length, requests, `${what}: a request reached the upstream`);
    assert.equal(fe.up.receivedBytes(), received, `${what}: bytes reached the upstream`);
    assert.ok(!fe.up.raw().includes('smuggled'), `${what}: the smuggled request reached the upstream`);
  }

  /** Sends bytes; asserts 200 from the upstream for `path` (the valid twin); returns what it got. */
  async function accepted(bytes, path, what) {
    const requests = fe.up.requests.length;
    const r = await exchange(fe.address, bytes, { closeWaitMs: 50 });
    assert.equal(r.first?.status, 200, `${what}: the valid twin: ${JSON.stringify(r.text.slice(0, 400))}`);
    assert.equal(r.first.body.toString(), 'ok', what);
    assert.equal(fe.up.requests.length, requests + 1, `${what}: one request upstream`);
    const seen = fe.up.requests.at(-1);
    assert.equal(seen.target, `/${path}`, what);
    return seen;
  }

  test('Content-Length with Transfer-Encoding → 400; chunked alone is the twin', async () => {
    const seen = await accepted(head('POST /fe/v1/te HTTP/1.1', ['Host: fe.example', auth(), 'Connection: close',
      'Transfer-Encoding: chunked']) + '5\r\nhello\r\n0\r\n\r\n', 'te', 'chunked');
    await refused(head('POST /fe/v1/cl-te HTTP/1.1', ['Host: fe.example', auth(), 'Content-Length: 6',
      'Transfer-Encoding: chunked']) + `0\r\n\r\n${SMUGGLED}`, 400, 'bad_request', 'CL+TE');
    await refused(head('POST /fe/v1/te-cl HTTP/1.1', ['Host: fe.example', auth(), 'Transfer-Encoding: chunked',
      'Content-Length: 50']) + `0\r\n\r\n${SMUGGLED}`, 400, 'bad_request', 'TE+CL');
    assert.equal(seen.body.toString(), 'hello');
  });

  test('two different Content-Lengths → 400; two identical ones → 400; one is the twin', async () => {
    const seen = await accepted(head('POST /fe/v1/cl1 HTTP/1.1', ['Host: fe.example', auth(), 'Connection: close',
      'Content-Length: 5']) + 'hello', 'cl1', 'one CL');
    await refused(head('POST /fe/v1/cl2 HTTP/1.1', ['Host: fe.example', auth(), 'Content-Length: 5',
      'Content-Length: 50']) + `hello${SMUGGLED}`, 400, 'bad_request', 'CL 5 and CL 50');
    await refused(head('POST /fe/v1/cl2 HTTP/1.1', ['Host: fe.example', auth(), 'Content-Length: 5',
      'Content-Length: 5']) + 'hello', 400, 'bad_request', 'CL 5 twice');
    await refused(head('POST /fe/v1/cl2 HTTP/1.1', ['Host: fe.example', auth(), 'Content-Length: 5, 5'])
      + 'hello', 400, 'bad_request', 'CL "5, 5"');
    assert.equal(seen.body.toString(), 'hello');
  });

  test('a bare LF after the request line or between fields → 400; CRLF is the twin', async () => {
    await accepted(head('GET /fe/v1/crlf HTTP/1.1', ['Host: fe.example', auth(), 'X-A: 1', 'Connection: close']),
      'crlf', 'CRLF');
    await refused(`GET /fe/v1/lf HTTP/1.1\nHost: fe.example\r\n${auth()}\r\n\r\n`, 400, 'bad_request', 'LF after the line');
    await refused(`GET /fe/v1/lf HTTP/1.1\r\nHost: fe.example\n${auth()}\r\nX-A: 1\r\n\r\n`, 400, 'bad_request', 'LF between fields');
    await refused(head('GET /fe/v1/lf HTTP/1.1', ['Host: fe.example', auth()], '\n'), 400, 'bad_request', 'LF everywhere');
  });

  test('a bare LF in a chunk-size line aborts the body and closes; the request behind it never reaches the upstream', async () => {
    await accepted(head('POST /fe/v1/chunk-crlf HTTP/1.1', ['Host: fe.example', auth(), 'Connection: close',
      'Transfer-Encoding: chunked']) + '5\r\nhello\r\n0\r\n\r\n', 'chunk-crlf', 'chunk line with CRLF');
    const before = fe.up.requests.length;
    const r = await exchange(fe.address, head('POST /fe/v1/chunk-lf HTTP/1.1', ['Host: fe.example', auth(),
      'Transfer-Encoding: chunked']) + `5\nhello\r\n0\r\n\r\n${SMUGGLED}`);
    assert.ok(r.closed, `the connection stayed open: ${JSON.stringify(r.text.slice(0, 400))}`);
    if (r.first) expectRefusal(r, 400, 'bad_request', 'bare LF in a chunk line'); // before any upstream answer
    assert.ok(r.responses.length <= 1, `one answer at most: ${JSON.stringify(r.text.slice(0, 600))}`);
    await sleep(100);
    assert.ok(!fe.up.raw().includes('smuggled'), 'the smuggled request reached the upstream');
    assert.ok(!fe.up.requests.slice(before).some((q) => q.target.includes('smuggled')), 'the smuggled request was forwarded');
  });

  test('an obs-fold line → 400; the same value on one line is the twin', async () => {
    const seen = await accepted(head('GET /fe/v1/fold HTTP/1.1', ['Host: fe.example', auth(), 'X-Long: first second',
      'Connection: close']), 'fold', 'one line');
    await refused(head('GET /fe/v1/fold HTTP/1.1', ['Host: fe.example', auth(), 'X-Long: first', ' second']),
      400, 'bad_request', 'obs-fold (space)');
    await refused(head('GET /fe/v1/fold HTTP/1.1', ['Host: fe.example', auth(), 'X-Long: first', '\tsecond']),
      400, 'bad_request', 'obs-fold (tab)');
    assert.ok(seen.headers.some(([n, v]) => n.toLowerCase() === 'x-long' && v === 'first second'));
  });

  test('HTTP/1.1 without Host, or with two → 400; one Host is the twin', async () => {
    await accepted(head('GET /fe/v1/host HTTP/1.1', ['Host: fe.example', auth(), 'Connection: close']), 'host', 'one Host');
    await accepted(head('GET /fe/v1/host10 HTTP/1.0', [auth()]), 'host10', 'HTTP/1.0 needs no Host');
    await refused(head('GET /fe/v1/host HTTP/1.1', [auth()]), 400, 'bad_request', 'no Host');
    await refused(head('GET /fe/v1/host HTTP/1.1', ['Host: fe.example', auth(), 'Host: other.example']),
      400, 'bad_request', 'two Hosts');
    await refused(head('GET /fe/v1/host HTTP/1.1', ['Host: fe.example', auth(), 'Host: fe.example']),
      400, 'bad_request', 'the same Host twice');
  });

  test('valid requests pipelined on one kept-alive connection are all answered, in order (must not regress)', async () => {
    const before = fe.up.requests.length;
    const r = await exchange(fe.address, [
      head('POST /fe/v1/p1 HTTP/1.1', ['Host: fe.example', auth(), 'Content-Length: 3']), 'one',
      head('POST /fe/v1/p2 HTTP/1.1', ['Host: fe.example', auth(), 'Transfer-Encoding: chunked']), '3\r\ntwo\r\n0\r\n\r\n',
      head('GET /fe/v1/p3 HTTP/1.1', ['Host: fe.example', auth(), 'Connection: close']),
    ].join(''), { closeWaitMs: 3000 });
    assert.deepEqual(r.responses.map((x) => x.status), [200, 200, 200], JSON.stringify(r.text.slice(0, 600)));
    assert.ok(r.closed, 'Connection: close is honoured after the third');
    assert.deepEqual(fe.up.requests.slice(before).map((q) => [q.target, q.body.toString()]), [['/p1', 'one'], ['/p2', 'two'], ['/p3', '']]);
  });

  test('Transfer-Encoding other than chunked alone → 501 not_implemented; chunked is the twin', async () => {
    await accepted(head('POST /fe/v1/gz HTTP/1.1', ['Host: fe.example', auth(), 'Transfer-Encoding: chunked',
      'Connection: close']) + '0\r\n\r\n', 'gz', 'chunked');
    await refused(head('POST /fe/v1/gz HTTP/1.1', ['Host: fe.example', auth(), 'Transfer-Encoding: gzip, chunked'])
      + `0\r\n\r\n${SMUGGLED}`, 501, 'not_implemented', 'gzip, chunked');
  });

  test('HTTP/1.2 → 505 http_version_not_supported; HTTP/1.1 is the twin', async () => {
    await accepted(head('GET /fe/v1/v11 HTTP/1.1', ['Host: fe.example', auth(), 'Connection: close']), 'v11', 'HTTP/1.1');
    await refused(head('GET /fe/v1/v12 HTTP/1.2', ['Host: fe.example', auth()]), 505, 'http_version_not_supported', 'HTTP/1.2');
  });
});

/** n fields "X_Pad_i: aaa..." of `size` bytes of value each (names with "_" never go upstream). */
function pads(n, size, name = 'X_Pad') {
  return Array.from({ length: n }, (_, i) => `${name}_${i}: ${'a'.repeat(size)}`);
}

/** n - 2 fields "X-Field-i: i" and Host and api-token: n fields in all. */
function fieldsInAll(n, key) {
  return ['Host: fe.example', `api-token: ${key}`, ...Array.from({ length: n - 2 }, (_, i) => `X-Field-${i}: ${i}`)];
}

describe('issue 11: the default limits (header bytes 64 KiB, 100 fields, target 8 KiB) and --max-body', () => {
  let fe;
  before(async () => {
    fe = await startFrontend({ flags: ['--max-body', '100000'] });
  });
  after(async () => {
    await fe?.stop();
  });

  const get = (path, fields) => exchange(fe.address, head(`GET ${path} HTTP/1.1`, fields), { closeWaitMs: 0 });

  test('a head over 64 KiB → 431 headers_too_large (its fields dropped before the upstream or not); 40 KiB passes', async () => {
    let r = await get('/fe/v1/wide', ['Host: fe.example', `api-token: ${fe.key}`, ...pads(5, 8000)]);
    assert.equal(r.first?.status, 200, r.text.slice(0, 300));
    const before = fe.up.requests.length;
    r = await get('/fe/v1/wide', ['Host: fe.example', `api-token: ${fe.key}`, ...pads(9, 8000)]);
    expectRefusal(r, 431, 'headers_too_large', '72 KB of fields');
    assert.equal(fe.up.requests.length, before, 'nothing reached the upstream');
  });

  test('101 header fields → 431 headers_too_large; 100 pass', async () => {
    let r = await get('/fe/v1/many', fieldsInAll(100, fe.key));
    assert.equal(r.first?.status, 200, r.text.slice(0, 300));
    const before = fe.up.requests.length;
    r = await get('/fe/v1/many', fieldsInAll(101, fe.key));
    expectRefusal(r, 431, 'headers_too_large', '101 fields');
    assert.equal(fe.up.requests.length, before, 'nothing reached the upstream');
  });

  test('a target over 8 KiB → 414 uri_too_long; 8000 bytes pass', async () => {
    const target = (n) => `/fe/v1/${'t'.repeat(n - 7)}`;
    let r = await get(target(8000), ['Host: fe.example', `api-token: ${fe.key}`]);
    assert.equal(r.first?.status, 200, r.text.slice(0, 300));
    assert.equal(fe.up.requests.at(-1).target.length, 8000 - 6);
    const before = fe.up.requests.length;
    r = await get(target(8300), ['Host: fe.example', `api-token: ${fe.key}`]);
    expectRefusal(r, 414, 'uri_too_long', '8300-byte target');
    assert.equal(fe.up.requests.length, before, 'nothing reached the upstream');
  });

  test('414, 501 and 505 are counted under their own codes in gatehouse_refusals_total, not as "error"', async () => {
    const count = async (code) => {
      const r = await fe.gh.api('GET', '/metrics');
      assert.equal(r.status, 200);
      const m = r.text.match(new RegExp(`^gatehouse_refusals_total\\{code="${code}"\\} (\\d+)$`, 'm'));
      assert.ok(m, `no gatehouse_refusals_total{code="${code}"} in /metrics`);
      return Number(m[1]);
    };
    const codes = ['uri_too_long', 'not_implemented', 'http_version_not_supported', 'error'];
    const before = Object.fromEntries(await Promise.all(codes.map(async (c) => [c, await count(c)])));
    const auth = () => `api-token: ${fe.key}`;
    expectRefusal(await get(`/fe/v1/${'t'.repeat(8300)}`, ['Host: fe.example', auth()]), 414, 'uri_too_long');
    expectRefusal(await exchange(fe.address, head('POST /fe/v1/te HTTP/1.1', ['Host: fe.example', auth(),
      'Transfer-Encoding: gzip, chunked']) + '0\r\n\r\n'), 501, 'not_implemented');
    expectRefusal(await exchange(fe.address, head('GET /fe/v1/v12 HTTP/1.2', ['Host: fe.example', auth()])),
      505, 'http_version_not_supported');
    await waitUntil(async () => (await count('http_version_not_supported')) === before.http_version_not_supported + 1,
      { what: 'the 505 counted' });
    assert.equal(await count('uri_too_long'), before.uri_too_long + 1);
    assert.equal(await count('not_implemented'), before.not_implemented + 1);
    assert.equal(await count('error'), before.error, 'none of them counted as "error"');
  });

  test('a body over --max-body → 413 payload_too_large (Content-Length or chunked); at the limit it passes', async () => {
    const fields = ['Host: fe.example', `api-token: ${fe.key}`];
    let r = await exchange(fe.address, head('POST /fe/v1/body HTTP/1.1', [...fields, 'Content-Length: 100000'])
      + 'b'.repeat(100000), { closeWaitMs: 0 });
    assert.equal(r.first?.status, 200, r.text.slice(0, 300));
    assert.equal(fe.up.requests.at(-1).body.length, 100000);
    const before = fe.up.requests.length;
    r = await exchange(fe.address, head('POST /fe/v1/body HTTP/1.1', [...fields, 'Content-Length: 100001'])
      + 'b'.repeat(100001));
    expectRefusal(r, 413, 'payload_too_large', 'Content-Length 100001');
    r = await exchange(fe.address, [head('POST /fe/v1/body HTTP/1.1', [...fields, 'Transfer-Encoding: chunked']),
      ...Array.from({ length: 12 }, () => `2710\r\n${'c'.repeat(10000)}\r\n`), '0\r\n\r\n']);
    assert.ok(r.closed, 'the connection is closed after a chunked body over the limit');
    if (r.first) expectRefusal(r, 413, 'payload_too_large', 'chunked 120000 bytes');
    await sleep(100);
    assert.equal(fe.up.requests.length, before, 'no body over the limit reached the upstream whole');
  });
});

describe('issue 11: the credential is decided on the head, before any body byte; allowed bodies stream', () => {
  let fe;
  before(async () => {
    fe = await startFrontend();
  });
  after(async () => {
    await fe?.stop();
  });

  test('an anonymous POST of 8,000,000 bytes with Expect: 100-continue gets 401 at once, without 100 Continue, body unsent', async () => {
    const c = await connectRaw(fe.address);
    try {
      await c.write(head('POST /fe/v1/upload HTTP/1.1', ['Host: fe.example', 'Content-Length: 8000000',
        'Expect: 100-continue', 'Content-Type: application/octet-stream']));
      const answered = await c.waitFor(1, 5000);
      const [first] = c.responses();
      assert.ok(answered, `no answer to the head alone within 5 s: ${JSON.stringify(c.text().slice(0, 300))}`);
      assert.equal(first.status, 401, `the first answer: ${JSON.stringify(c.text().slice(0, 300))}`);
      assert.equal(first.json?.error, 'unauthorized', c.text().slice(0, 300));
      assert.doesNotMatch(c.text(), /^HTTP\/1\.1 100/m, 'no 100 Continue for a request that is refused');
      assert.equal(fe.up.receivedBytes(), 0, 'nothing reached the upstream');
    } finally {
      c.destroy();
    }
  });

  test('with a valid api-token: 100 Continue, then the body goes through and the upstream answers', async () => {
    const c = await connectRaw(fe.address);
    const body = Buffer.alloc(1000000, 'u');
    try {
      await c.write(head('POST /fe/v1/upload HTTP/1.1', ['Host: fe.example', `api-token: ${fe.key}`,
        'Content-Length: 1000000', 'Expect: 100-continue']));
      assert.ok(await c.waitFor(1, 5000), `no 100 Continue within 5 s: ${JSON.stringify(c.text().slice(0, 300))}`);
      assert.match(c.text(), /^HTTP\/1\.1 100 Continue\r\n\r\n/, 'the first answer is 100 Continue');
      await c.write(body);
      assert.ok(await c.waitFor(2, 10000), `no answer after the body: ${JSON.stringify(c.text().slice(0, 300))}`);
      assert.equal(c.responses()[1].status, 200, c.text().slice(0, 300));
      const seen = fe.up.requests.at(-1);
      assert.equal(seen.target, '/upload');
      assert.ok(seen.body.equals(body), 'the upstream received the body whole');
      assert.ok(!seen.headers.some(([n]) => n.toLowerCase() === 'expect'), 'Expect stays behind');
    } finally {
      c.destroy();
    }
  });

  test('a large allowed upload streams: the upstream sees its first bytes before the client has sent the rest', async () => {
    const total = 4 * 1024 * 1024;
    const c = await connectRaw(fe.address);
    try {
      const before = fe.up.receivedBytes();
      await c.write(head('POST /fe/v1/stream HTTP/1.1', ['Host: fe.example', `api-token: ${fe.key}`,
        `Content-Length: ${total}`]));
      await c.write(Buffer.alloc(256 * 1024, 's'));
      // the rest is sent only once the upstream has the head and body bytes: a gateway that buffers
      // the whole body before forwarding never gets there
      await waitUntil(() => fe.up.raw().includes('POST /stream ') && fe.up.receivedBytes() - before > 64 * 1024,
        { timeoutMs: 5000, what: 'the upstream to receive the head and the first body bytes before the rest is sent' });
      assert.equal(fe.up.requests.filter((q) => q.target === '/stream').length, 0, 'not complete yet upstream');
      await c.write(Buffer.alloc(total - 256 * 1024, 's'));
      assert.ok(await c.waitFor(1, 10000), `no answer: ${JSON.stringify(c.text().slice(0, 300))}`);
      assert.equal(c.responses()[0].status, 200, c.text().slice(0, 300));
      assert.equal(fe.up.requests.at(-1).body.length, total);
    } finally {
      c.destroy();
    }
  });
});

describe('issue 11: limits and timeouts set by flags (HTTP/1.1)', () => {
  let fe;
  before(async () => {
    fe = await startFrontend({
      flags: ['--max-header-bytes', '4096', '--max-headers', '20', '--head-timeout-ms', '600',
        '--idle-timeout-ms', '800', '--body-timeout-ms', '700'],
    });
  });
  after(async () => {
    await fe?.stop();
  });

  const auth = () => `api-token: ${fe.key}`;

  test('--max-header-bytes 4096: a 5 KB head → 431, a 3 KB one passes', async () => {
    let r = await exchange(fe.address, head('GET /fe/v1/h HTTP/1.1', ['Host: fe.example', auth(), ...pads(3, 1000)]), { closeWaitMs: 0 });
    assert.equal(r.first?.status, 200, r.text.slice(0, 300));
    r = await exchange(fe.address, head('GET /fe/v1/h HTTP/1.1', ['Host: fe.example', auth(), ...pads(5, 1000)]), { closeWaitMs: 0 });
    expectRefusal(r, 431, 'headers_too_large', '5 KB head');
  });

  test('--max-headers 20: 21 fields → 431, 20 pass', async () => {
    let r = await exchange(fe.address, head('GET /fe/v1/n HTTP/1.1', fieldsInAll(20, fe.key)), { closeWaitMs: 0 });
    assert.equal(r.first?.status, 200, r.text.slice(0, 300));
    r = await exchange(fe.address, head('GET /fe/v1/n HTTP/1.1', fieldsInAll(21, fe.key)), { closeWaitMs: 0 });
    expectRefusal(r, 431, 'headers_too_large', '21 fields');
  });

  test('--head-timeout-ms: an unfinished head → 408 request_timeout and close; a head dribbled byte by byte too', async () => {
    const before = fe.up.receivedBytes();
    let r = await exchange(fe.address, `GET /fe/v1/slow HTTP/1.1\r\nHost: fe.example\r\n${auth()}\r\n`, { timeoutMs: 5000 });
    assert.ok(r.closed, `still open after 5 s: ${JSON.stringify(r.text)}`);
    expectRefusal(r, 408, 'request_timeout', 'unfinished head');
    // slowloris: one byte every 100 ms, never ending; the head timeout counts from the first byte
    const dribble = ['GET /fe/v1/slow HTTP/1.1\r\nHost: fe.example\r\nX-Slow: ',
      ...Array.from({ length: 60 }, () => [{ delayMs: 100 }, 'a']).flat()];
    r = await exchange(fe.address, dribble, { timeoutMs: 8000 });
    assert.ok(r.closed, `a head that never ends stayed open for ${r.closedAfterMs ?? '8000+'} ms`);
    assert.ok(r.closedAfterMs < 5000, `closed only after ${r.closedAfterMs} ms of dribbling`);
    expectRefusal(r, 408, 'request_timeout', 'dribbled head');
    assert.equal(fe.up.receivedBytes(), before, 'nothing reached the upstream');
  });

  test('--idle-timeout-ms: a kept-alive connection with nothing to do is closed', async () => {
    const c = await connectRaw(fe.address);
    try {
      await c.write(head('GET /fe/v1/idle HTTP/1.1', ['Host: fe.example', auth()]));
      assert.ok(await c.waitFor(1, 5000), 'an answer');
      assert.equal(c.responses()[0].status, 200);
      assert.ok(await c.waitClosed(5000), 'the idle connection was still open 5 s after its answer');
      assert.equal(c.responses().length, 1, `nothing but the answer: ${JSON.stringify(c.text().slice(0, 400))}`);
    } finally {
      c.destroy();
    }
  });

  test('--body-timeout-ms measures progress: a body of 1 byte every 200 ms for 4 s completes with 200', async () => {
    const parts = [head('POST /fe/v1/trickle HTTP/1.1', ['Host: fe.example', auth(), 'Content-Length: 20'])];
    for (let i = 0; i < 20; i++) parts.push({ delayMs: 200 }, String.fromCharCode(97 + i));
    const r = await exchange(fe.address, parts, { closeWaitMs: 0, timeoutMs: 15000 });
    assert.equal(r.first?.status, 200, `a steady slow upload was cut: ${JSON.stringify(r.text.slice(0, 300))}`);
    assert.equal(fe.up.requests.at(-1).body.toString(), 'abcdefghijklmnopqrst');
  });

  test('--body-timeout-ms: a body that stops → 408 request_timeout and close; the upstream never gets it whole', async () => {
    const before = fe.up.requests.length;
    const r = await exchange(fe.address, head('POST /fe/v1/stall HTTP/1.1', ['Host: fe.example', auth(),
      'Content-Length: 20']) + 'abcde', { timeoutMs: 6000 });
    assert.ok(r.closed, `a stalled body kept its connection: ${JSON.stringify(r.text.slice(0, 300))}`);
    expectRefusal(r, 408, 'request_timeout', 'stalled body'); // the upstream had not answered: 408 is still possible
    assert.equal(fe.up.requests.length, before, 'no complete request upstream');
  });
});
