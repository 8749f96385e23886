// SPDX-License-Identifier: Apache-2.0
// A raw TCP upstream for the tests of the gateway's upstream exchange: node:net, so every byte of
// every answer is the test's own and no HTTP library quietly fixes framing up. It reads the
// gateway's requests (a head, then a Content-Length or chunked body: a gateway that streams a
// body of unknown length sends it chunked) and hands each to the current handler, which writes
// whatever bytes it wants, or nothing. Every byte received is kept too, so that a test can say
// exactly what never arrived (a smuggled request) or what arrived before a body was complete.
//
//   const up = await startRawUpstream();
//   up.handle = (req, sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
//   req: { conn, index, method, target, head, headers: [[name, value], ...] as sent, body }
//        conn is the connection's number (1, 2, ... in accept order), index the request's on it
//   up.requests          every request read, in order
//   up.accepted()        connections accepted since the start
//   up.isClosed(conn)    whether connection number conn has closed (either side)
//   up.dropAll()         destroys every open connection (empties the gateway's pool)
//   up.raw()             every byte received, on every connection, as one Buffer (accept order)
//   up.receivedBytes()   how many bytes were received in all
//   await up.close()

import net from 'node:net';

export async function startRawUpstream() {
  const requests = [];
  const sockets = new Set();
  const closed = new Set();
  const rawByConn = [];
  let receivedBytes = 0;
  let accepted = 0;

  const up = {
    requests,
    port: 0,
    url: '',
    /** (req, sock) => void; the default answers 200 "ok" and keeps the connection. */
    handle: (req, sock) => sock.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    accepted: () => accepted,
    isClosed: (conn) => closed.has(conn),
    raw: () => Buffer.concat(rawByConn.flat()),
    receivedBytes: () => receivedBytes,
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
    const raw = [];
    rawByConn.push(raw);
    sockets.add(sock);
    sock.setNoDelay(true); // each write its own segment, so the gateway reads answers in pieces
    sock.on('close', () => {
      sockets.delete(sock);
      closed.add(conn);
    });
    sock.on('error', () => {}); // resets are part of the game
    sock.on('data', (data) => {
      raw.push(data);
      receivedBytes += data.length;
      buf = buf.length === 0 ? data : Buffer.concat([buf, data]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0 || sock.destroyed) return;
        const head = buf.subarray(0, end).toString('latin1');
        const [line, ...fields] = head.split('\r\n');
        const headers = fields.map((f) => {
          const colon = f.indexOf(':');
          return [f.slice(0, colon), f.slice(colon + 1).trim()];
        });
        const te = headers.find(([n]) => n.toLowerCase() === 'transfer-encoding');
        const cl = headers.find(([n]) => n.toLowerCase() === 'content-length');
        const length = cl ? Number(cl[1]) : 0;
        if (!te && buf.length < end + 4 + length) return;
        const framed = te ? dechunk(buf, end + 4) : { body: buf.subarray(end + 4, end + 4 + length), next: end + 4 + length };
        if (!framed) return;
        if (framed.bad) {
          sock.destroy(); // a gateway that forwards broken framing: the test sees the request missing
          return;
        }
        const { next } = framed;
        const [method, target] = line.split(' ');
        index += 1;
        const req = {
          conn, index, method, target, line, head, headers, body: framed.body,
        };
        buf = buf.subarray(next);
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

/**
 * A chunked body starting at buf[from]: { body, next (the offset after its last CRLF) }, null
 * while it is incomplete, or { bad: true } for a size line that is not hexadecimal. Trailers are skipped; sizes are read as the gateway must write them.
 */
function dechunk(buf, from) {
  const parts = [];
  let at = from;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return null;
    const size = parseInt(buf.subarray(at, eol).toString('latin1').split(';')[0], 16);
    if (Number.isNaN(size)) return { bad: true };
    at = eol + 2;
    if (size === 0) {
      // trailers, then an empty line
      for (;;) {
        const tEol = buf.indexOf('\r\n', at);
        if (tEol < 0) return null;
        const empty = tEol === at;
        at = tEol + 2;
        if (empty) return { body: Buffer.concat(parts), next: at };
      }
    }
    if (buf.length < at + size + 2) return null;
    parts.push(buf.subarray(at, at + size));
    at += size + 2;
  }
}
