// Fidelity load generator: TOTAL requests GET /r/<id> to TARGET with
// CONCURRENCY workers, each on its own keep-alive connection. Logs the ids it
// sent as ground truth ({"svc":"client","in":null,"out":[id]}) and a summary.
'use strict';
const http = require('node:http');
const [host, port] = process.env.TARGET.split(':');
const total = Number(process.env.TOTAL);
const concurrency = Number(process.env.CONCURRENCY);
const prefix = process.env.PREFIX ?? 'q';
// WARMUP requests per worker first (ids w<n>, not ground truth), then wait for
// WAIT_FILE to exist: the connections are open before the agent starts.
const warmup = Number(process.env.WARMUP ?? 0);
const waitFile = process.env.WAIT_FILE;
const fs = require('node:fs');
let next = 0;
let ok = 0;
let failed = 0;

function get(agent, id) {
  return new Promise((resolve) => {
    const req = http.get({ host, port: Number(port), path: `/r/${id}`, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.setTimeout(15000, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
  });
}

let warmed = 0;
async function worker(_, w) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < warmup; i++) await get(agent, `w${w}x${i}`);
  if (waitFile) {
    if (++warmed === concurrency) process.stdout.write(`${JSON.stringify({ warm: true })}\n`);
    while (!fs.existsSync(waitFile)) await new Promise((r) => setTimeout(r, 50));
  }
  while (next < total) {
    const id = `${prefix}${next++}`;
    const status = await get(agent, id);
    if (status === 200) ok++;
    else failed++;
    process.stdout.write(`${JSON.stringify({ svc: 'client', in: null, out: [id], status })}\n`);
  }
  agent.destroy();
}

Promise.all(Array.from({ length: concurrency }, worker)).then(() => {
  process.stdout.write(`${JSON.stringify({ summary: true, ok, failed })}\n`);
});
