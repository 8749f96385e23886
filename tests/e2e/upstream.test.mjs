// SPDX-License-Identifier: Apache-2.0
// The gateway's upstream exchange (src/gateway/proxy.c, upstream.c, src/http/h1parse.c) end to end,
// against a raw TCP upstream (lib/rawupstream.mjs) whose answers are exact bytes: framing by
// chunks, length and close; 1xx; answers the gateway must refuse (SPEC §5: 502 bad_gateway);
// hop-by-hop headers both ways; keep-alive pools, stale connections and the one retry; timeouts;
// and backpressure from a slow client. The gateway runs with one worker thread, so there is one
// pool and "which upstream connection carried this request" is a fair question.

import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { stopClean } from './lib/proofs-http.mjs';
import { startRawUpstream } from './lib/rawupstream.mjs';
import { gatehouseBin, haveGatehouse } from './lib/run.mjs';
import { sleep, startServer, waitUntil } from './lib/server.mjs';

// No skipping: a run without the binary must fail, not pass.
if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const GATEWAY_LISTENING = /^(\{.*"msg":"gateway listening".*\})\r?\n/m;
const MiB = 1 << 20;

/** An answer with a Content-Length, keep-alive. */
const ok = (body = 'ok', extra = '') => `HTTP/1.1 200 OK\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

/** Writes the pieces one by one with a pause between, so the gateway reads them separately. */
async function writeSlowly(sock, pieces, ms = 15) {
  for (const p of pieces) {
    if (sock.destroyed) return;
    sock.write(p);
    await sleep(ms);
  }
}

describe('gateway upstream exchange against a raw TCP upstream', () => {
  let gh;
  let up;
  let key;
  let clientId;

  async function create(path, body) {
    const r = await gh.api('POST', path, body);
    assert.equal(r.status, 201, `POST ${path}: ${r.text}`);
    return r.json;
  }

  /**
   * One request through the gateway with node:http (raw headers, and it tells a cut body from a
   * whole one). opts: method, headers (object or [name, value] pairs), noKey (no api-token
   * header), body (string or array of
   * strings, written as chunks), expectContinue (sends the body on 100 Continue), pauseMs (reads
   * nothing that long after the head).
   * Resolves to { status, headers, rawHeaders, body, text, json, requestId, complete, ms }.
   */
  function call(path, opts = {}) {
    const started = Date.now();
    const mine = opts.noKey ? [] : [['api-token', key]]; // noKey: the test sends its own credential
    // node:http writes an array of fields as given, without a Host of its own: HTTP/1.1 needs one
    const host = Array.isArray(opts.headers) && !opts.headers.some(([n]) => n.toLowerCase() === 'host')
      ? [['host', new URL(gh.gw).host]] : [];
    const headers = Array.isArray(opts.headers) ? [...host, ...mine, ...opts.headers]
      : { ...Object.fromEntries(mine), ...(opts.headers ?? {}) };
    return new Promise((resolve, reject) => {
      let finish = null; // set once the head came: after that an error is a cut body, not a failure
      const req = http.request(`${gh.gw}${path}`, {
        method: opts.method ?? 'GET', headers, agent: false, maxHeaderSize: MiB,
      }, (res) => {
        const chunks = [];
        let done = false;
        finish = () => {
          if (done) return;
          done = true;
          const body = Buffer.concat(chunks);
          const text = body.toString('utf8');
          const isJson = (res.headers['content-type'] ?? '').includes('json') && res.complete;
          resolve({
            status: res.statusCode,
            headers: new Headers(Object.entries(res.headers).map(([n, v]) => [n, String(v)])),
            rawHeaders: res.rawHeaders,
            body,
            text,
            json: isJson ? JSON.parse(text) : undefined,
            requestId: res.headers['x-request-id'],
            complete: res.complete,
            ms: Date.now() - started,
          });
        };
        res.on('data', (d) => chunks.push(d));
        res.on('end', finish);
        res.on('error', finish); // 'aborted': the body was cut; complete says so
        res.on('close', finish);
        if (opts.pauseMs) {
          res.pause();
          setTimeout(() => res.resume(), opts.pauseMs);
        }
      });
      // h2o ends a broken chunked answer with a bad chunk on purpose: the parser's error is the cut
      req.on('error', (err) => (finish ? finish() : reject(err)));
      if (opts.expectContinue) {
        req.on('continue', () => req.end(opts.body.join('')));
        req.flushHeaders();
        return;
      }
      for (const piece of [].concat(opts.body ?? [])) req.write(piece);
      req.end();
    });
  }

  /** A hand-written request to the gateway (Connection: close); resolves to every byte back. */
  function rawCall(method, path) {
    return new Promise((resolve, reject) => {
      const sock = net.connect(Number(gh.gatewayAddress.split(':')[1]), '127.0.0.1');
      const chunks = [];
      sock.on('data', (d) => chunks.push(d));
      sock.on('end', () => {
        const all = Buffer.concat(chunks).toString('latin1');
        const cut = all.indexOf('\r\n\r\n');
        resolve({ head: all.slice(0, cut), after: all.slice(cut + 4) });
      });
      sock.on('error', reject);
      sock.write(`${method} ${path} HTTP/1.1\r\nHost: gw.test\r\napi-token: ${key}\r\nConnection: close\r\n\r\n`);
    });
  }

  /** Asserts a SPEC §5 error answer of ours. */
  function expectError(r, status, code, what = '') {
    assert.equal(r.status, status, `${what}: expected ${status} ${code}, got ${r.status}: ${r.text}`);
    assert.equal(r.headers.get('content-type'), 'application/json', what);
    assert.deepEqual(Object.keys(r.json).sort(), ['error', 'message', 'request_id'], what);
    assert.equal(r.json.error, code, what);
    assert.ok(r.json.message.length > 0, what);
    assert.equal(r.json.request_id, r.requestId, what);
  }

  /** The access-log line of a request id (the log has its own writer thread, so poll). */
  function accessLine(requestId) {
    return waitUntil(() => gh.output().stdout.split('\n')
      .filter((l) => l.includes('"msg":"access"')).map((l) => JSON.parse(l))
      .find((l) => l.request_id === requestId), { what: `the access-log line of ${requestId}` });
  }

  /** Empties the gateway's pool: the upstream closes every connection, the gateway sees it. */
  async function freshPool() {
    up.dropAll();
    await sleep(100);
  }

  before(async () => {
    up = await startRawUpstream();
    // Under a sanitizer build, freed memory waits in ASan's quarantine and would count as RSS in
    // test 13: without a quarantine RSS follows what the gateway really holds (ignored otherwise).
    const asan = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=0', 'thread_local_quarantine_size_kb=0']
      .filter(Boolean).join(':');
    gh = await startServer({ args: ['--threads', '1'], env: { ASAN_OPTIONS: asan } });
    const [, line] = await gh.proc.waitFor(GATEWAY_LISTENING, { stream: 'stdout' });
    gh.gatewayAddress = JSON.parse(line).address;
    gh.gw = `http://${gh.gatewayAddress}`;
    // /raw/v1 -> <up>/base, any method; /slow/v1 -> <up>, 300 ms timeout
    const raw = await create('/v1/collections', { name: 'raw', path: '/raw/v1', upstream: `${up.url}/base` });
    await create(`/v1/collections/${raw.id}/endpoints`, { method: 'ANY', path: '/*', timeout_ms: 5000 });
    const slow = await create('/v1/collections', { name: 'slow', path: '/slow/v1', upstream: up.url });
    await create(`/v1/collections/${slow.id}/endpoints`, { method: 'ANY', path: '/*', timeout_ms: 300 });
    // by name: /named/v1 -> localhost:<up port>, /nowhere/v1 -> a name no resolver knows
    const named = await create('/v1/collections', {
      name: 'named', path: '/named/v1', upstream: `http://localhost:${new URL(up.url).port}/base`,
    });
    await create(`/v1/collections/${named.id}/endpoints`, { method: 'ANY', path: '/*', timeout_ms: 5000 });
    const nowhere = await create('/v1/collections', {
      name: 'nowhere', path: '/nowhere/v1', upstream: 'http://no-such-host.gatehouse.invalid:8080',
    });
    await create(`/v1/collections/${nowhere.id}/endpoints`, { method: 'ANY', path: '/*', timeout_ms: 5000 });
    clientId = (await create('/v1/clients', { name: 'acme' })).id;
    key = (await create('/v1/profiles', {
      client_id: clientId, name: 'acme-token', auth_type: 'token',
      collection_ids: [raw.id, slow.id, named.id, nowhere.id],
    })).key;
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
    }
  });

  beforeEach(() => {
    up.handle = (req, sock) => sock.write(ok());
  });

  test('1. a chunked answer (extension, trailer, pieces split anywhere) arrives exact', async () => {
    up.handle = (req, sock) => writeSlowly(sock, [
      'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5;name="v"\r\nhel',
      'lo\r\n1', '\r\n,\r\nA\r\n0123456789\r\n', '6\r\n world\r\n0\r\nX-Trailer: t\r\n', '\r\n']);
    const r = await call('/raw/v1/chunked');
    assert.equal(r.status, 200);
    assert.ok(r.complete);
    assert.equal(r.text, 'hello,0123456789 world');
    const line = await accessLine(r.requestId);
    assert.equal(line.upstream_status, 200);
    assert.equal(line.upstream_error, undefined);
    // the decoder ended exactly at the last CRLF: the connection is clean and carries the next one
    const first = up.requests.at(-1).conn;
    up.handle = (req, sock) => sock.write(ok());
    assert.equal((await call('/raw/v1/next')).text, 'ok');
    assert.equal(up.requests.at(-1).conn, first, 'the chunked answer left the connection reusable');
  });

  test('2. Content-Length and close-delimited answers arrive exact', async () => {
    up.handle = (req, sock) => sock.write(ok('hello world', 'Content-Type: text/plain\r\n'));
    assert.equal((await call('/raw/v1/length')).text, 'hello world');
    // more bytes than announced: the body is the announced ones only
    up.handle = (req, sock) => sock.write(`${ok('hello')}GARBAGE`);
    assert.equal((await call('/raw/v1/extra')).text, 'hello');
    // ... and that connection is not reused: the next answer is not read after "GARBAGE"
    up.handle = (req, sock) => sock.write(ok());
    const extraConn = up.requests.at(-1).conn;
    assert.equal((await call('/raw/v1/next')).text, 'ok');
    assert.notEqual(up.requests.at(-1).conn, extraConn);
    // no length, no chunked: the body ends when the upstream closes (HTTP/1.1 and 1.0)
    for (const version of ['1.1', '1.0']) {
      up.handle = (req, sock) => writeSlowly(sock, [`HTTP/${version} 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil `, 'the close'])
        .then(() => sock.end());
      const r = await call('/raw/v1/close');
      assert.equal(r.status, 200);
      assert.ok(r.complete, `HTTP/${version}: the close ends the body, it does not cut it`);
      assert.equal(r.text, 'until the close');
    }
  });

  test('3. HEAD, 204 and 304 have no body, and leave the connection reusable', async () => {
    await freshPool();
    const base = up.accepted();
    // each announces a length it never sends: the gateway must not wait for (or eat) a body
    up.handle = (req, sock) => {
      if (req.method === 'HEAD') sock.write('HTTP/1.1 404 Not Found\r\nX-Head: yes\r\nContent-Length: 5\r\n\r\n');
      else if (req.target.endsWith('/204')) sock.write('HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n');
      else if (req.target.endsWith('/304')) sock.write('HTTP/1.1 304 Not Modified\r\nETag: "e"\r\nContent-Length: 10\r\n\r\n');
      else sock.write(ok('after'));
    };
    const head = await rawCall('HEAD', '/raw/v1/h');
    assert.match(head.head, /^HTTP\/1\.1 404 /, 'the upstream status passes');
    assert.match(head.head, /\r\nx-head: yes\r\n/i);
    assert.equal(head.after, '', 'HEAD: nothing after the head');
    for (const status of ['204', '304']) {
      const r = await rawCall('GET', `/raw/v1/${status}`);
      assert.match(r.head, new RegExp(`^HTTP/1\\.1 ${status} `));
      assert.equal(r.after, '', `${status}: nothing after the head`);
    }
    assert.equal((await call('/raw/v1/after')).text, 'after');
    assert.equal(up.accepted() - base, 1, 'HEAD, 204, 304 and the GET went over one connection');
  });

  test('4. 1xx answers before the real one are skipped; 101 is a 502', async () => {
    up.handle = (req, sock) => writeSlowly(sock, ['HTTP/1.1 100 Continue\r\n\r\n',
      `HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n${ok('real')}`]);
    const r = await rawCall('GET', '/raw/v1/continue');
    assert.match(r.head, /^HTTP\/1\.1 200 /, 'the first status line the client sees is the final one');
    assert.doesNotMatch(r.head, /link:/i);
    assert.equal(r.after, 'real');
    up.handle = (req, sock) => sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    const upgraded = await call('/raw/v1/upgrade');
    expectError(upgraded, 502, 'bad_gateway', '101');
    assert.match((await accessLine(upgraded.requestId)).upstream_error, /upgrade/);
  });

  test('5. answers that bend the grammar are refused: 502 bad_gateway, our JSON', async () => {
    const cases = {
      'both Transfer-Encoding and Content-Length':
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      'two different Content-Length values': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
      'Transfer-Encoding gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx',
      'a garbage status line': 'SSH-2.0-OpenSSH_9.2\r\n\r\n',
      'a status that is not 3 digits': 'HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok',
      'a head over 64 KiB, in one piece': `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\nContent-Length: 2\r\n\r\nok`,
      'a bare-LF head': 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok',
    };
    const failures = [];
    for (const [what, bytes] of Object.entries(cases)) {
      up.handle = (req, sock) => sock.write(bytes);
      const r = await call('/raw/v1/bad');
      try {
        expectError(r, 502, 'bad_gateway', what);
        const line = await accessLine(r.requestId);
        assert.equal(line.upstream_status, null, what);
        assert.match(line.upstream_error, /invalid response/, what);
      } catch (err) {
        failures.push(err.message.split('\n')[0]);
      }
    }
    // a head over 64 KiB that comes in pieces, never finished
    up.handle = (req, sock) => writeSlowly(sock, Array.from({ length: 20 }, (_, i) => (i === 0
      ? 'HTTP/1.1 200 OK\r\n' : `X-Pad-${i}: ${'b'.repeat(4000)}\r\n`)), 5);
    const r = await call('/raw/v1/bighead');
    try {
      expectError(r, 502, 'bad_gateway', 'a head over 64 KiB in pieces');
      assert.match((await accessLine(r.requestId)).upstream_error, /head too large/);
    } catch (err) {
      failures.push(err.message.split('\n')[0]);
    }
    assert.deepEqual(failures, []);
  });

  test('6. hop-by-hop answer headers are dropped, the others kept (Set-Cookie twice)', async () => {
    up.handle = (req, sock) => sock.write('HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret-Hop\r\n'
      + 'Keep-Alive: timeout=5\r\nX-Secret-Hop: drop me\r\nTransfer-Encoding: chunked\r\n'
      + 'Set-Cookie: a=1; Path=/\r\nSet-Cookie: b=2; Path=/\r\nX-Kept: yes\r\nContent-Type: text/plain\r\n\r\n'
      + '2\r\nok\r\n0\r\n\r\n');
    const r = await call('/raw/v1/hop');
    assert.equal(r.text, 'ok');
    const names = [];
    const cookies = [];
    for (let i = 0; i < r.rawHeaders.length; i += 2) {
      names.push(r.rawHeaders[i].toLowerCase());
      if (r.rawHeaders[i].toLowerCase() === 'set-cookie') cookies.push(r.rawHeaders[i + 1]);
    }
    assert.ok(!names.includes('keep-alive'), `keep-alive forwarded: ${names}`);
    assert.ok(!names.includes('x-secret-hop'), `a header named by Connection forwarded: ${names}`);
    assert.doesNotMatch(r.headers.get('connection') ?? '', /secret/i);
    // h2o frames the client's answer itself: at most its own one Transfer-Encoding
    assert.ok(names.filter((n) => n === 'transfer-encoding').length <= 1, `${names}`);
    assert.deepEqual(cookies, ['a=1; Path=/', 'b=2; Path=/']);
    assert.equal(r.headers.get('x-kept'), 'yes');
    assert.equal(r.headers.get('content-type'), 'text/plain');
  });

  test('7. the upstream request: line, Host, Via, X-Forwarded-For, framing, no Expect', async () => {
    const seen = (req, name) => req.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v);
    // a chunked body behind Expect: 100-continue, and headers the gateway must rewrite
    const r = await call('/raw/v1/a/b?q=1&r=%2F&q=2', {
      method: 'POST',
      headers: [['host', 'public.example'], ['via', '1.0 front'], ['x-forwarded-for', '203.0.113.7'],
        ['expect', '100-continue'], ['transfer-encoding', 'chunked'], ['x-gatehouse-client-id', 'spoofed']],
      body: ['abc', 'def'],
      expectContinue: true,
    });
    assert.equal(r.status, 200, r.text);
    const req = up.requests.at(-1);
    assert.equal(req.line, 'POST /base/a/b?q=1&r=%2F&q=2 HTTP/1.1');
    assert.deepEqual(seen(req, 'host'), [`127.0.0.1:${up.port}`], 'one Host: the upstream authority');
    assert.deepEqual(seen(req, 'via'), ['1.0 front, 1.1 gatehouse']);
    // no --trusted-proxies: the caller's X-Forwarded-For is replaced by its address (issue 11)
    assert.deepEqual(seen(req, 'x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(seen(req, 'x-forwarded-host'), ['public.example']);
    // a body of unknown length streams through chunked (issue 11: never buffered whole)
    assert.deepEqual(seen(req, 'content-length'), []);
    assert.deepEqual(seen(req, 'transfer-encoding'), ['chunked']);
    assert.equal(req.body.toString(), 'abcdef');
    assert.deepEqual(seen(req, 'expect'), []);
    assert.deepEqual(seen(req, 'x-gatehouse-client-id'), [clientId]);
    assert.deepEqual(seen(req, 'api-token'), []);
    // an empty POST says so, and a GET at the collection's root maps to the base path
    assert.equal((await call('/raw/v1/empty', { method: 'POST' })).status, 200);
    assert.match(up.requests.at(-1).head, /\r\ncontent-length: 0(\r\n|$)/i);
    assert.deepEqual(seen(up.requests.at(-1), 'content-length'), ['0']);
    assert.equal((await call('/raw/v1/?x=%41')).status, 200);
    assert.equal(up.requests.at(-1).line, 'GET /base/?x=%41 HTTP/1.1');
    assert.deepEqual(seen(up.requests.at(-1), 'content-length'), [], 'no length for a GET without body');
  });

  test('8. keep-alive: 20 sequential requests use one upstream connection', async () => {
    await freshPool();
    const base = up.accepted();
    const from = up.requests.length;
    for (let i = 0; i < 20; i++) assert.equal((await call(`/raw/v1/seq/${i}`)).text, 'ok');
    const conns = new Set(up.requests.slice(from).map((r) => r.conn));
    assert.equal(up.requests.length - from, 20);
    assert.equal(conns.size, 1, `connections used: ${[...conns]}`);
    assert.equal(up.accepted() - base, 1);
  });

  test('8b. an upstream named by host name is resolved; a name that resolves nowhere is a 502', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await call(`/named/v1/n/${i}`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, 'ok');
    }
    const last = up.requests.at(-1);
    assert.equal(last.target, '/base/n/4');
    assert.deepEqual(last.headers.filter(([n]) => n.toLowerCase() === 'host').map(([, v]) => v),
      [`localhost:${new URL(up.url).port}`]);
    const r = await call('/nowhere/v1/x');
    assert.equal(r.status, 502, r.text);
    assert.equal(r.json.error, 'bad_gateway');
    const line = await accessLine(r.requestId);
    assert.equal(line.upstream_error, 'name resolution failed');
    assert.equal(line.upstream_status, null);
  });

  test('9. a stale pooled connection: GET is retried once on a new one, POST is not', async () => {
    // the upstream answers the first request of a connection and drops the second unanswered
    up.handle = (req, sock) => (req.index === 2 ? sock.destroy() : sock.write(ok('fine')));
    for (const method of ['GET', 'POST']) {
      await freshPool();
      const base = up.accepted();
      const from = up.requests.length;
      assert.equal((await call('/raw/v1/stale', { method })).text, 'fine');
      const r = await call('/raw/v1/stale', { method });
      const got = up.requests.slice(from).map((q) => `${q.method} conn+${q.conn - base} #${q.index}`);
      if (method === 'GET') {
        assert.equal(r.status, 200, `GET: ${r.text}`);
        assert.equal(r.text, 'fine');
        assert.deepEqual(got, ['GET conn+1 #1', 'GET conn+1 #2', 'GET conn+2 #1'], 'retried once on a new connection');
        assert.equal(up.accepted() - base, 2);
      } else {
        expectError(r, 502, 'bad_gateway', 'POST on a stale connection');
        assert.deepEqual(got, ['POST conn+1 #1', 'POST conn+1 #2'], 'a POST is never sent twice');
        assert.equal(up.accepted() - base, 1);
      }
    }
  });

  test('10. the upstream closing an idle connection: the next request goes on a fresh one', async () => {
    await freshPool();
    up.handle = (req, sock) => {
      sock.write(ok('idle'));
      setTimeout(() => sock.end(), 100); // an upstream with a 100 ms keep-alive timeout
    };
    const first = await call('/raw/v1/idle/1');
    assert.equal(first.text, 'idle');
    const firstConn = up.requests.at(-1).conn;
    await sleep(300);
    const from = up.requests.length;
    const second = await call('/raw/v1/idle/2');
    assert.equal(second.status, 200);
    assert.equal(second.text, 'idle');
    // the closed one was dropped from the pool: the request was never written to it
    assert.deepEqual(up.requests.slice(from).map((q) => q.conn === firstConn), [false]);
    assert.equal((await accessLine(second.requestId)).upstream_error, undefined);
  });

  test('11. an answer cut mid-body: the client sees it cut, the log says I/O error', async () => {
    const cuts = {
      'Content-Length 1000, 10 sent': 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789',
      'chunked, cut inside a chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789',
    };
    for (const [what, bytes] of Object.entries(cuts)) {
      up.handle = (req, sock) => writeSlowly(sock, [bytes], 50).then(() => sock.destroy());
      const r = await call('/raw/v1/cut');
      assert.equal(r.status, 200, `${what}: the head was sent before the cut`);
      assert.equal(r.complete, false, `${what}: the client must not take a cut body for a whole one`);
      const line = await accessLine(r.requestId);
      assert.equal(line.upstream_status, 200);
      assert.match(line.upstream_error ?? '', /I\/O error/, what);
    }
    // and fetch, the way most clients read, rejects it
    up.handle = (req, sock) => writeSlowly(sock, [cuts['Content-Length 1000, 10 sent']], 50).then(() => sock.destroy());
    const res = await fetch(`${gh.gw}/raw/v1/cut`, { headers: { 'api-token': key } });
    await assert.rejects(res.text());
  });

  test('12. timeouts: no answer in timeout_ms is a 504; a body stalled after the head is cut', async () => {
    up.handle = () => {}; // reads the request, never answers
    const r = await call('/slow/v1/hang');
    expectError(r, 504, 'upstream_timeout');
    assert.ok(r.ms >= 280 && r.ms < 2000, `answered after ${r.ms} ms (timeout_ms 300)`);
    assert.equal((await accessLine(r.requestId)).upstream_error, 'I/O timeout');
    up.handle = (req, sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
    const stalled = await call('/slow/v1/stall');
    assert.equal(stalled.status, 200);
    assert.equal(stalled.complete, false, 'a stalled body is cut, not passed as whole');
    assert.equal(stalled.text, 'partial');
    assert.ok(stalled.ms >= 280 && stalled.ms < 2000, `cut after ${stalled.ms} ms (timeout_ms 300)`);
    assert.equal((await accessLine(stalled.requestId)).upstream_error, 'I/O timeout');
  });

  test('12b. an upload pausing longer than timeout_ms passes: the upstream is not timed while it waits for the client', async () => {
    up.handle = (req, sock) => sock.write(ok(`got ${req.body.length}`));
    const pieces = Array.from({ length: 3 }, (_, i) => `piece-${i};`);
    const r = await new Promise((resolve, reject) => {
      const req = http.request(`${gh.gw}/slow/v1/upload`, { method: 'POST', headers: { 'api-token': key }, agent: false }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ status: res.statusCode, text }));
      });
      req.on('error', reject);
      (async () => {
        for (const p of pieces) { // a pause of 450 ms after each: longer than the endpoint's 300 ms
          req.write(p);
          await sleep(450);
        }
        req.end();
      })();
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, `got ${pieces.join('').length}`);
  });

  test('13. backpressure: 32 MiB to a slow reader arrive exact, without the gateway buffering them', async () => {
    const SIZE = 32 * MiB;
    const data = randomBytes(SIZE);
    const rss = () => Number(readFileSync(`/proc/${gh.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)[1]) * 1024;
    up.handle = (req, sock) => {
      sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${SIZE}\r\n\r\n`);
      sock.write(data); // all at once: only TCP flow control, i.e. the gateway reading, holds it back
    };
    // A first big answer read at full speed: its one-off allocations are not counted as growth,
    // and it leaves a pooled connection that has carried a big answer before (its receive window
    // grown by the kernel), as a busy gateway's connections are.
    assert.equal((await call('/raw/v1/big')).body.length, SIZE);
    const baseline = rss();
    let peak = baseline;
    const sampler = setInterval(() => { peak = Math.max(peak, rss()); }, 20);
    let r;
    try {
      r = await call('/raw/v1/big', { pauseMs: 1000 }); // reads nothing for 1 s after the head
    } finally {
      clearInterval(sampler);
    }
    assert.equal(r.status, 200);
    assert.ok(r.complete);
    assert.equal(r.body.length, SIZE);
    assert.equal(createHash('sha256').update(r.body).digest('hex'), createHash('sha256').update(data).digest('hex'), 'byte-exact');
    // the gateway reads at most 1 MiB ahead of its client (proxy.c BODY_AHEAD); 16 MiB is slack
    assert.ok(peak - baseline < 16 * MiB, `gateway RSS grew by ${((peak - baseline) / MiB).toFixed(1)} MiB while its client paused`);
  });

  test('14. header names with "_" and every spelling of X-Gatehouse-* stay behind (forged identity)', async () => {
    // CGI, WSGI and Rack read X_Gatehouse_Claims as X-Gatehouse-Claims: forged sub=admin
    const forged = Buffer.from('{"sub":"admin"}').toString('base64url');
    const r = await call('/raw/v1/who', {
      headers: [['X_Gatehouse_Claims', forged], ['X_Gatehouse_Profile_Id', 'admin'], ['x_gatehouse_client_id', 'admin'],
        ['X-GATEHOUSE-CLAIMS', forged], ['X-Gatehouse-Profile-Id', 'admin'], ['x-gAtEhOuSe-client-id', 'admin'],
        ['x-gatehouse-anything', 'x'], ['x_request_id', 'mine'], ['my_header', '1'], ['x-kept', 'yes']],
    });
    assert.equal(r.status, 200, r.text);
    const req = up.requests.at(-1);
    const names = req.headers.map(([n]) => n.toLowerCase());
    assert.deepEqual(names.filter((n) => n.includes('_')), [], `underscore names reached the upstream: ${req.head}`);
    const ours = req.headers.filter(([n]) => n.toLowerCase().startsWith('x-gatehouse-'));
    assert.deepEqual(ours.map(([n]) => n).sort(), ['x-gatehouse-client-id', 'x-gatehouse-profile-id'], req.head);
    assert.deepEqual(ours.map(([, v]) => v).filter((v) => v === 'admin' || v === forged), [], req.head);
    assert.deepEqual(req.headers.filter(([n]) => n === 'x-kept').map(([, v]) => v), ['yes']);
  });

  test('15. the profile key sent as Basic auth does not go upstream', async () => {
    const seen = (req) => req.headers.filter(([n]) => n.toLowerCase() === 'authorization').map(([, v]) => v);
    const basic = `Basic ${Buffer.from(`api-token:${key}`).toString('base64')}`;
    const r = await call('/raw/v1/basic', { noKey: true, headers: [['authorization', basic]] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(seen(up.requests.at(-1)), [], 'the profile key, Basic-encoded, reached the upstream');
    assert.ok(!up.requests.at(-1).head.includes(key), 'the key appears nowhere in the upstream head');
  });

  test('15b. an unverified Authorization sent beside api-token does not go upstream', async () => {
    const seen = (req) => req.headers.filter(([n]) => n.toLowerCase() === 'authorization').map(([, v]) => v);
    // the key decided; an Authorization beside it was never checked, so it does not go on
    const r = await call('/raw/v1/beside', { headers: [['authorization', 'Bearer unverified.token.here']] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(seen(up.requests.at(-1)), [], 'an unverified Authorization went upstream');
  });

  test('16. repeated fields are joined in linear time and the upstream head is bounded: 431 over 64 KiB', async () => {
    const before = up.requests.length;
    // HTTP/1.1: 100 X-Forwarded-For lines of 1 KiB each (h2o takes up to 100 fields)
    const value = '198.51.100.1, '.repeat(72).slice(0, 1000);
    let r = await call('/raw/v1/many', { headers: Array.from({ length: 90 }, () => ['x-forwarded-for', value]) });
    expectError(r, 431, 'headers_too_large', '90 KB of X-Forwarded-For');
    assert.match(r.json.message, /64 KiB/);
    // just under the limit still goes, joined into one field
    r = await call('/raw/v1/some', { headers: Array.from({ length: 50 }, () => ['cookie', `a=${'x'.repeat(998)}`]) });
    assert.equal(r.status, 200, r.text);
    const cookies = up.requests.at(-1).headers.filter(([n]) => n.toLowerCase() === 'cookie');
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0][1].split('; ').length, 50);
    assert.equal(up.requests.length, before + 1, 'the refused request never reached the upstream');
  });

  test('18. bytes after a complete answer (a body after HEAD, a second answer) close the pooled connection', async () => {
    // A whole fake answer that must never reach a client: the next request would read it as its
    // own if the connection that carried it went back to the pool.
    const poison = 'HTTP/1.1 200 OK\r\nX-Poison: 1\r\nContent-Length: 8\r\n\r\npoisoned';
    const cases = [
      ['HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', `hello${poison}`],
      ['GET', 'HTTP/1.1 204 No Content\r\n\r\n', poison],
      ['GET', 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n', `hello${poison}`],
      ['GET', ok('hello'), poison],
      ['GET', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', poison],
      ['GET', ok('hello'), 'x'],
    ];
    const metric = async () => {
      const text = (await gh.api('GET', '/metrics', undefined, { raw: true })).text;
      const m = text.match(/^gatehouse_upstream_errors_total\{kind="bytes_after_answer"\} (\d+)$/m);
      assert.ok(m, 'gatehouse_upstream_errors_total{kind="bytes_after_answer"} is in /metrics');
      return Number(m[1]);
    };
    const failures = [];
    for (const [method, answer, extra] of cases) {
      // the extra bytes in the same read as the answer, or alone once the connection is idle
      for (const when of ['same read', 'later']) {
        const what = `${method} ${JSON.stringify(answer.slice(0, 28))}... + ${JSON.stringify(extra.slice(0, 12))}..., ${when}`;
        try {
          await freshPool();
          const before = await metric();
          let poisoned;
          up.handle = (req, sock) => {
            if (!req.target.endsWith('/poison')) return sock.write(ok('real'));
            poisoned = { conn: req.conn, sock };
            return sock.write(when === 'same read' ? answer + extra : answer);
          };
          const first = await call('/raw/v1/poison', { method });
          assert.equal(first.headers.get('x-poison'), null, what);
          // the client has the whole answer, so the gateway is done with it: the connection is
          // idle (in the pool if it were reusable) when the extra bytes come
          if (when === 'later') await new Promise((resolve) => poisoned.sock.write(extra, resolve));
          const r = await call('/raw/v1/next');
          assert.equal(r.headers.get('x-poison'), null, `${what}: the next client got the unsolicited answer`);
          assert.equal(r.text, 'real', what);
          assert.notEqual(up.requests.at(-1).conn, poisoned.conn, `${what}: the connection was reused`);
          await waitUntil(() => up.isClosed(poisoned.conn), { what: `${what}: the gateway closing the connection` });
          assert.equal(await metric(), before + 1, `${what}: counted as kind="bytes_after_answer"`);
        } catch (err) {
          failures.push(err.message.split('\n')[0]);
        }
      }
    }
    assert.deepEqual(failures, []);
  });
});

describe('HTTP/2 header repetition against the upstream head limit (TLS, h2)', () => {
  let gh;
  let up;
  let key;
  let ca;
  let dir;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gh-h2bomb-'));
    const files = { cert: join(dir, 'gw.crt'), key: join(dir, 'gw.key') };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', files.key, '-out', files.cert, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    ca = readFileSync(files.cert);
    up = await startRawUpstream();
    // as above: without ASan's quarantine, RSS follows what the gateway really holds
    const asan = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=0', 'thread_local_quarantine_size_kb=0']
      .filter(Boolean).join(':');
    gh = await startServer({
      args: ['--threads', '1', '--tls-cert', files.cert, '--tls-key', files.key], env: { ASAN_OPTIONS: asan },
    });
    const [, line] = await gh.proc.waitFor(GATEWAY_LISTENING, { stream: 'stdout' });
    gh.gatewayAddress = JSON.parse(line).address;
    const col = (await gh.api('POST', '/v1/collections', { name: 'bomb', path: '/bomb/v1', upstream: up.url })).json;
    await gh.api('POST', `/v1/collections/${col.id}/endpoints`, { method: 'ANY', path: '/*' });
    const client = (await gh.api('POST', '/v1/clients', { name: 'bomber' })).json;
    key = (await gh.api('POST', '/v1/profiles', {
      client_id: client.id, name: 'bomber', auth_type: 'token', collection_ids: [col.id],
    })).json.key;
    assert.ok(key, 'a profile key');
  });

  after(async () => {
    try {
      await stopClean(gh);
    } finally {
      await up?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('17. a few KB of HPACK repetition is refused with 431, nothing goes upstream, RSS stays bounded', async () => {
    const rss = () => Number(readFileSync(`/proc/${gh.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)[1]) * 1024;
    // node refuses by default to send more than 128 fields or 64 KiB of them, uncompressed
    const session = http2.connect(`https://${gh.gatewayAddress}`, { ca, maxHeaderListPairs: 4000, maxSendHeaderBlockLength: 1 << 24 });
    session.on('error', () => {});
    try {
      const send = (headers) => new Promise((resolve, reject) => {
        const stream = session.request({ ':path': '/bomb/v1/x', 'api-token': key, ...headers });
        let text = '';
        let head;
        stream.on('response', (h) => { head = h; });
        stream.on('data', (d) => { text += d; });
        stream.on('end', () => resolve({ status: head?.[':status'], text }));
        stream.on('error', reject);
        stream.end();
      });
      assert.equal((await send({})).status, 200, 'h2 answers');
      const before = up.requests.length;
      const baseline = rss();
      // each repetition is one indexed byte of HPACK; joined quadratically these were ~120 MB
      const v = 'x'.repeat(500);
      const bomb = { 'x-forwarded-for': Array(400).fill(v), via: Array(400).fill(v), cookie: Array(400).fill(`c=${v}`) };
      for (let i = 0; i < 3; i++) {
        const r = await send(bomb);
        assert.equal(r.status, 431, r.text.slice(0, 200));
        assert.equal(JSON.parse(r.text).error, 'headers_too_large');
      }
      const grown = rss() - baseline;
      assert.ok(grown < 32 * MiB, `gateway RSS grew by ${(grown / MiB).toFixed(1)} MiB for three small requests`);
      assert.equal(up.requests.length, before, 'nothing reached the upstream');
      assert.equal((await send({})).status, 200, 'the connection still serves');
    } finally {
      session.close();
    }
  });
});
