'use strict';
// A webhook receiver on 127.0.0.1:0 for the tests (no flaghook in it, so
// that it also runs in a worker thread or a child process).  It checks
// X-Flagsmith-Signature with node's own crypto, not with the library.

const crypto = require('node:crypto');
const http = require('node:http');

function hmacHex(secret, body) {
  return crypto.createHmac('sha256', secret).update(body).digest('hex');
}

/**
 * An HTTP receiver on 127.0.0.1:0.  Records every request (headers, body)
 * and whether X-Flagsmith-Signature is the HMAC of the body under `secret`.
 * options.delayMs holds each answer back; options.status picks the status.
 */
async function receiver(options = {}) {
  const requests = [];
  const waiters = [];
  let answered = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const sig = req.headers['x-flagsmith-signature'];
      const rec = {
        method: req.method,
        url: req.url,
        headers: req.headers,
        body,
        signature: sig,
        signatureOk: options.secret !== undefined && sig === hmacHex(options.secret, body),
      };
      requests.push(rec);
      const answer = () => {
        const status = typeof options.status === 'function' ? options.status(rec) : options.status || 200;
        res.writeHead(status, { 'content-type': 'text/plain' });
        res.end('thanks');
        answered++;
        for (const w of waiters.splice(0)) w();
      };
      if (options.delayMs) setTimeout(answer, options.delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 30000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    requests,
    answered: () => answered,
    /** Resolves once n requests have been answered (rejects after timeoutMs). */
    waitFor(n, timeoutMs = 15000 * Number(process.env.FLAGHOOK_TEST_SLOW || 1)) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (answered >= n) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        const timer = setTimeout(() => reject(new Error(`receiver: ${answered} of ${n} requests`)), timeoutMs);
        check();
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

module.exports = { receiver, hmacHex };
