// Fidelity test service (Node.js, one event loop). Ordinary code with no
// tracing: for GET /r/<id> it calls every downstream with GET /r/<id>.<NAME><i>
// through a keep-alive agent (in parallel when MODE=fanout, else one after
// another) and logs one ground-truth line: {"svc","in","out":[...]}.
'use strict';
const http = require('node:http');
const NAME = process.env.NAME;
const DOWNSTREAMS = (process.env.DOWNSTREAMS ?? '').split(',').filter(Boolean);
const MODE = process.env.MODE ?? 'sequential';
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(process.env.MAX_SOCKETS ?? 16) });

function call(d, path) {
  const [host, port] = d.split(':');
  return new Promise((resolve) => {
    const req = http.get({ host, port: Number(port), path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
  });
}

http
  .createServer(async (req, res) => {
    const rid = req.url.split('/').pop();
    const outs = DOWNSTREAMS.map((_, i) => `${rid}.${NAME}${i}`);
    let statuses;
    if (MODE === 'fanout') statuses = await Promise.all(DOWNSTREAMS.map((d, i) => call(d, `/r/${outs[i]}`)));
    else {
      statuses = [];
      for (let i = 0; i < DOWNSTREAMS.length; i++) statuses.push(await call(DOWNSTREAMS[i], `/r/${outs[i]}`));
    }
    const body = `${NAME}:${rid}`;
    res.writeHead(statuses.every((s) => s === 200) ? 200 : 502, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    process.stdout.write(`${JSON.stringify({ svc: NAME, in: rid, out: outs })}\n`);
  })
  .listen(Number(process.env.PORT), '0.0.0.0', () => console.log(`ready on ${process.env.PORT}`));
