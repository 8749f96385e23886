// SPDX-License-Identifier: Apache-2.0
// Runs the gatehouse binary for the end-to-end tests.
//
//   const r = await run(['token', 'verify', '--jwks', file, token]);
//   r.code, r.signal, r.stdout, r.stderr, r.timedOut, r.json()
//
// The binary is $GATEHOUSE_BIN, else ../../build/gatehouse relative to tests/e2e.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StringDecoder } from 'node:string_decoder';

/** tests/e2e, whatever the current directory. */
export const E2E_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The binary under test: $GATEHOUSE_BIN (relative to tests/e2e when relative), else build/gatehouse. */
export function gatehouseBin() {
  return resolve(E2E_DIR, process.env.GATEHOUSE_BIN || '../../build/gatehouse');
}

/** True when the binary exists (tests may skip with a reason otherwise). */
export function haveGatehouse() {
  return existsSync(gatehouseBin());
}

// stdout is kept as bytes too (stdoutBytes()), so a test can check it is valid UTF-8: the text
// is decoded leniently (a bad byte reads as U+FFFD) and would hide it.
function collect(child) {
  const out = { stdout: '', stderr: '', chunks: [] };
  const decoder = new StringDecoder('utf8');
  child.stdout?.on('data', (d) => { out.chunks.push(d); out.stdout += decoder.write(d); });
  child.stderr?.setEncoding('utf8').on('data', (d) => { out.stderr += d; });
  return out;
}

function parseJsonOf(text, what) {
  const trimmed = text.trim();
  try {
    return JSON.parse(trimmed);
  } catch (e) {
    throw new Error(`${what} is not one JSON document: ${e.message}\n--- ${what} ---\n${text}`);
  }
}

/**
 * Runs gatehouse with args to its end. options:
 *   timeoutMs  kill it (SIGKILL) after this long; default 15000. The result says timedOut.
 *   input      a string or Buffer written to its standard input (stdin is closed either way).
 *   env        extra environment variables (merged over process.env).
 *   cwd        working directory (default tests/e2e).
 *   bin        another binary than gatehouseBin().
 * Resolves to { code, signal, stdout, stderr, timedOut, durationMs, json() } where json() parses
 * stdout as one JSON document; rejects only when the process cannot be started.
 */
export function run(args, options = {}) {
  const {
    timeoutMs = 15000, input, env, cwd = E2E_DIR, bin = gatehouseBin(),
  } = options;
  return new Promise((resolvePromise, reject) => {
    const started = Date.now();
    let timedOut = false;
    const child = spawn(bin, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out = collect(child);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${bin}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({
        code,
        signal,
        stdout: out.stdout,
        stderr: out.stderr,
        timedOut,
        durationMs: Date.now() - started,
        json() {
          return parseJsonOf(out.stdout, 'stdout');
        },
      });
    });
    child.stdin.on('error', () => {}); // it may exit before reading its input
    child.stdin.end(input ?? '');
  });
}

/**
 * Starts gatehouse as a long-running process (e.g. the gateway). Same options as run() except
 * input and timeoutMs. Returns { child, pid, output(), waitFor(regex, { timeoutMs, stream }),
 * exited, stop({ signal, timeoutMs }) }: waitFor resolves to the match once stdout or stderr
 * (stream: 'stdout' | 'stderr' | 'any') shows it, and rejects when the process exits first or on
 * timeout; stop sends signal (SIGTERM), then SIGKILL after timeoutMs (5000), and resolves to
 * { code, signal, stdout, stderr }. Always stop what you spawn (in an after() hook).
 */
export function spawnGatehouse(args, options = {}) {
  const { env, cwd = E2E_DIR, bin = gatehouseBin() } = options;
  const child = spawn(bin, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = collect(child);
  let exitInfo = null;
  const waiters = new Set();
  const exited = new Promise((resolvePromise) => {
    child.once('error', (err) => {
      exitInfo = { code: null, signal: null, error: err };
      resolvePromise(exitInfo);
    });
    child.once('close', (code, signal) => {
      exitInfo = { code, signal };
      resolvePromise(exitInfo);
    });
  });
  const result = () => ({ ...exitInfo, stdout: out.stdout, stderr: out.stderr });
  const check = () => {
    for (const w of waiters) w();
  };
  child.stdout.on('data', check);
  child.stderr.on('data', check);

  return {
    child,
    pid: child.pid,
    exited,
    output() {
      return { stdout: out.stdout, stderr: out.stderr };
    },
    /** Everything written to stdout so far, as bytes. */
    stdoutBytes() {
      return Buffer.concat(out.chunks);
    },
    waitFor(regex, { timeoutMs = 10000, stream = 'any' } = {}) {
      return new Promise((resolvePromise, reject) => {
        let timer;
        const done = (fn, value) => {
          clearTimeout(timer);
          waiters.delete(probe);
          fn(value);
        };
        function probe() {
          const text = stream === 'stdout' ? out.stdout
            : stream === 'stderr' ? out.stderr : `${out.stdout}\n${out.stderr}`;
          const m = text.match(regex);
          if (m) done(resolvePromise, m);
        }
        timer = setTimeout(() => done(reject, new Error(
          `timed out after ${timeoutMs} ms waiting for ${regex}\n--- stdout ---\n${out.stdout}\n--- stderr ---\n${out.stderr}`,
        )), timeoutMs);
        waiters.add(probe);
        exited.then((info) => {
          probe();
          if (waiters.has(probe)) {
            done(reject, new Error(
              `gatehouse exited (${info.error?.message ?? `code ${info.code}, signal ${info.signal}`}) before ${regex}\n--- stdout ---\n${out.stdout}\n--- stderr ---\n${out.stderr}`,
            ));
          }
        });
        probe();
      });
    },
    async stop({ signal = 'SIGTERM', timeoutMs = 5000 } = {}) {
      if (exitInfo) return result();
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
      return result();
    },
  };
}
