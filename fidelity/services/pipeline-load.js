// Fidelity load generator with HTTP/1.1 pipelining: each of CONCURRENCY
// workers keeps one connection and writes DEPTH requests in one write before
// reading their DEPTH responses. Same ground-truth lines as load.js.
'use strict';
const net = require('node:net');
const [host, port] = process.env.TARGET.split(':');
const total = Number(process.env.TOTAL);
const concurrency = Number(process.env.CONCURRENCY);
const depth = Number(process.env.DEPTH ?? 2);
const prefix = process.env.PREFIX ?? 'q';
let next = 0;
let ok = 0;
let failed = 0;

/** Reads `n` HTTP responses with Content-Length from the socket; resolves with their status codes. */
function readResponses(sock, n) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const statuses = [];
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        statuses.push(Number(head.split(' ')[1]));
        buf = buf.subarray(end + 4 + len);
        if (statuses.length === n) {
          sock.off('data', onData);
          resolve(statuses);
          return;
        }
      }
    };
    sock.on('data', onData);
    sock.once('close', () => resolve(statuses));
  });
}

async function worker() {
  const sock = net.connect(Number(port), host);
  await new Promise((r) => sock.once('connect', r));
  while (next < total) {
    const ids = [];
    while (ids.length < depth && next < total) ids.push(`${prefix}${next++}`);
    const done = readResponses(sock, ids.length);
    sock.write(ids.map((id) => `GET /r/${id} HTTP/1.1\r\nHost: ${host}\r\n\r\n`).join(''));
    const statuses = await done;
    ids.forEach((id, i) => {
      if (statuses[i] === 200) ok++;
      else failed++;
      process.stdout.write(`${JSON.stringify({ svc: 'client', in: null, out: [id], status: statuses[i] ?? 0 })}\n`);
    });
  }
  sock.end();
}

Promise.all(Array.from({ length: concurrency }, worker)).then(() => {
  process.stdout.write(`${JSON.stringify({ summary: true, ok, failed })}\n`);
});
