// SPDX-License-Identifier: Apache-2.0
// An upstream service for the gateway tests: an HTTP server on 127.0.0.1 (ephemeral port) that
// answers every request with JSON describing what it received, so tests can check what the
// gateway forwarded. It can be told to misbehave the ways real upstreams do.
//
//   const up = await startUpstream();
//   up.url                                   // http://127.0.0.1:<port>
//   up.setMode('hang');                      // 'echo' | 'hang' | 'reset' | 'truncate' | 'status' | 'delay'
//   up.setMode('status', { status: 502 });   // answer that status (echo body) itself
//   up.setMode('delay', { ms: 800 });        // echo, but only after that long
//   up.requests                              // every request received: { method, path, query, headers, body }
//   await up.close();
//
// 'hang' reads the request and never answers; 'reset' reads it and destroys the connection before
// answering; 'truncate' sends a head promising 100 bytes, sends 10, then destroys the connection.

import http from 'node:http';
import https from 'node:https';

/**
 * Starts the upstream. options.mode: the first mode ('echo'); options.tls: { cert, key } to serve
 * https instead (the url then starts with https://, options.host names the host in it).
 */
export async function startUpstream(options = {}) {
  let mode = options.mode ?? 'echo';
  let modeOptions = {};
  let accepted = 0;
  const requests = [];
  const sockets = new Set();

  const handler = (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const [path, ...rest] = (req.url ?? '/').split('?');
      const seen = {
        method: req.method,
        path,
        query: rest.length > 0 ? rest.join('?') : null,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(seen);
      answer(req, res, seen);
    });
  };
  const server = options.tls ? https.createServer(options.tls, handler) : http.createServer(handler);
  server.keepAliveTimeout = 5000;

  function answer(req, res, seen) {
    switch (mode) {
      case 'hang':
        return; // never answers; close() destroys the socket
      case 'reset':
        req.socket.destroy();
        return;
      case 'truncate':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"partial":');
        setTimeout(() => req.socket.destroy(), 50);
        return;
      case 'delay':
        setTimeout(() => echo(req, res, seen, 200), modeOptions.ms ?? 1000);
        return;
      default:
        echo(req, res, seen, mode === 'status' ? (modeOptions.status ?? 200) : 200);
    }
  }

  function echo(req, res, seen, status) {
    const body = JSON.stringify(seen);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...(modeOptions.headers ?? {}),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  server.on('connection', (s) => {
    accepted += 1;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address();

  return {
    port,
    url: `${options.tls ? 'https' : 'http'}://${options.host ?? '127.0.0.1'}:${port}`,
    requests,
    /** The last request received (undefined when none). */
    last() {
      return requests[requests.length - 1];
    },
    setMode(m, opts = {}) {
      mode = m;
      modeOptions = opts;
    },
    /** Connections open now (keep-alive ones from the gateway included). */
    connections() {
      return sockets.size;
    },
    /** Connections accepted since the start. */
    accepted() {
      return accepted;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
