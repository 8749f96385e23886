// SPDX-License-Identifier: Apache-2.0
// The README's quick start runs as written (issue 10, item 24). Its command blocks marked
// ```sh quickstart are taken from README.md and run in order, in one bash with `set -euo pipefail`,
// from a folder laid out like the checkout after `make run` (./build/gatehouse is the binary under
// test) against what steps 1 and 2 of the README start by hand: `gatehouse serve` with its default
// store in that folder, and an HTTP service standing for the upstream. Only their addresses differ
// (ephemeral loopback ports), handed over through the variables the README's commands read with
// defaults: GATEHOUSE_ADMIN_URL (the CLI's own), GATEWAY and UPSTREAM. Every command must succeed,
// the call without a token must be refused with 401, and the final call must reach the upstream and
// answer its 200. The README's other admin commands (the oidc section's, which need a real IdP) are
// run with --dry-run, so their flags cannot drift from the CLI's either.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { E2E_DIR, gatehouseBin, spawnGatehouse } from './lib/run.mjs';
import { makeTempDir } from './lib/server.mjs';
import { startUpstream } from './lib/upstream.mjs';

const README = join(E2E_DIR, '..', '..', 'README.md');

/** The bodies of the README's ```sh quickstart blocks, in order. */
export function quickstartBlocks(markdown) {
  const blocks = [];
  let current = null;
  for (const line of markdown.split('\n')) {
    if (current === null) {
      if (/^```sh\s+quickstart\s*$/.test(line)) current = [];
    } else if (/^```\s*$/.test(line)) {
      blocks.push(current.join('\n'));
      current = null;
    } else {
      current.push(line);
    }
  }
  assert.equal(current, null, 'a ```sh quickstart block of the README is not closed');
  return blocks;
}

/** The `./build/gatehouse` admin commands of the README's other ```sh blocks, continuations joined. */
export function otherAdminCommands(markdown) {
  const commands = [];
  let inBlock = false;
  let pending = '';
  for (const line of markdown.split('\n')) {
    if (!inBlock) {
      inBlock = /^```sh\s*$/.test(line);
      continue;
    }
    if (/^```\s*$/.test(line)) {
      inBlock = false;
      continue;
    }
    const text = pending + line.replace(/\s+#.*$/, '');
    if (text.endsWith('\\')) {
      pending = `${text.slice(0, -1)} `;
      continue;
    }
    pending = '';
    if (/^\.\/build\/gatehouse (collections|endpoints|clients|profiles|keys|policies|providers|config) /.test(text)) {
      commands.push(text.replace(/\s+/g, ' ').trim());
    }
  }
  return commands;
}

/** Runs script with bash in cwd; resolves to { code, signal, stdout, stderr }. */
function bash(script, { cwd, env, timeoutMs }) {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test('the README quick start runs as written and ends with the upstream\'s 200', async () => {
  const readme = await readFile(README, 'utf8');
  const blocks = quickstartBlocks(readme);
  assert.ok(blocks.length > 0, 'the README has no ```sh quickstart block: its quick start is not tested');
  assert.match(readme, /```sh\nmake run\b/, 'the quick start starts gatehouse with `make run`');

  const dir = await makeTempDir('gatehouse-readme-');
  await symlink(dirname(gatehouseBin()), join(dir, 'build'));
  const upstream = await startUpstream();
  // none of the caller's GATEHOUSE_* variables (the README's reader has none set)
  const env = Object.fromEntries(Object.entries(process.env).filter(([n]) => !n.startsWith('GATEHOUSE_')));
  // as `make run` starts it, but on ephemeral loopback ports
  const blank = Object.fromEntries(Object.keys(process.env).filter((n) => n.startsWith('GATEHOUSE_')).map((n) => [n, '']));
  const gh = spawnGatehouse(['serve', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'], { cwd: dir, env: blank });
  try {
    const address = async (msg) => JSON.parse((await gh.waitFor(new RegExp(`^(\\{.*"msg":"${msg}".*\\})\\r?\\n`, 'm'),
      { timeoutMs: 10000, stream: 'stdout' }))[1]).address;
    const adminUrl = `http://${await address('admin API listening')}`;
    const gateway = `http://${await address('gateway listening')}`;

    const script = [
      'set -euo pipefail',
      'trap \'echo "README quick start: this command failed (exit $?): $BASH_COMMAND" >&2\' ERR',
      ...blocks.map((b, i) => `echo "--- quickstart block ${i + 1} ---"\n${b}`),
    ].join('\n');
    const r = await bash(script, {
      cwd: dir,
      env: { ...env, GATEHOUSE_ADMIN_URL: adminUrl, GATEWAY: gateway, UPSTREAM: upstream.url },
      timeoutMs: 60000,
    });
    const shown = `--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}\n--- gatehouse ---\n${gh.output().stdout}\n${gh.output().stderr}`;
    assert.equal(r.code, 0, `the quick start failed\n${shown}`);
    assert.match(r.stdout, /^401$/m, `the call without a token was not refused with 401\n${shown}`);

    const passed = upstream.requests.filter((q) => q.headers['x-gatehouse-profile-id']);
    assert.ok(passed.length > 0, `no request reached the upstream through the gateway\n${shown}`);
    const last = passed[passed.length - 1];
    assert.match(last.headers['x-gatehouse-profile-id'], /^ap_/);
    assert.match(last.headers['x-gatehouse-client-id'], /^cli_/);
    // curl --fail printed the upstream's 200 answer (the echo of what it received)
    assert.ok(r.stdout.includes(`"x-gatehouse-profile-id":"${last.headers['x-gatehouse-profile-id']}"`),
      `the final call did not print the upstream's answer\n${shown}`);
  } finally {
    await gh.stop({ signal: 'SIGTERM', timeoutMs: 5000 });
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the README\'s other admin commands are ones the CLI takes (checked with --dry-run)', async () => {
  const readme = await readFile(README, 'utf8');
  const commands = otherAdminCommands(readme);
  assert.ok(commands.some((c) => c.includes('--auth-type oidc')), `the README shows no oidc profile: ${commands}`);
  const dir = await makeTempDir('gatehouse-readme-');
  try {
    await symlink(dirname(gatehouseBin()), join(dir, 'build'));
    for (const command of commands) {
      const r = await bash(`${command} --dry-run`, {
        cwd: dir,
        env: { ...process.env, CLIENT: 'cli_readme0000000', COL: 'col_readme0000000', GATEHOUSE_ADMIN_TOKEN: 'x' },
        timeoutMs: 15000,
      });
      assert.equal(r.code, 0, `${command} --dry-run failed:\n${r.stdout}${r.stderr}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
