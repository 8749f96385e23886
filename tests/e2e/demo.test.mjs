// SPDX-License-Identifier: Apache-2.0
// `make demo` must keep working: run it as a user would and check that it says everything
// happened as shown (it exits non-zero otherwise).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';

import { E2E_DIR, gatehouseBin } from './lib/run.mjs';

test('the demo runs from start to finish', async () => {
  const child = spawn(process.execPath, [join(E2E_DIR, 'demo.mjs')], {
    env: { ...process.env, GATEHOUSE_BIN: gatehouseBin() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const code = await new Promise((resolve) => child.on('close', resolve));
  assert.equal(code, 0, out);
  assert.match(out, /status\s+200/);
  assert.match(out, /status\s+401/);
  assert.match(out, /status\s+403/);
  assert.match(out, /demo finished: everything happened as shown/);
});
