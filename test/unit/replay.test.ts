/** The correlator on events recorded from the real kernel (see test/fixtures/recorded). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { decodeEvent } from '../../src/events/decoder';
import { Role } from '../../src/events/layout';
import { forEachRecord, encodeRecords, ReplayFormatError } from '../../src/events/replay';
import { Correlator, type Exchange } from '../../src/trace/correlator';
import { identify } from '../../src/protocols';
import type { HttpRequestHead } from '../../src/protocols/http1';

const DIR = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'recorded');

function replay(file: string): { exchanges: Exchange[]; events: number } {
  const exchanges: Exchange[] = [];
  const c = new Correlator((ex) => exchanges.push(ex));
  const events = forEachRecord(fs.readFileSync(path.join(DIR, file)), (b, v, o, l) => c.push(decodeEvent(b, v, o, l)));
  c.flush();
  return { exchanges, events };
}

test('frontend (Node.js, host 2): 100 server spans, each parent of exactly one client span', () => {
  const { exchanges, events } = replay('frontend-h2.events');
  const servers = exchanges.filter((e) => e.role === Role.GB_ROLE_SERVER);
  const clients = exchanges.filter((e) => e.role === Role.GB_ROLE_CLIENT);
  assert.equal(servers.length, 100, `events: ${events}`);
  assert.equal(clients.length, 100);
  const byId = new Map(servers.map((s) => [s.spanId, s]));
  for (const c of clients) {
    const parent = byId.get(c.parentSpanId);
    assert.ok(parent, `client span ${c.spanId} has no server parent`);
    assert.equal(c.traceId, parent.traceId);
    const pathOf = (e: Exchange) => {
      const v = identify(e.request.head, e.response?.head);
      return v.protocol?.name === 'http' ? (v.request as HttpRequestHead).path : undefined;
    };
    assert.equal(pathOf(c), pathOf(parent), 'the downstream call carries the path of the request it serves');
    assert.ok(c.request.startNs >= parent.request.startNs && (c.response?.endNs ?? 0) <= (parent.response?.endNs ?? 0));
  }
  for (const s of servers) assert.ok(s.parentSpanId, 'every server span has the propagated client span as parent');
  assert.equal(new Set(servers.map((s) => s.traceId)).size, 100);
});

test('backend (Python threads, host 3): each HTTP server span has one Redis client child', () => {
  const { exchanges } = replay('backend-h3.events');
  const servers = exchanges.filter((e) => e.role === Role.GB_ROLE_SERVER);
  const redis = exchanges.filter((e) => e.role === Role.GB_ROLE_CLIENT && identify(e.request.head).protocol?.name === 'redis');
  assert.equal(servers.length, 100);
  assert.equal(redis.length, 100);
  const ids = new Set(servers.map((s) => s.spanId));
  assert.ok(redis.every((r) => ids.has(r.parentSpanId)));
});

test('a replay file of another layout is refused with a clear error', () => {
  assert.throws(() => forEachRecord(Buffer.from('GEARBOX-EVENTS 1 7\n'), () => {}), ReplayFormatError);
  const data = encodeRecords([Buffer.alloc(10)]);
  assert.throws(() => forEachRecord(data.subarray(0, data.length - 3), () => {}), /truncated/);
});
