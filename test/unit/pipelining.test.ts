/** HTTP/1.1 pipelining: derived ids (shared with the kernel), client-side split, server-side pipelined exchanges. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { derivePipelined, PIPELINE_MIX } from '../../src/trace/pipelining';
import { buildSpans } from '../../src/export/span-builder';
import { WallClock } from '../../src/events/clock';
import { decodeEvent } from '../../src/events/decoder';
import { Direction, Flag, Role, EV } from '../../src/events/layout';
import { Correlator, type Exchange } from '../../src/trace/correlator';
import { buildRecord, view } from '../support/event-builder';

const ROOT = path.resolve(__dirname, '..', '..', '..');

test('the mixing constant is the one in bpf/gearbox.h', () => {
  const h = fs.readFileSync(path.join(ROOT, 'bpf', 'gearbox.h'), 'utf8');
  const m = /#define GB_PIPELINE_MIX (0x[0-9a-f]+)ULL/i.exec(h);
  assert.ok(m, 'GB_PIPELINE_MIX not found in gearbox.h');
  assert.equal(BigInt(m[1]), PIPELINE_MIX);
});

test('derived ids: k = 0 is the identity, k >= 1 XORs every 8-byte word with MIX*k (little-endian)', () => {
  const base = { traceId: '00000000000000000000000000000000', spanId: '0000000000000000' };
  assert.deepEqual(derivePipelined('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 0), {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
  });
  // MIX*1 = 0x9e3779b97f4a7c15 -> little-endian bytes 15 7c 4a 7f b9 79 37 9e
  assert.deepEqual(derivePipelined(base.traceId, base.spanId, 1), { traceId: '157c4a7fb979379e157c4a7fb979379e', spanId: '157c4a7fb979379e' });
  // MIX*2 mod 2^64 = 0x3c6ef372fe94f82a
  assert.equal(derivePipelined(base.traceId, base.spanId, 2).spanId, '2af894fe72f36e3c');
});

const clock = new WallClock({ eventNs: () => 0n, realtimeNs: () => 1_700_000_000_000_000_000n, wholeSecondOffset: false });
const resource = resourceFromAttributes({ 'service.name': 'client' });
const get = (p: string) => `GET ${p} HTTP/1.1\r\nHost: a\r\n\r\n`;
const ok = (b: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${b.length}\r\n\r\n${b}`;

test('a client exchange holding two pipelined requests becomes two spans with derived ids', () => {
  const ex: Exchange = {
    connId: 1,
    role: Role.GB_ROLE_CLIENT,
    tuple: { localAddr: '10.0.0.1', localPort: 40000, remoteAddr: '10.0.0.2', remotePort: 8080 },
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    parentSpanId: '',
    flags: Flag.GB_F_SAMPLED,
    request: { seq: 1, startNs: 10, endNs: 10, bytes: 60, events: 1, head: Buffer.from(get('/one') + get('/two')), sawStart: true, pid: 1, tid: 1 },
    response: { seq: 2, startNs: 20, endNs: 30, bytes: 80, events: 2, head: Buffer.from(ok('1') + ok('22')), sawStart: true, pid: 1, tid: 1 },
    endReason: 'complete',
  };
  const spans = buildSpans(ex, resource, clock);
  assert.equal(spans.length, 2);
  assert.deepEqual(
    spans.map((s) => s.attributes['url.path']),
    ['/one', '/two'],
  );
  assert.equal(spans[0].spanContext().spanId, '00f067aa0ba902b7');
  assert.deepEqual(
    { t: spans[1].spanContext().traceId, s: spans[1].spanContext().spanId },
    { t: derivePipelined(ex.traceId, ex.spanId, 1).traceId, s: derivePipelined(ex.traceId, ex.spanId, 1).spanId },
  );
  assert.equal(spans[1].parentSpanContext, undefined);
  assert.deepEqual(
    spans.map((s) => s.attributes['http.response.status_code']),
    [200, 200],
  );
});

test('a pipelined request event opens its own server exchange named from the shared read', () => {
  const out: Exchange[] = [];
  const c = new Correlator((e) => out.push(e));
  const srv = { connId: 5, role: Role.GB_ROLE_SERVER };
  const push = (spec: Parameters<typeof buildRecord>[0], idx = 0) => {
    const rec = buildRecord(spec);
    rec.writeUInt16LE(idx, EV.pipeline_idx.offset);
    c.push(decodeEvent(...view(rec)));
  };
  push({ ...srv, msgSeq: 1, tsNs: 10, direction: Direction.GB_DIR_RECV, payload: get('/one') + get('/two'), spanId: '1111111111111111' });
  push({ ...srv, msgSeq: 2, tsNs: 20, direction: Direction.GB_DIR_SEND, payload: ok('1'), spanId: '1111111111111111' });
  // The kernel's virtual request for the second one: no data of its own.
  push(
    {
      ...srv,
      msgSeq: 3,
      tsNs: 25,
      direction: Direction.GB_DIR_RECV,
      flags: Flag.GB_F_SAMPLED | Flag.GB_F_MSG_START | Flag.GB_F_PIPELINED,
      bytes: 0,
      spanId: '2222222222222222',
    },
    1,
  );
  push({ ...srv, msgSeq: 4, tsNs: 30, direction: Direction.GB_DIR_SEND, payload: ok('22'), spanId: '2222222222222222' });
  c.flush();
  assert.equal(out.length, 2);
  assert.equal(out[1].pipelineIndex, 1);
  assert.equal(out[1].request.head?.toString(), get('/two'));
  assert.equal(out[1].spanId, '2222222222222222');
});
