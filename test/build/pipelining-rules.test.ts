/**
 * The kernel's count of pipelined HTTP requests (bpf/pipelining.h, compiled
 * here for user space) and the agent's split of a request message
 * (src/protocols/http1.ts) agree on every head: seeded random heads made of
 * request lines, header lines, blank lines, bodies and noise, cut anywhere.
 * The client's agent derives the ids of the requests it splits off; the
 * server's kernel derives ids for the requests it counts: a disagreement
 * would be spans on one host without their peers on the other. Needs the
 * build's C compiler (clang), like the build itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { countPipelinedRequests, splitPipelinedRequests } from '../../src/protocols/http1';
import { PAYLOAD_MAX } from '../../src/events/layout';
import { seededRandom } from '../support/seeded-random';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SEED = 20261208;
const HEADS = 200_000;

const PIECES = [
  'GET /a HTTP/1.1\r\n',
  'POST /items HTTP/1.1\r\n',
  'PUT /x HTTP/1.0\r\n',
  'PATCH /y HTTP/1.1\r\n',
  'HEAD / HTTP/1.1\r\n',
  'DELETE /z HTTP/1.1\r\n',
  'OPTIONS * HTTP/1.1\r\n',
  'CONNECT h:443 HTTP/1.1\r\n',
  'GETX / HTTP/1.1\r\n',
  'PO',
  'Host: b\r\n',
  'Content-Length: 3\r\n',
  'Transfer-Encoding: chunked\r\n',
  '\r\n',
  '\r\n\r\n',
  'abc',
  '\r',
  '\n',
  'G',
  'GE',
  'HTTP/1.1 200 OK\r\n',
];

function randomHead(r: () => number): Buffer {
  const parts: string[] = [];
  const n = 1 + Math.floor(r() * 14);
  for (let i = 0; i < n; i++) parts.push(PIECES[Math.floor(r() * PIECES.length)]);
  let buf = Buffer.from(parts.join(''), 'latin1');
  if (r() < 0.3) buf = Buffer.concat([buf, Buffer.from(Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 256)))]);
  return buf.subarray(0, Math.min(buf.length, PAYLOAD_MAX, r() < 0.5 ? buf.length : Math.floor(r() * (buf.length + 1))));
}

test(`the kernel's pipelining count and the agent's split agree on ${HEADS} random heads`, (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gearbox-pipelining-'));
  try {
    const bin = path.join(dir, 'pipelined-count');
    execFileSync('clang', ['-O2', '-Wall', '-Werror', '-I', path.join(ROOT, 'bpf'), path.join(ROOT, 'test', 'support', 'pipelined-count.c'), '-o', bin]);
    const r = seededRandom(SEED);
    const heads = Array.from({ length: HEADS }, () => randomHead(r));
    const input = Buffer.concat(heads.flatMap((h) => [Buffer.from([h.length & 0xff, h.length >> 8]), h]));
    const kernel = execFileSync(bin, { input, maxBuffer: 64 << 20, encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
    assert.equal(kernel.length, HEADS);
    let pipelined = 0;
    for (const [i, head] of heads.entries()) {
      const agent = splitPipelinedRequests(head).length;
      const kernelRequests = head.length === 0 ? 0 : 1 + kernel[i];
      if (agent !== kernelRequests)
        assert.fail(`head ${i} (seed ${SEED}) ${JSON.stringify(head.toString('latin1'))}: kernel ${kernelRequests} requests, agent ${agent}`);
      assert.equal(countPipelinedRequests(head), agent);
      if (agent > 1) pipelined++;
    }
    t.diagnostic(
      `${HEADS} heads, ${pipelined} with pipelined requests (up to ${kernel.reduce((m, x) => Math.max(m, x), 0) + 1} in one head): the same count on both sides`,
    );
    assert.ok(pipelined > HEADS / 50, 'the inputs exercise pipelining');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
