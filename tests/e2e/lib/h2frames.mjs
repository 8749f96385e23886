// SPDX-License-Identifier: Apache-2.0
// Hand-built HTTP/2 (RFC 9113) for the flood proofs of issue 11: node:http2 will not send a
// CONTINUATION flood, a rapid reset or more streams than the server allows, so these are frames
// written byte by byte, with an HPACK (RFC 7541) encoder of literals and indexed references (no
// Huffman coding), over a TLS connection that negotiated h2 by ALPN. Answers are read as frames;
// their header blocks are not decoded, except that a block starting with 0x88 (static index 8)
// is ":status 200", as every encoder writes it.
//
//   const c = await h2connect(address, ca);              // preface and SETTINGS sent
//   c.write(headers(1, requestBlock({ path: '/x', headers: [['api-token', key]] }), { endStream: true }));
//   await c.waitFor(() => c.frames.some((f) => f.type === T.HEADERS && f.stream === 1), 5000);
//   c.goaway (the GOAWAY frame received, or null), c.closed(), c.destroy()

import tls from 'node:tls';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const T = {
  DATA: 0, HEADERS: 1, PRIORITY: 2, RST_STREAM: 3, SETTINGS: 4, PUSH_PROMISE: 5, PING: 6, GOAWAY: 7,
  WINDOW_UPDATE: 8, CONTINUATION: 9,
};
export const F = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 };
export const E = { NO_ERROR: 0, PROTOCOL_ERROR: 1, CANCEL: 8, REFUSED_STREAM: 7, ENHANCE_YOUR_CALM: 11 };
export const SETTINGS = { HEADER_TABLE_SIZE: 1, MAX_CONCURRENT_STREAMS: 3, INITIAL_WINDOW_SIZE: 4, MAX_HEADER_LIST_SIZE: 6 };

/** One frame: the 9-byte header, then the payload. */
export function frame(type, flags, stream, payload = Buffer.alloc(0)) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

export function settings(pairs = []) {
  const p = Buffer.alloc(6 * pairs.length);
  pairs.forEach(([id, value], i) => {
    p.writeUInt16BE(id, 6 * i);
    p.writeUInt32BE(value, 6 * i + 2);
  });
  return frame(T.SETTINGS, 0, 0, p);
}

export function rstStream(stream, code = E.CANCEL) {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(T.RST_STREAM, 0, stream, p);
}

export function windowUpdate(stream, increment) {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(increment);
  return frame(T.WINDOW_UPDATE, 0, stream, p);
}

export function headers(stream, block, { endStream = false, endHeaders = true } = {}) {
  return frame(T.HEADERS, (endStream ? F.END_STREAM : 0) | (endHeaders ? F.END_HEADERS : 0), stream, block);
}

export function continuation(stream, block, { endHeaders = false } = {}) {
  return frame(T.CONTINUATION, endHeaders ? F.END_HEADERS : 0, stream, block);
}

// ---- HPACK ----

/** An integer with an N-bit prefix; `first` holds the pattern bits above the prefix. */
export function hpackInt(value, prefixBits, first = 0) {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** A string literal without Huffman coding. */
export function hpackString(text) {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([hpackInt(bytes.length, 7, 0), bytes]);
}

/** An indexed field (static 1..61, dynamic from 62): one byte below 127. */
export function indexed(index) {
  return hpackInt(index, 7, 0x80);
}

/**
 * A literal field. nameIndex: a table index for the name (0: the name is written out). index:
 * true adds it to the dynamic table (incremental indexing, where it becomes index 62).
 */
export function literal(name, value, { index = false, nameIndex = 0 } = {}) {
  const prefix = index ? hpackInt(nameIndex, 6, 0x40) : hpackInt(nameIndex, 4, 0x00);
  return Buffer.concat([prefix, nameIndex ? Buffer.alloc(0) : hpackString(name), hpackString(value)]);
}

/** A request's header block: GET https by default, every field a literal that is not indexed. */
export function requestBlock({
  method = 'GET', path = '/', authority = 'localhost', headers: fields = [],
} = {}) {
  const parts = [
    method === 'GET' ? indexed(2) : method === 'POST' ? indexed(3) : literal(':method', method, { nameIndex: 2 }),
    indexed(7), // :scheme https
    literal(':path', path, { nameIndex: 4 }),
    literal(':authority', authority, { nameIndex: 1 }),
    ...fields.map(([n, v]) => literal(n, v)),
  ];
  return Buffer.concat(parts);
}

// ---- the connection ----

/**
 * A TLS connection to address (host:port) negotiating h2, the client preface and SETTINGS
 * (`settingsPairs`) sent; server SETTINGS are acknowledged. Resolves to { sock, frames (every
 * frame received, payloads included), goaway, serverSettings (Map), write(buf) (resolves false
 * once the connection is gone), waitFor(pred, timeoutMs) (true, or false on timeout), closed(),
 * destroy() }.
 */
export async function h2connect(address, ca, { settingsPairs = [] } = {}) {
  const colon = address.lastIndexOf(':');
  const sock = tls.connect({
    host: address.slice(0, colon), port: Number(address.slice(colon + 1)), ca, servername: 'localhost', ALPNProtocols: ['h2'],
  });
  await new Promise((resolve, reject) => {
    sock.once('secureConnect', resolve);
    sock.once('error', reject);
  });
  if (sock.alpnProtocol !== 'h2') throw new Error(`ALPN chose ${sock.alpnProtocol}, not h2`);
  let buf = Buffer.alloc(0);
  let isClosed = false;
  const waiters = new Set();
  const c = {
    sock,
    frames: [],
    goaway: null,
    serverSettings: new Map(),
    closed: () => isClosed,
    destroy: () => sock.destroy(),
    write: (bytes) => new Promise((resolve) => {
      if (isClosed) return resolve(false);
      if (sock.write(bytes)) return resolve(true);
      const go = () => {
        sock.off('drain', go);
        sock.off('close', go);
        resolve(!isClosed);
      };
      sock.on('drain', go);
      sock.on('close', go);
      return undefined;
    }),
    waitFor: (pred, timeoutMs = 5000) => new Promise((resolve) => {
      const check = () => {
        if (!pred()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        resolve(false);
      }, timeoutMs);
      waiters.add(check);
      check();
    }),
    /** The frames of one stream. */
    of: (stream) => c.frames.filter((f) => f.stream === stream),
    /** Whether the stream was answered ":status 200". */
    ok200: (stream) => c.frames.some((f) => f.stream === stream && f.type === T.HEADERS && f.payload[f.flags & 0x8 ? 1 : 0] === 0x88),
    /** The RST_STREAM code the server sent for the stream, or null. */
    resetCode: (stream) => {
      const f = c.frames.find((x) => x.stream === stream && x.type === T.RST_STREAM);
      return f ? f.payload.readUInt32BE(0) : null;
    },
  };
  const poke = () => {
    for (const w of waiters) w();
  };
  sock.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 9) {
      const length = buf.readUIntBE(0, 3);
      if (buf.length < 9 + length) break;
      const f = {
        type: buf[3], flags: buf[4], stream: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + length),
      };
      buf = buf.subarray(9 + length);
      c.frames.push(f);
      if (f.type === T.SETTINGS && !(f.flags & F.ACK)) {
        for (let i = 0; i + 6 <= f.payload.length; i += 6) c.serverSettings.set(f.payload.readUInt16BE(i), f.payload.readUInt32BE(i + 2));
        if (!isClosed) sock.write(frame(T.SETTINGS, F.ACK, 0));
      }
      if (f.type === T.GOAWAY) {
        c.goaway = { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
      }
    }
    poke();
  });
  for (const ev of ['end', 'close', 'error']) {
    sock.on(ev, () => {
      isClosed = true;
      poke();
    });
  }
  sock.write(Buffer.concat([PREFACE, settings(settingsPairs)]));
  return c;
}
