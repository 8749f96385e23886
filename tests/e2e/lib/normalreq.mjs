// SPDX-License-Identifier: Apache-2.0
// The normal requests beside a flood, for frontend-floods.test.mjs, in a process of their own so
// that their latency is the gateway's and not the flooding test runner's busy event loop.
//
//   node normalreq.mjs URL API_TOKEN COUNT GAP_MS [CA_FILE]
//
// COUNT GETs of URL one after the other, GAP_MS apart, each on a new connection (TLS trusting
// CA_FILE for https URLs); prints one JSON line: [{ status, ms } or { error, ms }, ...].

import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';

const [url, key, countText, gapText, caFile] = process.argv.slice(2);
const ca = caFile ? readFileSync(caFile) : undefined;

function one() {
  return new Promise((resolve) => {
    const started = performance.now();
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.request(url, {
      headers: { 'api-token': key }, agent: false, ca, servername: ca ? 'localhost' : undefined,
    }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (err) => resolve({ error: err.code ?? err.message, ms: performance.now() - started }));
    req.end();
  });
}

const results = [];
for (let i = 0; i < Number(countText); i++) {
  if (i > 0) await new Promise((r) => setTimeout(r, Number(gapText)));
  results.push(await one());
}
process.stdout.write(`${JSON.stringify(results)}\n`);
