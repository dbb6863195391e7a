/**
 * Fuzzing: the event decoder and every protocol parser take 10^6 random and
 * mutated inputs. The decoder may only refuse with DecodeError (which the
 * agent counts); the parsers never throw; memory stays flat.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEvent, DecodeError } from '../../src/events/decoder';
import { EV, EventType, STRUCTS } from '../../src/events/layout';
import { parseHttpRequest, parseHttpResponse, splitPipelinedRequests, splitResponses } from '../../src/protocols/http1';
import { parseRedisCommand, parseRedisReply } from '../../src/protocols/redis';
import { expectedResponseBytes, identify } from '../../src/protocols';
import { buildRecord } from '../support/event-builder';
import { seededRandom } from '../support/seeded-random';

function mutate(base: Buffer, r: () => number): Buffer {
  const b = Buffer.from(base);
  const edits = 1 + Math.floor(r() * 8);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(r() * b.length);
    const what = r();
    if (what < 0.6) b[at] = Math.floor(r() * 256);
    else if (what < 0.8) b[at] = [0, 0xff, 0x0d, 0x0a, 0x3a, 0x20][Math.floor(r() * 6)];
    else b.fill(0, at, Math.min(b.length, at + Math.floor(r() * 16)));
  }
  const cut = r() < 0.3 ? Math.floor(r() * b.length) : b.length;
  return b.subarray(0, cut);
}

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const N = 1_000_000;

test(`decoder: ${N} random and mutated records refuse only with DecodeError`, () => {
  const r = seededRandom(SEED);
  const samples = [
    buildRecord({ msgSeq: 1, connId: 7, tsNs: 1, payload: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' }),
    buildRecord({ msgSeq: 2, connId: 7, tsNs: 2, bytes: 10 }),
    buildRecord({ msgSeq: 2, connId: 7, tsNs: 3, type: EventType.GB_EV_CLOSE }),
    (() => {
      const b = Buffer.alloc(STRUCTS.gb_proc_event.size);
      b[EV.type.offset] = EventType.GB_EV_PROC;
      return b;
    })(),
  ];
  let refused = 0;
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < N; i++) {
    const base = samples[i % samples.length];
    const rec = r() < 0.1 ? Buffer.from(Array.from({ length: Math.floor(r() * 400) }, () => Math.floor(r() * 256))) : mutate(base, r);
    try {
      decodeEvent(rec, new DataView(rec.buffer, rec.byteOffset, rec.byteLength), 0, rec.length);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw new Error(`input ${i} (seed ${SEED}) escaped as ${(e as Error).stack}`, { cause: e });
      refused++;
    }
  }
  const growth = process.memoryUsage().heapUsed - before;
  assert.ok(refused > 0 && refused < N, `refused ${refused}`);
  assert.ok(growth < 64 * 1024 * 1024, `heap grew ${growth} bytes`);
});

test(`protocol parsers: ${N} random and mutated heads never throw`, () => {
  const r = seededRandom(SEED + 1);
  const samples = [
    'GET /a/b?c=d HTTP/1.1\r\nHost: api\r\nUser-Agent: x\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhelloHTTP/1.1 204 No\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n',
    '*2\r\n$1\r\na\r\n*2\r\n:1\r\n%1\r\n+k\r\n$-1\r\n',
    '-ERR wrong\r\n',
  ].map((s) => Buffer.from(s, 'latin1'));
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < N; i++) {
    const a = mutate(samples[i % samples.length], r);
    const b = mutate(samples[(i * 7 + 1) % samples.length], r);
    try {
      parseHttpRequest(a);
      parseHttpResponse(a);
      parseRedisCommand(a);
      parseRedisReply(a);
      splitPipelinedRequests(a);
      splitResponses(a, 4);
      identify(a, b);
      expectedResponseBytes(identify(a, b));
    } catch (e) {
      throw new Error(`input ${i} (seed ${SEED}) threw: ${(e as Error).stack}\n${JSON.stringify(a.toString('latin1'))}`, { cause: e });
    }
  }
  const growth = process.memoryUsage().heapUsed - before;
  assert.ok(growth < 64 * 1024 * 1024, `heap grew ${growth} bytes`);
});
