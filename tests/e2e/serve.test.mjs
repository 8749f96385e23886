// SPDX-License-Identifier: Apache-2.0
// `gatehouse serve` as an operator starts it: its listeners (a port somebody else listens on is
// refused, host names and [v6] addresses are accepted), its data directory, the admin listener's
// exposure warning and TLS, and the store URLs it cannot serve yet. Every server here is started
// on loopback with ephemeral ports in a temporary directory, and stopped by its pid.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import https from 'node:https';
import { createServer } from 'node:net';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

import {
  gatehouseBin, haveGatehouse, run, spawnGatehouse,
} from './lib/run.mjs';
import { makeTempDir, NEUTRAL_ENV, startServer } from './lib/server.mjs';

if (!haveGatehouse()) throw new Error(`gatehouse is not built (${gatehouseBin()}): run make test`);

const GATEWAY_LISTENING = /^(\{.*"msg":"gateway listening".*\})\r?\n/m;
const ADMIN_LISTENING = /^(\{.*"msg":"admin API listening".*\})\r?\n/m;
const STARTED = /"msg":"gatehouse started"/;

const dirs = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir() {
  const dir = await makeTempDir('gatehouse-serve-');
  dirs.push(dir);
  return dir;
}

/**
 * Runs `gatehouse serve ARGS` in `cwd` until it has started or has exited. A server that started
 * is stopped (SIGTERM by its pid) and reported as started: true with its output.
 */
async function serveUntilStartedOrExited(args, { cwd, env = {}, timeoutMs = 10000 } = {}) {
  const proc = spawnGatehouse(['serve', ...args], { cwd: cwd ?? await tempDir(), env: { ...NEUTRAL_ENV, ...env } });
  const started = await Promise.race([
    proc.waitFor(STARTED, { stream: 'stdout', timeoutMs }).then(() => true, () => false),
    proc.exited.then(() => false),
  ]);
  const result = await proc.stop();
  return { ...result, started };
}

/** A listener of the test's own (no SO_REUSEPORT) on host, port 0; resolves to { port, close }. */
async function holdPort(host = '127.0.0.1') {
  const server = createServer((sock) => sock.destroy());
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  return { port: server.address().port, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** The port of `gatehouse serve`'s gateway, from its "gateway listening" line. */
async function gatewayAddressOf(gh) {
  const [, line] = await gh.proc.waitFor(GATEWAY_LISTENING, { stream: 'stdout' });
  return JSON.parse(line);
}

function assertAddressInUse(result, address, what) {
  assert.equal(result.started, false, `${what}: a second listener started on ${address}:\n${result.stdout}\n${result.stderr}`);
  assert.notEqual(result.code, 0, `${what}: exit status`);
  assert.match(result.stderr, /address already in use/, `${what}: ${result.stderr}`);
  assert.ok(result.stderr.includes(address), `${what}: the message names ${address}: ${result.stderr}`);
}

describe('a port somebody else listens on is refused (issue 10, item 3)', () => {
  test('the gateway port of another gatehouse: exit non-zero, "address already in use"', async () => {
    const first = await startServer({ env: NEUTRAL_ENV });
    try {
      const { address } = await gatewayAddressOf(first);
      const dir = await tempDir();
      const result = await serveUntilStartedOrExited(
        ['--db', `sqlite:${join(dir, 'gh.db')}`, '--listen', address, '--admin-listen', '127.0.0.1:0'], { cwd: dir },
      );
      assertAddressInUse(result, address, '--listen');
    } finally {
      await first.stop();
    }
  });

  test('the admin port of another gatehouse: exit non-zero, "address already in use"', async () => {
    const first = await startServer({ env: NEUTRAL_ENV });
    try {
      const dir = await tempDir();
      const result = await serveUntilStartedOrExited(
        ['--db', `sqlite:${join(dir, 'gh.db')}`, '--listen', '127.0.0.1:0', '--admin-listen', first.address], { cwd: dir },
      );
      assertAddressInUse(result, first.address, '--admin-listen');
    } finally {
      await first.stop();
    }
  });

  test('a port another program listens on, for either listener', async () => {
    const held = await holdPort();
    try {
      const address = `127.0.0.1:${held.port}`;
      const dir = await tempDir();
      const db = `sqlite:${join(dir, 'gh.db')}`;
      assertAddressInUse(await serveUntilStartedOrExited(
        ['--db', db, '--listen', address, '--admin-listen', '127.0.0.1:0'], { cwd: dir },
      ), address, '--listen');
      assertAddressInUse(await serveUntilStartedOrExited(
        ['--db', db, '--listen', '127.0.0.1:0', '--admin-listen', address], { cwd: dir },
      ), address, '--admin-listen');
    } finally {
      await held.close();
    }
  });

  test('the gateway still runs several workers and answers on its one address', async () => {
    const gh = await startServer({ env: NEUTRAL_ENV, args: ['--threads', '3'] });
    try {
      const { address, threads } = await gatewayAddressOf(gh);
      assert.equal(threads, 3);
      const answers = await Promise.all(Array.from({ length: 12 }, () => fetch(`http://${address}/nothing/here`)));
      for (const r of answers) assert.equal(r.status, 404);
    } finally {
      await gh.stop();
    }
  });
});

describe('listen addresses: host names and [v6] (issue 10, item 21)', () => {
  test('--listen localhost:PORT binds what localhost resolves to and says which', async () => {
    const gh = await startServer({ env: NEUTRAL_ENV, args: ['--listen', 'localhost:0'] });
    try {
      const line = await gatewayAddressOf(gh);
      assert.ok(Array.isArray(line.addresses) && line.addresses.length >= 1, JSON.stringify(line));
      assert.ok(line.addresses.includes(line.address));
      for (const address of line.addresses) {
        assert.match(address, /^(127\.0\.0\.1|\[::1\]):\d+$/);
        const r = await fetch(`http://${address}/nothing/here`);
        assert.equal(r.status, 404, address);
        assert.equal((await r.json()).error, 'not_found');
      }
      const port = line.address.split(':').pop();
      assert.ok(line.addresses.every((a) => a.endsWith(`:${port}`)), 'every address on one port');
    } finally {
      await gh.stop();
    }
  });

  test('--listen [::1]:PORT and --admin-listen [::1]:PORT', async (t) => {
    const probe = await holdPort('::1').catch(() => null);
    if (!probe) {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    await probe.close();
    const dir = await tempDir();
    const proc = spawnGatehouse(['serve', '--db', `sqlite:${join(dir, 'gh.db')}`, '--listen', '[::1]:0',
      '--admin-listen', '[::1]:0'], { cwd: dir, env: NEUTRAL_ENV });
    try {
      const [, line] = await proc.waitFor(GATEWAY_LISTENING, { stream: 'stdout' });
      const { address } = JSON.parse(line);
      assert.match(address, /^\[::1\]:\d+$/);
      assert.equal((await fetch(`http://${address}/nothing`)).status, 404);
    } finally {
      await proc.stop();
    }
  });
});

describe('PostgreSQL store URLs (issue 12)', () => {
  test('--db postgres://... to a port nobody listens on starts serving nothing, naming the problem, never the password', async () => {
    const held = await holdPort();
    await held.close(); // nobody listens there now: the connection is refused
    const result = await serveUntilStartedOrExited(['--db', `postgres://gh:Secret42@127.0.0.1:${held.port}/gatehouse`,
      '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    // a node of a cluster may start before its database: it waits for it (tests/e2e/cluster.test.mjs
    // shows it serving once the database is up)
    assert.equal(result.started, true, result.stdout + result.stderr);
    const why = result.stdout.split('\n').find((l) => l.includes('the configuration store cannot be reached'));
    assert.ok(why, result.stdout);
    assert.match(why, /cannot connect to PostgreSQL/);
    assert.match(why, /refused/);
    assert.ok(why.includes(`127.0.0.1:${held.port}/gatehouse`), why);
    assert.doesNotMatch(result.stderr + result.stdout, /Secret42/, 'the password is never echoed');
  });

  test('--store-poll-ms out of its range or not a number exits 2 naming the range', async () => {
    for (const value of ['50', '3600001', 'soon', '-5']) {
      const result = await serveUntilStartedOrExited(['--store-poll-ms', value, '--listen', '127.0.0.1:0',
        '--admin-listen', '127.0.0.1:0']);
      assert.equal(result.started, false);
      assert.equal(result.code, 2, `${value}: ${result.stderr}`);
      assert.match(result.stderr, /--store-poll-ms must be a number from 100 to 3600000/);
    }
  });

  test('a PostgreSQL string libpq cannot parse exits 2 before connecting, without repeating it', async () => {
    for (const db of ['postgres://gh:Secret42/gatehouse', 'postgres:host=127.0.0.1 password=Secret42 oops',
      'postgresql://gh:%zzSecret42@127.0.0.1/gatehouse']) {
      const result = await serveUntilStartedOrExited(['--db', db, '--listen', '127.0.0.1:0',
        '--admin-listen', '127.0.0.1:0']);
      assert.equal(result.started, false);
      assert.equal(result.code, 2, `${db}: ${result.stderr}`);
      assert.match(result.stderr, /--db: the PostgreSQL (connection string is not valid|port is not a number)/);
      assert.doesNotMatch(result.stderr + result.stdout, /Secret42/, 'the password is never echoed');
    }
  });

  test('a store URL of no known form exits 2 naming the forms, and only the scheme of a URL with a user', async () => {
    const result = await serveUntilStartedOrExited(['--db', 'mysql://gh:Secret42@127.0.0.1/gatehouse',
      '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /sqlite:PATH/);
    assert.match(result.stderr, /postgres:\/\//);
    assert.doesNotMatch(result.stderr, /Secret42/);
  });
});

describe('the data directory (issue 10, item 11)', () => {
  /** `gatehouse serve` in cwd with args, waiting until it has started; resolves to { proc, url }. */
  async function serveIn(cwd, args, env = {}) {
    const proc = spawnGatehouse(['serve', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...args],
      { cwd, env: { ...NEUTRAL_ENV, ...env } });
    try {
      const [, line] = await proc.waitFor(ADMIN_LISTENING, { stream: 'stdout' });
      await proc.waitFor(STARTED, { stream: 'stdout' });
      return { proc, url: `http://${JSON.parse(line).address}` };
    } catch (err) {
      await proc.stop();
      throw err;
    }
  }

  /** An admin command of the CLI in cwd, with no token in the environment. */
  function cli(cwd, url, args, env = {}) {
    return run(['clients', 'list', '--admin-url', url, '--json', ...args],
      { cwd, env: { GATEHOUSE_ADMIN_TOKEN: '', GATEHOUSE_DB: '', GATEHOUSE_DATA_DIR: '', ...env } });
  }

  async function mode(path) {
    return (await stat(path)).mode & 0o777;
  }

  test('by default serve keeps the store and the admin token in ./data (0700), nothing else in the working directory', async () => {
    const cwd = await tempDir();
    const { proc, url } = await serveIn(cwd, []);
    try {
      assert.deepEqual(await readdir(cwd), ['data']);
      assert.equal(await mode(join(cwd, 'data')), 0o700);
      const files = await readdir(join(cwd, 'data'));
      assert.ok(files.includes('gatehouse.db'), files.join(' '));
      assert.ok(files.includes('admin-token'), files.join(' '));
      assert.equal(await mode(join(cwd, 'data', 'admin-token')), 0o600);
      const r = await cli(cwd, url, []); // the CLI finds ./data/admin-token by itself
      assert.equal(r.code, 0, r.stderr);
    } finally {
      const result = await proc.stop();
      assert.equal(result.code, 0, result.stderr);
    }
    assert.deepEqual(await readdir(cwd), ['data']);
  });

  test('--data-dir and GATEHOUSE_DATA_DIR choose it, for serve and for the CLI', async () => {
    const cwd = await tempDir();
    const elsewhere = await tempDir();
    const dataDir = join(elsewhere, 'state');
    const { proc, url } = await serveIn(cwd, ['--data-dir', dataDir]);
    try {
      assert.deepEqual(await readdir(cwd), []);
      assert.deepEqual((await readdir(dataDir)).filter((f) => !f.includes('-wal') && !f.includes('-shm')).sort(),
        ['admin-token', 'gatehouse.db']);
      assert.equal(await mode(dataDir), 0o700);
      let r = await cli(cwd, url, []);
      assert.equal(r.code, 2, 'no token in ./data of another directory');
      assert.match(r.stderr, /admin-token/);
      r = await cli(cwd, url, ['--data-dir', dataDir]);
      assert.equal(r.code, 0, r.stderr);
      r = await cli(cwd, url, [], { GATEHOUSE_DATA_DIR: dataDir });
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await proc.stop();
    }
    // the same directory through the environment: the same token, the same store
    const again = await serveIn(cwd, [], { GATEHOUSE_DATA_DIR: dataDir });
    try {
      const r = await cli(cwd, again.url, ['--data-dir', dataDir]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await readdir(cwd), []);
    } finally {
      await again.proc.stop();
    }
  });

  test('a data directory whose name is not UTF-8: the log lines keep every field, as valid UTF-8', async () => {
    const cwd = await tempDir();
    // node's strings cannot carry the byte 0xff into argv; the shell can (exec: the pid is serve's)
    const script = 'd="$1/$(printf \'st\\377te\')"; mkdir "$d" && exec "$2" serve --data-dir "$d"'
      + ' --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0';
    const proc = spawnGatehouse(['-c', script, 'sh', cwd, gatehouseBin()],
      { bin: '/bin/sh', cwd, env: NEUTRAL_ENV });
    try {
      await proc.waitFor(STARTED, { stream: 'stdout' });
      const text = new TextDecoder('utf-8', { fatal: true }).decode(proc.stdoutBytes()); // throws on invalid UTF-8
      const lines = text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      const listening = lines.find((l) => l.msg === 'admin API listening');
      assert.match(listening.address ?? '', /^127\.0\.0\.1:\d+$/, text);
      assert.equal(listening.data_dir, `${cwd}/st\ufffdte`);
      assert.equal(listening.store, `sqlite:${cwd}/st\ufffdte/gatehouse.db`);
      assert.equal(lines.find((l) => l.msg === 'admin token written').file, `${cwd}/st\ufffdte/admin-token`);
    } finally {
      await proc.stop();
    }
  });

  test('--db sqlite:PATH alone keeps the admin token beside the store, as before', async () => {
    const cwd = await tempDir();
    const { proc, url } = await serveIn(cwd, ['--db', `sqlite:${join(cwd, 'store', 'gh.db')}`]);
    try {
      assert.deepEqual((await readdir(join(cwd, 'store'))).filter((f) => !f.includes('-wal') && !f.includes('-shm')).sort(),
        ['admin-token', 'gh.db']);
      const r = await cli(cwd, url, ['--db', `sqlite:${join(cwd, 'store', 'gh.db')}`]);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await proc.stop();
    }
  });
});

describe('the admin listener off loopback: a warning, and TLS (issue 10, item 16)', () => {
  const EXPOSED = /reachable from the network without TLS/;

  /** A self-signed certificate for 127.0.0.1 made by openssl in dir: { cert, key } file names. */
  function makeCert(dir) {
    const files = { cert: join(dir, 'admin.crt'), key: join(dir, 'admin.key') };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', files.key, '-out', files.cert, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    return files;
  }

  function httpsGet(url, ca) {
    return new Promise((resolve, reject) => {
      https.get(url, { ca }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d) => { body += d; }).on('end', () => resolve({ status: res.statusCode, body }));
      }).on('error', reject);
    });
  }

  // Nothing listens on a non-loopback address in these tests: a bad --max-body stops serve right
  // after its flags are checked, which is where the warning is given.
  for (const address of ['0.0.0.0:0', '[::]:0']) {
    test(`--admin-listen ${address} without TLS: one warning line naming it`, async () => {
      const result = await serveUntilStartedOrExited(['--admin-listen', address, '--listen', '127.0.0.1:0', '--max-body', '0']);
      assert.equal(result.started, false);
      const lines = result.stderr.split('\n').filter((l) => EXPOSED.test(l));
      assert.equal(lines.length, 1, result.stderr);
      assert.ok(lines[0].includes(address), lines[0]);
      assert.match(lines[0], /--admin-tls-cert/);
    });
  }

  test('--admin-listen on loopback: no warning', async () => {
    const gh = await startServer({ env: NEUTRAL_ENV });
    try {
      assert.equal((await gh.api('GET', '/healthz')).status, 200);
      assert.doesNotMatch(gh.output().stderr, EXPOSED);
    } finally {
      await gh.stop();
    }
  });

  test('--admin-tls-cert and --admin-tls-key: the admin API answers over TLS, and not in plain text', async () => {
    const dir = await tempDir();
    const { cert, key } = makeCert(dir);
    const proc = spawnGatehouse(['serve', '--db', `sqlite:${join(dir, 'gh.db')}`, '--listen', '127.0.0.1:0',
      '--admin-listen', '127.0.0.1:0', '--admin-tls-cert', cert, '--admin-tls-key', key], { cwd: dir, env: NEUTRAL_ENV });
    try {
      const [, line] = await proc.waitFor(ADMIN_LISTENING, { stream: 'stdout' });
      const info = JSON.parse(line);
      assert.equal(info.tls, true, line);
      const ca = await readFile(cert);
      const health = await httpsGet(`https://${info.address}/healthz`, ca);
      assert.equal(health.status, 200, health.body);
      const token = (await readFile(join(dir, 'admin-token'), 'utf8')).trim();
      const listed = await fetch(`http://${info.address}/v1/clients`, { headers: { authorization: `Bearer ${token}` } })
        .then((r) => r.status, () => 'refused');
      assert.equal(listed, 'refused', 'plain HTTP to the TLS listener must fail');
      await assert.rejects(httpsGet(`https://${info.address}/healthz`, undefined), 'an untrusted certificate is refused by a verifying client');
    } finally {
      const result = await proc.stop();
      assert.equal(result.code, 0, result.stderr);
    }
  });

  test('a non-loopback admin listener with TLS is not warned about; a half TLS pair is a usage error', async () => {
    const dir = await tempDir();
    const { cert, key } = makeCert(dir);
    let result = await serveUntilStartedOrExited(['--admin-listen', '0.0.0.0:0', '--listen', '127.0.0.1:0', '--max-body', '0',
      '--admin-tls-cert', cert, '--admin-tls-key', key], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--max-body/);
    assert.doesNotMatch(result.stderr, EXPOSED);
    result = await serveUntilStartedOrExited(['--admin-listen', '127.0.0.1:0', '--listen', '127.0.0.1:0',
      '--admin-tls-cert', cert], { cwd: dir });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--admin-tls-key/);
    result = await serveUntilStartedOrExited(['--admin-listen', '127.0.0.1:0', '--listen', '127.0.0.1:0',
      '--admin-tls-cert', join(dir, 'missing.crt'), '--admin-tls-key', key], { cwd: dir });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /missing\.crt/);
  });
});
