// SPDX-License-Identifier: Apache-2.0
// The data plane of `gatehouse serve` for gateway-proofs.test.mjs: a server with its gateway port
// known, requests to it with node:http (keep-alive agents or one connection per request) whose
// timing is recorded, a load loop, and an echo upstream that takes large request heads.
//
//   const gh = await startGateway();                 // gh.gw = 'http://127.0.0.1:<port>'
//   const r = await send(gh.gw, '/orders/v1/x', { headers: { 'api-token': key }, agent });
//   r.status, r.headers (node's lower-case object), r.rawHeaders, r.text, r.json
//   const records = await loadLoop({ workers: 8, request: (w, n) => ({ base, path, options }), until });

import assert from 'node:assert/strict';
import http from 'node:http';
import { performance } from 'node:perf_hooks';

import { startServer } from './server.mjs';

const GATEWAY_LISTENING = /^(\{.*"msg":"gateway listening".*\})\r?\n/m;

/** `gatehouse serve` (two worker threads unless options.args say otherwise), its gateway URL in gw. */
export async function startGateway(options = {}) {
  const gh = await startServer({ ...options, args: ['--threads', '2', ...(options.args ?? [])] });
  try {
    const [, line] = await gh.proc.waitFor(GATEWAY_LISTENING, { stream: 'stdout' });
    gh.gatewayAddress = JSON.parse(line).address;
    assert.match(gh.gatewayAddress, /^127\.0\.0\.1:\d+$/);
    gh.gw = `http://${gh.gatewayAddress}`;
  } catch (err) {
    await gh.stop();
    throw err;
  }
  return gh;
}

/** SIGTERM by pid; the process must drain and exit 0 with no sanitizer report; the directory goes. */
export async function stopClean(gh) {
  const result = await gh?.stop();
  if (!result) return;
  assert.equal(result.code, 0, `gatehouse exited with ${result.code} ${result.signal ?? ''}\n${result.stderr}`);
  assert.doesNotMatch(result.stderr, /Sanitizer|runtime error/, result.stderr);
}

/** POST an object through the admin API; asserts 201 and returns the JSON. */
export async function create(gh, path, body) {
  const r = await gh.api('POST', path, body);
  assert.equal(r.status, 201, `POST ${path}: ${r.status} ${r.text}`);
  return r.json;
}

/**
 * An upstream that echoes { method, path, query, headers } as JSON and accepts request heads up to
 * 1 MiB (node's default is 16 KiB, less than a 16 KiB token plus its X-Gatehouse-Claims).
 * Resolves to { url, port, requests() (how many so far), close() }.
 */
export async function startWideUpstream() {
  let count = 0;
  const server = http.createServer({ maxHeaderSize: 1024 * 1024 }, (req, res) => {
    req.resume();
    req.on('end', () => {
      count += 1;
      const [path, ...rest] = (req.url ?? '/').split('?');
      const body = JSON.stringify({
        method: req.method, path, query: rest.length ? rest.join('?') : null, headers: req.headers,
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests: () => count,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/**
 * One request to the gateway. options: method (GET), headers (object or [name, value] pairs),
 * body, agent (false: a connection of its own), timeoutMs (10000: then it fails with ETIMEDOUT).
 * Resolves to { status, headers, rawHeaders, text, json } or, when no answer came, rejects with
 * the socket error (err.code: ECONNREFUSED, ECONNRESET, ETIMEDOUT, ...).
 */
export function send(base, path, options = {}) {
  const {
    method = 'GET', headers = {}, body, agent = false, timeoutMs = 10000,
  } = options;
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        if ((res.headers['content-type'] ?? '').includes('json') && text.length > 0) {
          try {
            json = JSON.parse(text);
          } catch { /* left undefined: the caller's assertion shows the text */ }
        }
        resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, text, json });
      });
    });
    req.setTimeout(timeoutMs, () => {
      const err = new Error(`no answer within ${timeoutMs} ms`);
      err.code = 'ETIMEDOUT';
      req.destroy(err);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One request whose timing is recorded: { path, startedAt, connectedAt (a new connection was
 * established; null on a kept-alive one or none), sentAt (the request fully written to the
 * socket; null if never), endedAt, status, error (code or message), text }, times from
 * performance.now(). Never rejects. Same options as send() but body.
 */
export function timedRequest(base, path, options = {}) {
  const {
    method = 'GET', headers = {}, agent = false, timeoutMs = 10000,
  } = options;
  return new Promise((resolve) => {
    const rec = {
      path, startedAt: performance.now(), connectedAt: null, sentAt: null, endedAt: null, status: null, error: null, text: '',
    };
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      rec.endedAt = performance.now();
      resolve(rec);
    };
    const req = http.request(`${base}${path}`, { method, headers, agent }, (res) => {
      rec.status = res.statusCode;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (err) => {
        rec.error = err.code ?? err.message;
        done();
      });
      res.on('end', () => {
        rec.text = Buffer.concat(chunks).toString('utf8');
        done();
      });
    });
    req.on('socket', (sock) => {
      if (!sock.connecting) return; // a kept-alive connection: connectedAt stays null
      sock.once('connect', () => { rec.connectedAt = performance.now(); });
    });
    req.on('finish', () => { rec.sentAt = performance.now(); });
    req.setTimeout(timeoutMs, () => {
      const err = new Error(`no answer within ${timeoutMs} ms`);
      err.code = 'ETIMEDOUT';
      req.destroy(err);
    });
    req.on('error', (err) => {
      rec.error = err.code ?? err.message;
      done();
    });
    req.end();
  });
}

/**
 * Runs `workers` loops at once, each sending request(worker, n) → { base, path, options } one
 * after the other (timedRequest) until until() is true or, with stopOnError, its first request
 * without an answer. Resolves to every record, each with its worker number.
 */
export async function loadLoop({
  workers, request, until, stopOnError = false,
}) {
  const records = [];
  await Promise.all([...Array(workers).keys()].map(async (w) => {
    for (let n = 0; !until(); n++) {
      const { base, path, options } = request(w, n);
      const rec = await timedRequest(base, path, options);
      rec.worker = w;
      records.push(rec);
      if (stopOnError && rec.error) break;
    }
  }));
  return records;
}
