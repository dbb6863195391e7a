/**
 * The correlator on recorded-style event sequences: split messages,
 * keep-alive, pipelining, close without response, idle, lost first events,
 * and events arriving out of order between CPUs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEvent } from '../../src/events/decoder';
import { Direction, EventType, Role } from '../../src/events/layout';
import { Correlator, type Exchange } from '../../src/trace/correlator';
import { buildRecord, view, type EventSpec } from '../support/event-builder';

const SEND = Direction.GB_DIR_SEND;
const RECV = Direction.GB_DIR_RECV;
const MS = 1_000_000;

function run(specs: EventSpec[], opts = {}) {
  const out: Exchange[] = [];
  const c = new Correlator((ex) => out.push(ex), { reorderNs: 5 * MS, idleNs: 1000 * MS, ...opts });
  for (const s of specs) c.push(decodeEvent(...view(buildRecord(s))));
  return { out, c };
}

const httpReq = (path: string) => `GET ${path} HTTP/1.1\r\nHost: b\r\n\r\n`;
const httpResp = (body: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

/** A client exchange: request seq, response seq+1, each split as given. */
function clientExchange(connId: number, seq: number, t0: number, spanId: string, reqParts: number[], respParts: number[], path = '/x'): EventSpec[] {
  const ev: EventSpec[] = [];
  let t = t0;
  reqParts.forEach((bytes, i) =>
    ev.push({ connId, msgSeq: seq, tsNs: (t += 10), direction: SEND, role: Role.GB_ROLE_CLIENT, bytes, spanId, payload: i === 0 ? httpReq(path) : undefined }),
  );
  const total = respParts.reduce((a, b) => a + b, 0);
  let body = '';
  while (httpResp(body).length < total) body += 'y';
  respParts.forEach((bytes, i) =>
    ev.push({
      connId,
      msgSeq: seq + 1,
      tsNs: (t += 1000),
      direction: RECV,
      role: Role.GB_ROLE_CLIENT,
      bytes,
      spanId,
      payload: i === 0 ? httpResp(body) : undefined,
    }),
  );
  return ev;
}

test('a request split over three writes and a response over four reads is one exchange', () => {
  const total = httpResp('y'.repeat(100)).length;
  const { out, c } = run(clientExchange(1, 1, 1000, 'aaaaaaaaaaaaaaaa', [10, 10, 14], [20, 30, 40, total - 90]));
  c.tick(10 ** 12);
  assert.equal(out.length, 1);
  const ex = out[0];
  assert.equal(ex.request.bytes, 34);
  assert.equal(ex.request.events, 3);
  assert.equal(ex.response?.bytes, total);
  assert.equal(ex.response?.events, 4);
  assert.equal(ex.endReason, 'complete', 'Content-Length says the response is complete');
  assert.equal(ex.request.startNs, 1010);
  assert.equal(ex.response?.endNs, 1030 + 4000);
});

test('keep-alive: three requests on one connection are three exchanges with their own ids', () => {
  const total = httpResp('y'.repeat(5)).length;
  const specs = [
    ...clientExchange(9, 1, 0, '1111111111111111', [30], [total], '/1'),
    ...clientExchange(9, 3, 100_000, '2222222222222222', [30], [total], '/2'),
    ...clientExchange(9, 5, 200_000, '3333333333333333', [30], [total], '/3'),
  ];
  const { out, c } = run(specs);
  c.tick(10 ** 12);
  assert.deepEqual(
    out.map((e) => e.spanId),
    ['1111111111111111', '2222222222222222', '3333333333333333'],
  );
  assert.deepEqual(
    out.map((e) => e.request.head?.toString().split(' ')[1]),
    ['/1', '/2', '/3'],
  );
});

test('without a Content-Length, the next request on the connection ends the previous exchange', () => {
  const chunked = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
  const specs: EventSpec[] = [
    { connId: 3, msgSeq: 1, tsNs: 10, direction: SEND, payload: httpReq('/a'), spanId: 'aaaaaaaaaaaaaaaa' },
    { connId: 3, msgSeq: 2, tsNs: 20, direction: RECV, payload: chunked, spanId: 'aaaaaaaaaaaaaaaa' },
    { connId: 3, msgSeq: 2, tsNs: 30, direction: RECV, bytes: 5, spanId: 'aaaaaaaaaaaaaaaa' },
  ];
  const { out, c } = run(specs);
  c.tick(40);
  assert.equal(out.length, 0, 'still open: the response may go on');
  c.push(decodeEvent(...view(buildRecord({ connId: 3, msgSeq: 3, tsNs: 50, direction: SEND, payload: httpReq('/b'), spanId: 'bbbbbbbbbbbbbbbb' }))));
  c.tick(50 + 10 * MS);
  assert.equal(out.length, 1);
  assert.equal(out[0].endReason, 'next-request');
  assert.equal(out[0].response?.endNs, 30);
});

test('server side with pipelined requests read one by one: one exchange per request', () => {
  // Server reads req1, writes resp1, reads req2, writes resp2 (msg_seq 1..4).
  const srv = (seq: number, dir: number, ts: number, payload: string, spanId: string): EventSpec => ({
    connId: 5,
    msgSeq: seq,
    tsNs: ts,
    direction: dir,
    role: Role.GB_ROLE_SERVER,
    payload,
    spanId,
  });
  const { out, c } = run([
    srv(1, RECV, 10, httpReq('/p1'), '1000000000000001'),
    srv(2, SEND, 20, httpResp('one'), '1000000000000001'),
    srv(3, RECV, 30, httpReq('/p2'), '1000000000000002'),
    srv(4, SEND, 40, httpResp('two'), '1000000000000002'),
  ]);
  c.tick(10 ** 12);
  assert.equal(out.length, 2);
  assert.deepEqual(
    out.map((e) => [e.role, e.spanId, e.endReason]),
    [
      [Role.GB_ROLE_SERVER, '1000000000000001', 'complete'],
      [Role.GB_ROLE_SERVER, '1000000000000002', 'complete'],
    ],
  );
});

test('two pipelined requests in one write stay one exchange whose head holds both', () => {
  const both = httpReq('/a') + httpReq('/b');
  const { out, c } = run([
    { connId: 6, msgSeq: 1, tsNs: 10, direction: SEND, payload: both },
    { connId: 6, msgSeq: 2, tsNs: 20, direction: RECV, payload: httpResp('1') + httpResp('2') },
  ]);
  c.tick(10 ** 12);
  assert.equal(out.length, 1);
  assert.equal(out[0].request.head?.toString(), both);
});

test('close without a response ends the exchange with no response', () => {
  const { out, c } = run([
    { connId: 7, msgSeq: 1, tsNs: 10, direction: SEND, payload: httpReq('/never') },
    { connId: 7, msgSeq: 1, tsNs: 90, type: EventType.GB_EV_CLOSE },
  ]);
  c.tick(90 + 10 * MS);
  assert.equal(out.length, 1);
  assert.equal(out[0].endReason, 'close');
  assert.equal(out[0].response, undefined);
});

test('an exchange with no further activity ends after the idle timeout', () => {
  const { out, c } = run([
    { connId: 8, msgSeq: 1, tsNs: 10, direction: SEND, payload: 'PING\r\n' },
    { connId: 8, msgSeq: 2, tsNs: 20, direction: RECV, payload: '+PONG\r\n' },
  ]);
  // '+PONG' is a complete RESP reply of exactly the bytes read: complete already.
  c.tick(20 + 10 * MS);
  assert.equal(out.length, 1);
  assert.equal(out[0].endReason, 'complete');
  const r2 = run(
    [
      { connId: 9, msgSeq: 1, tsNs: 10, direction: SEND, payload: 'hello' },
      { connId: 9, msgSeq: 2, tsNs: 20, direction: RECV, payload: 'world' },
    ],
    { idleNs: 100 * MS },
  );
  r2.c.tick(50 * MS);
  assert.equal(r2.out.length, 0);
  r2.c.tick(200 * MS);
  r2.c.tick(300 * MS);
  assert.equal(r2.out.length, 1);
  assert.equal(r2.out[0].endReason, 'idle');
});

test('events arriving out of order between CPUs land in the right exchange', () => {
  const total = httpResp('y'.repeat(10)).length;
  const ordered = [
    ...clientExchange(11, 1, 0, 'aaaaaaaaaaaaaaaa', [10, 24], [10, total - 10], '/1'),
    ...clientExchange(11, 3, 50_000, 'bbbbbbbbbbbbbbbb', [34], [total], '/2'),
  ];
  // Swap neighbours inside messages, and let each response overtake its request.
  assert.equal(ordered.length, 6);
  const shuffled = [ordered[2], ordered[1], ordered[0], ordered[3], ordered[5], ordered[4]];
  const { out, c } = run(shuffled);
  c.tick(10 ** 12);
  assert.equal(out.length, 2);
  const [a, b] = out;
  assert.equal(a.spanId, 'aaaaaaaaaaaaaaaa');
  assert.equal(a.request.bytes, 34);
  assert.equal(a.request.startNs, 10, 'start is the earliest event even when it arrived second');
  assert.equal(a.response?.bytes, total);
  assert.equal(b.spanId, 'bbbbbbbbbbbbbbbb');
  assert.equal(b.response?.bytes, total);
  assert.equal(c.stats.lateEvents, 0);
});

test('a request whose first event was lost is still traced and marked incomplete', () => {
  const { out, c } = run([
    { connId: 12, msgSeq: 1, tsNs: 10, direction: SEND, bytes: 30 },
    { connId: 12, msgSeq: 2, tsNs: 20, direction: RECV, bytes: 40 },
    { connId: 12, msgSeq: 2, tsNs: 30, type: EventType.GB_EV_CLOSE },
  ]);
  c.tick(10 ** 12);
  assert.equal(out.length, 1);
  assert.match(out[0].incomplete ?? '', /lost/);
});

test('events after an exchange was emitted are counted as late, not re-opened', () => {
  const total = httpResp('z').length;
  const { out, c } = run(clientExchange(13, 1, 0, 'aaaaaaaaaaaaaaaa', [30], [total]));
  c.tick(20 * MS);
  assert.equal(out.length, 1);
  c.push(decodeEvent(...view(buildRecord({ connId: 13, msgSeq: 2, tsNs: 99, direction: RECV, bytes: 3 }))));
  c.push(decodeEvent(...view(buildRecord({ connId: 13, msgSeq: 1, tsNs: 98, direction: SEND, bytes: 3 }))));
  assert.equal(c.stats.lateEvents, 2);
  assert.equal(out.length, 1);
});

test('a response with no request seen (connection opened before the agent) is an orphan', () => {
  const { out, c } = run([{ connId: 14, msgSeq: 6, tsNs: 10, direction: RECV, payload: httpResp('x'), role: Role.GB_ROLE_CLIENT }]);
  c.flush();
  assert.equal(out.length, 0);
  assert.equal(c.stats.orphanResponses, 1);
});

test('connection table is bounded: the oldest connection is evicted and its exchange ended', () => {
  const specs: EventSpec[] = [];
  for (let i = 0; i < 5; i++) specs.push({ connId: 100 + i, msgSeq: 1, tsNs: 10 + i, direction: SEND, payload: httpReq(`/${i}`) });
  const { out, c } = run(specs, { maxConnections: 3 });
  assert.equal(c.stats.evictedConnections, 2);
  c.tick(10 ** 12);
  assert.deepEqual(
    out.filter((e) => e.endReason === 'evicted').map((e) => e.connId),
    [100, 101],
  );
});

test('closed connections are dropped from the table even when nothing else ends', () => {
  const total = httpResp('ok').length;
  const { c } = run([...clientExchange(21, 1, 0, 'aaaaaaaaaaaaaaaa', [30], [total]), { connId: 21, msgSeq: 2, tsNs: 5000, type: EventType.GB_EV_CLOSE }]);
  c.tick(10 * MS);
  c.tick(20 * MS);
  assert.equal(c.stats.connections, 0);
});

test('events lost to a full ring buffer: the exchange they belonged to is marked incomplete, with the count', () => {
  // Exchange 1 (seq 1/2): the response's second event was lost (the next
  // event, a new request start, reports connLost 1). Exchange 2 (seq 3/4):
  // two events of its response lost, seen on its last response event.
  // Exchange 3 (seq 5/6): nothing lost.
  const ex1 = clientExchange(21, 1, 0, 'a000000000000001', [30], [60, 40]); // response of 100 bytes in two events
  ex1.pop(); // lost in the kernel
  const ex2 = clientExchange(21, 3, 10 * MS, 'a000000000000002', [30], [50, 25, 25, 20]).map((e) => ({ ...e, connLost: 1 }));
  ex2.splice(2, 2); // two response events lost
  ex2[ex2.length - 1].connLost = 3;
  const ex3 = clientExchange(21, 5, 20 * MS, 'a000000000000003', [30], [60]).map((e) => ({ ...e, connLost: 3 }));
  const { out, c } = run([...ex1, ...ex2, ...ex3]);
  c.flush();
  const bySpan = new Map(out.map((e) => [e.spanId, e]));
  assert.equal(bySpan.get('a000000000000001')?.lostEvents, 1);
  assert.match(bySpan.get('a000000000000001')?.incomplete ?? '', /ring buffer/);
  assert.equal(bySpan.get('a000000000000002')?.lostEvents, 2);
  assert.equal(bySpan.get('a000000000000003')?.lostEvents, undefined);
  assert.equal(bySpan.get('a000000000000003')?.incomplete, undefined);
  assert.equal(c.stats.incompleteExchanges, 2);
  assert.equal(c.stats.lostUnattributed, 0);
});

test('events lost just before a close are charged to the last exchange', () => {
  const ex = clientExchange(22, 1, 0, 'b000000000000001', [30], [60, 40]);
  ex.pop();
  const { out, c } = run([...ex, { type: EventType.GB_EV_CLOSE, connId: 22, msgSeq: 2, tsNs: 5 * MS, connLost: 1 }]);
  c.flush();
  assert.equal(out[0].lostEvents, 1);
});

test('an exchange whose request events were all lost is still reported, incomplete, timed from its response', () => {
  const ex = clientExchange(23, 1, 0, 'c000000000000001', [30], [60]).map((e) => ({ ...e, connLost: 1 }));
  ex.shift(); // the request's only event was lost
  const { out, c } = run(ex);
  c.flush();
  assert.equal(out.length, 1);
  assert.equal(out[0].spanId, 'c000000000000001');
  assert.equal(out[0].request.startNs, out[0].response?.startNs);
  assert.match(out[0].incomplete ?? '', /request not seen/);
  assert.equal(c.stats.orphanResponses, 0);
});

test('a late event from another CPU with an older lost count marks nothing', () => {
  const ex = clientExchange(24, 1, 0, 'd000000000000001', [30], [60, 40]);
  ex[1].connLost = 2; // response start: two request events lost
  ex[2].connLost = 1; // older count, arrived late
  const { out, c } = run(ex);
  c.flush();
  assert.equal(out[0].lostEvents, 2);
});

/** A long message on another connection: `n` events from `fromNs`, `stepNs` apart. */
function otherTraffic(n: number, fromNs: number, stepNs: number): EventSpec[] {
  return Array.from({ length: n }, (_, i) => ({
    connId: 99,
    msgSeq: 1,
    tsNs: fromNs + i * stepNs,
    direction: SEND,
    role: Role.GB_ROLE_CLIENT,
    bytes: 8,
    spanId: 'cccccccccccccccc',
    payload: i === 0 ? 'x' : undefined,
  }));
}

test('while a backlog is read, an ended exchange is emitted once events reorderNs younger than its end were read, without a tick', () => {
  const ex = clientExchange(1, 1, 1000, 'aaaaaaaaaaaaaaaa', [20], [httpResp('ok').length]);
  const endNs = ex[ex.length - 1].tsNs;
  const { out, c } = run([...ex, ...otherTraffic(300, endNs + 100, 0.1 * MS)]); // 30 ms of the events' clock
  assert.equal(out.length, 1, 'emitted during the backlog');
  assert.equal(out[0].spanId, 'aaaaaaaaaaaaaaaa');
  assert.equal(c.stats.lateEvents, 0);
});

test('an event of an ended exchange read before events reorderNs younger than the end is still counted in it', () => {
  const ex = clientExchange(1, 1, 1000, 'aaaaaaaaaaaaaaaa', [20], [httpResp('ok').length]);
  const endNs = ex[ex.length - 1].tsNs;
  const late: EventSpec = { connId: 1, msgSeq: 1, tsNs: 1005, direction: SEND, role: Role.GB_ROLE_CLIENT, bytes: 7, spanId: 'aaaaaaaaaaaaaaaa' };
  // 300 events within 4 ms of the end (reorderNs is 5 ms), then the late one from another CPU.
  const { out, c } = run([...ex, ...otherTraffic(300, endNs + 100, 0.013 * MS), late]);
  assert.equal(out.length, 0, 'not emitted while younger events are within reorderNs');
  c.tick(10 ** 12);
  const done = out.find((e) => e.spanId === 'aaaaaaaaaaaaaaaa');
  assert.ok(done);
  assert.equal(done.request.bytes, 27, 'the late event joined its exchange');
  assert.equal(done.request.startNs, 1005);
  assert.equal(c.stats.lateEvents, 0);
});

test('a server span waits for its response however late it is, and ends at it', () => {
  const req = { connId: 30, msgSeq: 1, direction: RECV, role: Role.GB_ROLE_SERVER, spanId: 'cccccccccccccccc', payload: httpReq('/slow-upstream') };
  const { out, c } = run([{ ...req, tsNs: 10 * MS }]);
  // Idle for more than idleNs (1 s) with no response yet: a slow upstream connect.
  c.tick(1500 * MS);
  c.tick(2500 * MS);
  assert.equal(out.length, 0, 'not ended while its response has not begun');
  const body = 'ok';
  c.push(
    decodeEvent(
      ...view(
        buildRecord({
          connId: 30,
          msgSeq: 2,
          tsNs: 2600 * MS,
          direction: SEND,
          role: Role.GB_ROLE_SERVER,
          spanId: 'cccccccccccccccc',
          payload: httpResp(body),
        }),
      ),
    ),
  );
  c.tick(2700 * MS);
  assert.equal(out.length, 1);
  assert.equal(out[0].endReason, 'complete');
  assert.equal(out[0].response?.endNs, 2600 * MS);
});

test('a response that pauses for idleNs ends its exchange at its last event', () => {
  const { out, c } = run([
    { connId: 31, msgSeq: 1, tsNs: 10 * MS, direction: SEND, payload: 'stream' },
    { connId: 31, msgSeq: 2, tsNs: 20 * MS, direction: RECV, payload: 'part' },
  ]);
  c.tick(1000 * MS);
  assert.equal(out.length, 0);
  c.tick(1100 * MS);
  assert.equal(out.length, 1);
  assert.equal(out[0].endReason, 'idle');
});

test('a request never answered ends at the close, or unanswered after maxResponseWaitNs', () => {
  const closed = run([
    { connId: 32, msgSeq: 1, tsNs: 10 * MS, direction: SEND, payload: httpReq('/never') },
    { connId: 32, msgSeq: 1, tsNs: 5000 * MS, type: EventType.GB_EV_CLOSE },
  ]);
  closed.c.tick(6000 * MS);
  assert.equal(closed.out[0].endReason, 'close');
  assert.equal(closed.out[0].endedNs, 5000 * MS, 'the span lasts until the close');
  const waiting = run([{ connId: 33, msgSeq: 1, tsNs: 10 * MS, direction: SEND, payload: httpReq('/never') }], { maxResponseWaitNs: 60_000 * MS });
  waiting.c.tick(59_000 * MS);
  assert.equal(waiting.out.length, 0);
  waiting.c.tick(61_000 * MS);
  waiting.c.tick(62_000 * MS);
  assert.equal(waiting.out.length, 1);
  assert.equal(waiting.out[0].endReason, 'unanswered');
  assert.equal(waiting.out[0].endedNs, 61_000 * MS);
});

test('idleness is judged by the events read: a tick at readUpToNs ends nothing whose next events are still unread', () => {
  const { out, c } = run([
    { connId: 34, msgSeq: 1, tsNs: 10 * MS, direction: SEND, payload: 'a' },
    { connId: 34, msgSeq: 2, tsNs: 20 * MS, direction: RECV, payload: 'b' },
    { connId: 35, msgSeq: 1, tsNs: 30 * MS, direction: SEND, payload: 'c' },
  ]);
  assert.equal(c.readUpToNs, 30 * MS);
  // The agent stalled: the wall clock is far ahead, but a backlog is left, so it ticks at readUpToNs.
  c.tick(c.readUpToNs);
  assert.equal(out.length, 0);
});

test('a tick looks at a bounded number of connections; closed ones are all forgotten within a few ticks', () => {
  const specs: EventSpec[] = [];
  for (let i = 0; i < 5000; i++) {
    specs.push({ connId: 1000 + i, msgSeq: 1, tsNs: 10 * MS, direction: SEND, payload: 'PING\r\n' });
    specs.push({ connId: 1000 + i, msgSeq: 2, tsNs: 11 * MS, direction: RECV, payload: '+PONG\r\n' });
    specs.push({ connId: 1000 + i, msgSeq: 2, tsNs: 12 * MS, type: EventType.GB_EV_CLOSE });
  }
  const { out, c } = run(specs);
  c.tick(100 * MS);
  assert.equal(out.length, 5000);
  assert.ok(c.stats.connections > 0 && c.stats.connections < 5000, `one tick forgets a bounded number (${c.stats.connections} left)`);
  for (let i = 0; i < 3; i++) c.tick(100 * MS);
  assert.equal(c.stats.connections, 0);
});
