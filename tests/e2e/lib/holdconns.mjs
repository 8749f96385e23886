// SPDX-License-Identifier: Apache-2.0
// Holds many idle TCP connections for frontend-floods.test.mjs, in a process of its own so that
// its open-file limit can be raised (prlimit) above the test runner's, often 1024.
//
//   node holdconns.mjs HOST PORT COUNT
//
// Opens COUNT connections (64 at a time), prints one JSON line { opened, failed }, keeps them
// until its standard input ends, then prints { closedByServer } (how many the server ended
// meanwhile) and exits.

import net from 'node:net';

const [host, portText, countText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText);
const socks = [];
let failed = 0;
let closedByServer = 0;
let leaving = false;

function open() {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.setTimeout(3000, () => s.destroy()); // not accepted (a full backlog): counted as failed
    s.on('connect', () => {
      s.setTimeout(0);
      socks.push(s);
      resolve();
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (!leaving && socks.includes(s)) closedByServer += 1;
      if (!socks.includes(s)) {
        failed += 1;
        resolve();
      }
    });
  });
}

let next = 0;
await Promise.all(Array.from({ length: 64 }, async () => {
  while (next < count) {
    next += 1;
    await open();
  }
}));
process.stdout.write(`${JSON.stringify({ opened: socks.length, failed })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  leaving = true;
  process.stdout.write(`${JSON.stringify({ closedByServer })}\n`);
  for (const s of socks) s.destroy();
  process.exit(0);
});
