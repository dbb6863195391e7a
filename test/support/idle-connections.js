// Holds COUNT keep-alive connections to TARGET (host:port) open: each sends
// one GET /idle and reads its answer, then stays idle until the process is
// ended. Prints {"held": COUNT} once all are open (opened OPENING at a time).
'use strict';
const net = require('node:net');
const [host, port] = process.env.TARGET.split(':');
const count = Number(process.env.COUNT);
const opening = Number(process.env.OPENING ?? 100);
const sockets = [];
let started = 0;
let held = 0;
let failed = 0;

function openOne() {
  if (started >= count) return;
  started++;
  const s = net.connect({ host, port: Number(port) });
  sockets.push(s);
  let answered = false;
  s.on('connect', () => s.write('GET /idle HTTP/1.1\r\nHost: gearbox-test\r\n\r\n'));
  s.on('data', () => {
    if (answered) return;
    answered = true;
    held++;
    done();
  });
  s.on('error', () => {
    if (!answered) {
      answered = true;
      failed++;
      done();
    }
  });
}

function done() {
  if (held + failed === count) process.stdout.write(`${JSON.stringify({ held, failed })}\n`);
  else openOne();
}

for (let i = 0; i < Math.min(opening, count); i++) openOne();
setInterval(() => {}, 1 << 30);
