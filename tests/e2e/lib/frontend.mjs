// SPDX-License-Identifier: Apache-2.0
// The gateway's front end under test (issue 11): `gatehouse serve` with the flags a test names,
// one collection /fe/v1 (ANY /*) on an upstream of the test's (lib/rawupstream.mjs unless given)
// and an api-token profile for it; raw HTTP/1.1 exchanges over node:net that say whether the
// gateway closed the connection after its answer; the gateway's memory from /proc.
//
//   const fe = await startFrontend({ flags: ['--max-headers', '10'] });
//   const r = await exchange(fe.address, `GET /fe/v1/a HTTP/1.1\r\nHost: x\r\napi-token: ${fe.key}\r\n\r\n`);
//   r.first (the first final answer: status, headers, body, json), r.interim (1xx), r.closed
//   fe.memory()   { rss, hwm } in bytes;  await fe.stop()
//
// The flags of the new front end (--max-header-bytes, --max-headers, --head-timeout-ms,
// --idle-timeout-ms, --body-timeout-ms, --max-connections, --h2-max-streams, --h2-max-resets,
// --trusted-proxies) do not exist before it: a suite that needs one fails at the start with
// today's binary, which says so in its output.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';

import { stopClean } from './proofs-http.mjs';
import { startRawUpstream } from './rawupstream.mjs';
import { makeTempDir, sleep, startServer } from './server.mjs';

const GATEWAY_LISTENING = /^(\{.*"msg":"gateway listening".*\})\r?\n/m;
export const MiB = 1024 * 1024;

/** A self-signed P-256 certificate for 127.0.0.1 and localhost in dir: { cert, key, ca (Buffer) }. */
export function makeCert(dir) {
  const files = { cert: join(dir, 'fe.crt'), key: join(dir, 'fe.key') };
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', files.key, '-out', files.cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { ...files, ca: readFileSync(files.cert) };
}

/**
 * Starts gatehouse and its configuration. options:
 *   flags     serve flags of the test (the new front end's among them)
 *   tls       true: --tls-cert/--tls-key with a fresh certificate (fe.ca trusts it)
 *   threads   gateway workers (2)
 *   upstream  an upstream with .url (default: a new raw upstream, stopped by fe.stop())
 *   listen    the gateway's --listen (127.0.0.1:0)
 *   profile   more fields of the api-token profile (e.g. { ip_deny: [...] })
 *   wrap, env as startServer's
 * Resolves to { gh, up, key, collectionId, clientId, ca and caFile (with tls), address (host:port to connect to: 127.0.0.1
 * also on a [::] listener), listening (what the gateway logged), port, ca, pid, memory(),
 * resetPeak() (VmHWM back to VmRSS), stop() }.
 */
export async function startFrontend(options = {}) {
  const up = options.upstream ?? await startRawUpstream();
  let gh;
  let dir;
  try {
    const args = ['--threads', String(options.threads ?? 2)];
    if (options.listen) args.push('--listen', options.listen);
    let ca;
    let caFile;
    if (options.tls) {
      dir = await makeTempDir('gatehouse-fe-');
      const cert = makeCert(dir);
      ca = cert.ca;
      caFile = cert.cert;
      args.push('--tls-cert', cert.cert, '--tls-key', cert.key);
    }
    args.push(...(options.flags ?? []));
    gh = await startServer({ dir, args, wrap: options.wrap, env: options.env });
    const [, line] = await gh.proc.waitFor(GATEWAY_LISTENING, { stream: 'stdout' });
    const listening = JSON.parse(line).address;
    const port = Number(listening.slice(listening.lastIndexOf(':') + 1));
    const fe = {
      gh, up, port, host: '127.0.0.1', address: `127.0.0.1:${port}`, listening, ca, caFile, pid: gh.pid,
      memory: () => memoryOf(gh.pid),
      resetPeak: () => writeFileSync(`/proc/${gh.pid}/clear_refs`, '5'),
      async stop() {
        try {
          await stopClean(gh);
        } finally {
          if (!options.upstream) await up.close();
        }
      },
    };
    const col = await created(gh, '/v1/collections', { name: 'fe', path: '/fe/v1', upstream: up.url });
    fe.collectionId = col.id;
    await created(gh, `/v1/collections/${col.id}/endpoints`, { method: 'ANY', path: '/*' });
    const client = await created(gh, '/v1/clients', { name: 'front-end' });
    fe.clientId = client.id;
    fe.key = (await created(gh, '/v1/profiles', {
      client_id: client.id, name: 'fe', auth_type: 'token', collection_ids: [col.id], ...(options.profile ?? {}),
    })).key;
    return fe;
  } catch (err) {
    if (gh) {
      await gh.stop().catch(() => {});
    } else if (dir) {
      await rm(dir, { recursive: true, force: true });
    }
    if (!options.upstream) await up.close();
    throw err;
  }
}

async function created(gh, path, body) {
  const r = await gh.api('POST', path, body);
  assert.equal(r.status, 201, `POST ${path}: ${r.status} ${r.text}`);
  return r.json;
}

/** { rss, hwm } of a process, in bytes (VmRSS, VmHWM of /proc/PID/status). */
export function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name) => Number(status.match(new RegExp(`${name}:\\s+(\\d+) kB`))[1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Parses the HTTP/1.1 answers in buf: [{ status, head, headers (lower-case names; repeated ones
 * joined with ", "), body (Buffer), json, complete }]. 1xx answers have no body; a final answer
 * without Content-Length or chunked framing runs to the end of buf (complete false).
 */
export function parseResponses(buf) {
  const out = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = buf.subarray(at, end).toString('latin1');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (!m) break;
    const headers = {};
    for (const line of head.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const status = Number(m[1]);
    at = end + 4;
    const r = { status, head, headers, body: Buffer.alloc(0), complete: true };
    out.push(r);
    if (status < 200) continue;
    if ('content-length' in headers) {
      const length = Number(headers['content-length']);
      r.body = buf.subarray(at, at + length);
      r.complete = r.body.length === length;
      at += length;
    } else {
      r.body = buf.subarray(at);
      r.complete = false;
      at = buf.length;
    }
    if (r.complete && /json/.test(headers['content-type'] ?? '')) {
      try {
        r.json = JSON.parse(r.body.toString('utf8'));
      } catch { /* left undefined: assertions show the text */ }
    }
  }
  return out;
}

/**
 * Writes `parts` on a new connection to address (host:port) and reads. parts: a string (latin1)
 * or Buffer, or a list of them and { delayMs } pauses. Ends when the gateway closes the
 * connection, when closeWaitMs (1500) passed after the first complete final answer (the
 * connection stayed open), or after timeoutMs (10000). Never rejects. Resolves to { responses,
 * first (the first final answer), interim (1xx answers before it), closed (the gateway ended or
 * reset the connection), text, timedOut, closedAfterMs (from the first byte written) }.
 */
export function exchange(address, parts, { closeWaitMs = 1500, timeoutMs = 10000 } = {}) {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(colon + 1));
  const list = [].concat(parts);
  return new Promise((resolve) => {
    const chunks = [];
    let closed = false;
    let done = false;
    let closeTimer;
    let startedAt = 0;
    let closedAfterMs = null;
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    const finish = (timedOut) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(closeTimer);
      sock.destroy();
      const data = Buffer.concat(chunks);
      const responses = parseResponses(data);
      resolve({
        responses,
        first: responses.find((r) => r.status >= 200),
        interim: responses.filter((r) => r.status < 200),
        closed,
        closedAfterMs,
        timedOut,
        text: data.toString('latin1'),
      });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    const ended = () => {
      closed = true;
      closedAfterMs = Date.now() - startedAt;
      finish(false);
    };
    sock.on('data', (d) => {
      chunks.push(d);
      const answered = parseResponses(Buffer.concat(chunks)).some((r) => r.status >= 200 && r.complete);
      if (answered && !closeTimer) closeTimer = setTimeout(() => finish(false), closeWaitMs);
    });
    sock.on('end', ended);
    sock.on('close', ended);
    sock.on('error', ended); // a reset (or EPIPE while writing) closes it as much as a FIN
    sock.on('connect', async () => {
      startedAt = Date.now();
      for (const p of list) {
        if (done || sock.destroyed) return;
        if (p && typeof p === 'object' && 'delayMs' in p) {
          await sleep(p.delayMs);
        } else if (!sock.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p)) {
          await new Promise((r) => { sock.once('drain', r); sock.once('close', r); });
        }
      }
    });
  });
}

/**
 * Asserts a front-end refusal: the first final answer has that status and the gateway's JSON
 * error body { error: code, message, request_id }.
 */
export function expectRefusal(r, status, code, what = '') {
  const shown = JSON.stringify(r.text.slice(0, 300));
  assert.ok(r.first, `${what}: expected ${status} ${code}, got no answer (closed=${r.closed}): ${shown}`);
  assert.equal(r.first.status, status, `${what}: expected ${status} ${code}, got ${r.first.status}: ${shown}`);
  assert.ok(r.first.json, `${what}: a JSON error body: ${shown}`);
  assert.deepEqual(Object.keys(r.first.json).sort(), ['error', 'message', 'request_id'], `${what}: ${shown}`);
  assert.equal(r.first.json.error, code, `${what}: ${shown}`);
}

/**
 * A raw connection driven step by step: { sock, write(bytes), responses(), closed(),
 * waitFor(n answers or a predicate on the bytes, timeoutMs), waitClosed(timeoutMs), destroy() }.
 * Rejects when the connection cannot be made (refused, or not accepted within connectTimeoutMs).
 * The waits resolve to true, or to false on timeout (the caller asserts).
 */
export async function connectRaw(address, { connectTimeoutMs = 5000 } = {}) {
  const colon = address.lastIndexOf(':');
  const sock = net.connect({ host: address.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(address.slice(colon + 1)) });
  sock.setNoDelay(true);
  const chunks = [];
  let isClosed = false;
  const waiters = new Set();
  const poke = () => { for (const w of waiters) w(); };
  sock.on('data', (d) => { chunks.push(d); poke(); });
  for (const ev of ['end', 'close', 'error']) sock.on(ev, () => { isClosed = true; poke(); });
  await new Promise((resolve, reject) => {
    // a listener that stops accepting (a full backlog) leaves connect pending: that is a refusal
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no connection to ${address} within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    sock.once('connect', () => { clearTimeout(timer); resolve(); });
    sock.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
  const wait = (cond, timeoutMs) => new Promise((resolve) => {
    const check = () => {
      if (cond()) { clearTimeout(timer); waiters.delete(check); resolve(true); }
    };
    const timer = setTimeout(() => { waiters.delete(check); resolve(false); }, timeoutMs);
    waiters.add(check);
    check();
  });
  const c = {
    sock,
    text: () => Buffer.concat(chunks).toString('latin1'),
    responses: () => parseResponses(Buffer.concat(chunks)),
    closed: () => isClosed,
    write: (bytes) => new Promise((resolve) => {
      if (isClosed) return resolve(false);
      if (sock.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes)) return resolve(true);
      const go = () => { sock.off('drain', go); sock.off('close', go); resolve(!isClosed); };
      sock.on('drain', go);
      sock.on('close', go);
      return undefined;
    }),
    /** n: how many complete answers (1xx included), or a predicate on the text received. */
    waitFor: (n, timeoutMs = 5000) => wait(typeof n === 'function' ? () => n(c.text())
      : () => c.responses().filter((r) => r.complete).length >= n, timeoutMs),
    waitClosed: (timeoutMs = 5000) => wait(() => isClosed, timeoutMs),
    destroy: () => sock.destroy(),
  };
  return c;
}
