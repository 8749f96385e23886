// SPDX-License-Identifier: Apache-2.0
// `gatehouse serve` for the end-to-end tests: a fresh data directory, an ephemeral admin port on
// 127.0.0.1, and a small client for the admin API.
//
//   const gh = await startServer();
//   const r = await gh.api('POST', '/v1/clients', { name: 'acme' });   // r.status, r.json
//   await gh.restart();                      // SIGTERM, then serve again on the same directory
//   await gh.kill('SIGKILL');                // the process only; the directory stays
//   await gh.stop();                         // SIGTERM (SIGKILL after 5 s), then rm -r the directory
//
// The process is always signalled by its own pid, never by name.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { gatehouseBin, spawnGatehouse } from './run.mjs';

// The whole line, newline included, so that a line cut between two reads is never parsed half.
const LISTENING = /^(\{.*"msg":"admin API listening".*\})\r?\n/m;

// Variables of the parent environment that would change what `serve` does; empty means unset.
export const NEUTRAL_ENV = {
  GATEHOUSE_ADMIN_TOKEN: '',
  GATEHOUSE_DB: '',
  GATEHOUSE_DATA_DIR: '',
  GATEHOUSE_LISTEN: '',
  GATEHOUSE_ADMIN_LISTEN: '',
  GATEHOUSE_ADMIN_TLS_CERT: '',
  GATEHOUSE_ADMIN_TLS_KEY: '',
  GATEHOUSE_ALLOW_INSECURE_IDP: '',
  GATEHOUSE_LOG_LEVEL: '',
  GATEHOUSE_UPSTREAM_CA_FILE: '',
};

/** A fresh temporary directory (the caller removes it, or startServer's stop() does). */
export function makeTempDir(prefix = 'gatehouse-e2e-') {
  return mkdtemp(join(tmpdir(), prefix));
}

/**
 * Sends one admin API request. body: an object (sent as JSON), a string or Buffer (sent as is),
 * or undefined (no body). opts.token: the bearer token; null sends no Authorization header.
 * opts.headers: more headers (they win). opts.raw: do not parse the answer as JSON.
 * Resolves to { status, headers, json, text, request } (json is undefined when the answer is not
 * JSON; request is "METHOD path", for assertion messages).
 */
export async function adminRequest(url, token, method, path, body, opts = {}) {
  const headers = {};
  const bearer = opts.token === undefined ? token : opts.token;
  if (bearer !== null && bearer !== undefined) headers.authorization = `Bearer ${bearer}`;
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      payload = body;
    } else {
      payload = JSON.stringify(body);
    }
    headers['content-type'] = 'application/json';
  }
  Object.assign(headers, opts.headers ?? {});
  const res = await fetch(`${url}${path}`, { method, headers, body: payload });
  const text = await res.text();
  let json;
  if (!opts.raw && text.length > 0 && (res.headers.get('content-type') ?? '').includes('json')) {
    json = JSON.parse(text);
  }
  return { status: res.status, headers: res.headers, json, text, request: `${method} ${path}` };
}

/**
 * Starts `gatehouse serve --db sqlite:DIR/gh.db --admin-listen 127.0.0.1:0` in a new temporary
 * directory (or options.dir), waits for the "admin API listening" line and reads the admin token
 * from DIR/admin-token (or uses options.env.GATEHOUSE_ADMIN_TOKEN).
 * options: dir, env (extra environment), args (extra serve flags), timeoutMs (10000), wrap (a
 * command that execs gatehouse, e.g. ['prlimit', '--nofile=1024:4096']: the pid stays gatehouse's).
 */
export async function startServer(options = {}) {
  const dir = options.dir ?? await makeTempDir();
  const env = { ...NEUTRAL_ENV, ...(options.env ?? {}) };
  const args = ['serve', '--db', `sqlite:${join(dir, 'gh.db')}`, '--admin-listen', '127.0.0.1:0',
    '--listen', '127.0.0.1:0', ...(options.args ?? [])];
  const timeoutMs = options.timeoutMs ?? 10000;
  const logs = []; // the output of every process of this server, for failure messages

  const server = {
    dir,
    url: null,
    token: null,
    address: null,
    pid: null,
    proc: null,
    /** stdout and stderr of the current process. */
    output() {
      return server.proc ? server.proc.output() : { stdout: '', stderr: '' };
    },
    /** Everything every process of this server printed, as one text. */
    log() {
      return [...logs, server.proc ? formatOutput(server.proc.output()) : ''].join('\n');
    },
    api(method, path, body, opts) {
      return adminRequest(server.url, server.token, method, path, body, opts);
    },
    async start() {
      const proc = options.wrap
        ? spawnGatehouse([...options.wrap.slice(1), gatehouseBin(), ...args], { env, cwd: dir, bin: options.wrap[0] })
        : spawnGatehouse(args, { env, cwd: dir });
      server.proc = proc;
      server.pid = proc.pid;
      let line;
      try {
        [, line] = await proc.waitFor(LISTENING, { timeoutMs, stream: 'stdout' });
      } catch (err) {
        await signalAndWait(proc, 'SIGKILL');
        throw err;
      }
      server.address = JSON.parse(line).address;
      if (!/^127\.0\.0\.1:\d+$/.test(server.address)) {
        throw new Error(`unexpected admin address ${server.address}`);
      }
      server.url = `http://${server.address}`;
      server.token = env.GATEHOUSE_ADMIN_TOKEN
        || (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
      return server;
    },
    /** Sends `signal` to the process (by its pid) and waits for it to end. */
    async kill(signal = 'SIGKILL') {
      const proc = server.proc;
      if (!proc) return null;
      const result = await signalAndWait(proc, signal);
      logs.push(formatOutput(result));
      server.proc = null;
      return result;
    },
    /** SIGTERM (SIGKILL after 5 s) and a new process on the same directory. */
    async restart() {
      await server.kill('SIGTERM');
      return server.start();
    },
    /** Stops the process (SIGTERM, SIGKILL after 5 s) and removes the directory. */
    async stop() {
      let result = null;
      try {
        result = await server.kill('SIGTERM');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      return result;
    },
  };
  try {
    await server.start();
  } catch (err) {
    if (!options.dir) await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return server;
}

function formatOutput({ stdout, stderr, code, signal }) {
  return `--- exit ${code} ${signal ?? ''} ---\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
}

async function signalAndWait(proc, signal, graceMs = 5000) {
  let info = await Promise.race([proc.exited, Promise.resolve(null)]);
  if (!info) {
    try {
      process.kill(proc.pid, signal);
    } catch (err) {
      if (err.code !== 'ESRCH') throw err;
    }
    let timer;
    const forced = new Promise((resolve) => {
      timer = setTimeout(() => {
        try {
          process.kill(proc.pid, 'SIGKILL');
        } catch { /* already gone */ }
        resolve();
      }, graceMs);
    });
    await Promise.race([proc.exited, forced]);
    info = await proc.exited;
    clearTimeout(timer);
  }
  return { ...info, ...proc.output() };
}

/**
 * A small HTTP server of the test's own on 127.0.0.1, port 0: handler(req, res) answers. Resolves
 * to { port, url, server, stop() }; stop() closes it and every connection to it.
 */
export async function startHttpServer(handler) {
  const server = http.createServer(handler);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    server,
    stop: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** A loopback port where nothing listens (bound once, then closed again). */
export async function unusedPort() {
  const s = await startHttpServer((req, res) => res.end());
  await s.stop();
  return s.port;
}

/** Resolves after ms milliseconds. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls fn() until it returns a truthy value (resolved to) or timeoutMs passes (rejects). */
export async function waitUntil(fn, { timeoutMs = 5000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}
