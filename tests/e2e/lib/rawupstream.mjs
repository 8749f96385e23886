// SPDX-License-Identifier: Apache-2.0
// A raw TCP upstream for the tests of the gateway's upstream exchange: node:net, so every byte of
// every answer is the test's own and no HTTP library quietly fixes framing up. It reads the
// gateway's requests (a head, then a Content-Length body: the gateway never sends chunked) and
// hands each to the current handler, which writes whatever bytes it wants, or nothing.
//
//   const up = await startRawUpstream();
//   up.handle = (req, sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
//   req: { conn, index, method, target, head, headers: [[name, value], ...] as sent, body }
//        conn is the connection's number (1, 2, ... in accept order), index the request's on it
//   up.requests          every request read, in order
//   up.accepted()        connections accepted since the start
//   up.isClosed(conn)    whether connection number conn has closed (either side)
//   up.dropAll()         destroys every open connection (empties the gateway's pool)
//   await up.close()

import net from 'node:net';

export async function startRawUpstream() {
  const requests = [];
  const sockets = new Set();
  const closed = new Set();
  let accepted = 0;

  const up = {
    requests,
    port: 0,
    url: '',
    /** (req, sock) => void; the default answers 200 "ok" and keeps the connection. */
    handle: (req, sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    accepted: () => accepted,
    isClosed: (conn) => closed.has(conn),
    dropAll() {
      for (const s of sockets) s.destroy();
    },
    close() {
      up.dropAll();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };

  const server = net.createServer((sock) => {
    accepted += 1;
    const conn = accepted;
    let index = 0;
    let buf = Buffer.alloc(0);
    sockets.add(sock);
    sock.setNoDelay(true); // each write its own segment, so the gateway reads answers in pieces
    sock.on('close', () => {
      sockets.delete(sock);
      closed.add(conn);
    });
    sock.on('error', () => {}); // resets are part of the game
    sock.on('data', (data) => {
      buf = Buffer.concat([buf, data]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0 || sock.destroyed) return;
        const head = buf.subarray(0, end).toString('latin1');
        const [line, ...fields] = head.split('\r\n');
        const headers = fields.map((f) => {
          const colon = f.indexOf(':');
          return [f.slice(0, colon), f.slice(colon + 1).trim()];
        });
        const cl = headers.find(([n]) => n.toLowerCase() === 'content-length');
        const length = cl ? Number(cl[1]) : 0;
        if (buf.length < end + 4 + length) return;
        const [method, target] = line.split(' ');
        index += 1;
        const req = {
          conn, index, method, target, line, head, headers, body: buf.subarray(end + 4, end + 4 + length),
        };
        buf = buf.subarray(end + 4 + length);
        requests.push(req);
        up.handle(req, sock);
      }
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  up.port = server.address().port;
  up.url = `http://127.0.0.1:${up.port}`;
  return up;
}
