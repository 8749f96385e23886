// SPDX-License-Identifier: Apache-2.0
// An upstream in a process of its own for the normal requests of frontend-floods.test.mjs, so
// that their latency never includes the flooding test runner's busy event loop: answers every
// request 200 "ok" on 127.0.0.1 (ephemeral port), prints { port } as one JSON line, and exits when
// its standard input ends.
import http from 'node:http';

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => res.end('ok'));
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
