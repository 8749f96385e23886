// SPDX-License-Identifier: Apache-2.0
// A throwaway PostgreSQL cluster on loopback for the end-to-end tests of several nodes, made by
// Debian's pg_virtualenv (postgresql-common; it works as root) in a temporary directory, as
// tests/meta/with-postgres.sh does for the unit tests. pg_virtualenv runs `sh -c 'env; cat'`: the
// environment it prints names the cluster (port, user, password), and the cluster lives until that
// `cat` ends, when its standard input is closed; pg_virtualenv then drops it.
//
//   const pg = await startPostgres();
//   const url = await pg.newDatabase('gh1');      // postgres://USER:PASSWORD@127.0.0.1:PORT/gh1
//   await pg.sql('gh1', 'SELECT 1');              // psql -tA, resolves to its output
//   await pg.stopServer(); await pg.startServer(); // the server down and up again, same cluster
//   await pg.close();
//
// When PostgreSQL is missing or does not start, startPostgres rejects saying why: the tests that
// need it fail, they are never skipped.

import { execFile, spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { unusedPort } from './server.mjs';

const exec = promisify(execFile);

/** Starts the cluster; resolves to the handle described above. */
export async function startPostgres({ timeoutMs = 60000 } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'gh-e2e-pg-'));
  // the server's user must reach the cluster's files and its socket directory
  await chmod(dir, 0o755);
  const sockets = join(dir, 'sockets');
  await mkdir(sockets, { mode: 0o755 });
  if (process.getuid?.() === 0) {
    const { stdout } = await exec('id', ['-u', 'postgres']).catch(() => {
      throw new Error('no postgres user: install Debian\'s postgresql (scripts/install-deps.sh test)');
    });
    const { stdout: gid } = await exec('id', ['-g', 'postgres']);
    await chown(sockets, Number(stdout.trim()), Number(gid.trim()));
  }
  const port = await unusedPort();
  const child = spawn('pg_virtualenv', ['-t', '-o', `unix_socket_directories=${sockets}`,
    'sh', '-c', 'env; echo GH_PG_READY; cat'], {
    env: { ...process.env, PGPORT: String(port), TMPDIR: dir },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => {
    child.once('error', (e) => resolve({ error: e }));
    child.once('close', (code) => resolve({ code }));
  });
  const ready = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    const check = () => {
      if (out.includes('GH_PG_READY')) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    child.stdout.on('data', check);
    exited.then(() => {
      clearTimeout(timer);
      resolve(out.includes('GH_PG_READY'));
    });
  });
  if (!ready) {
    child.stdin.end();
    child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start (pg_virtualenv from Debian's postgresql-common is needed: `
      + `scripts/install-deps.sh test installs it)\n--- stdout ---\n${out}\n--- stderr ---\n${err}`);
  }
  const env = Object.fromEntries(out.split('\n').filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const user = env.PGUSER;
  const password = env.PGPASSWORD;
  // pg_ctlcluster finds the cluster through these
  const clusterEnv = { ...process.env, PG_CLUSTER_CONF_ROOT: env.PG_CLUSTER_CONF_ROOT,
    PGSYSCONFDIR: env.PGSYSCONFDIR };
  const psqlEnv = { ...process.env, PGPASSWORD: password };

  const pg = {
    port,
    user,
    password,
    /** A store URL of gatehouse for database `db`. */
    url(db) {
      return `postgres://${user}:${password}@127.0.0.1:${port}/${db}`;
    },
    async sql(db, query) {
      const { stdout } = await exec('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', db,
        '-v', 'ON_ERROR_STOP=1', '-tAc', query], { env: psqlEnv });
      return stdout.trim();
    },
    /** A new empty UTF-8 database; resolves to its store URL. */
    async newDatabase(db) {
      await pg.sql('postgres', `CREATE DATABASE ${db} ENCODING 'UTF8' TEMPLATE template0`);
      return pg.url(db);
    },
    /** Stops the server (fast: sessions are ended, as in a restart). */
    async stopServer() {
      await exec('pg_ctlcluster', [env.PGVERSION, 'regress', 'stop', '-m', 'fast'], { env: clusterEnv });
    },
    async startServer() {
      await exec('pg_ctlcluster', [env.PGVERSION, 'regress', 'start'], { env: clusterEnv });
    },
    /** Drops the cluster (pg_virtualenv does, once its command ends) and the directory. */
    async close() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
      await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return pg;
}
