import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEvent, DecodeError, formatAddr } from '../../src/events/decoder';
import { Direction, EV, EventType, Flag, Role } from '../../src/events/layout';
import { buildRecord, view } from '../support/event-builder';

test('decodes every field of a message-start record', () => {
  const rec = buildRecord({
    msgSeq: 7,
    connId: 2 ** 52 + 12345,
    tsNs: 123_456_789_012_345,
    bytes: 77,
    pid: 4242,
    tid: 4243,
    role: Role.GB_ROLE_SERVER,
    direction: Direction.GB_DIR_RECV,
    local: ['10.231.0.2', 8080],
    remote: ['10.231.0.1', 41000],
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    parentSpanId: '1111111111111111',
    flags: Flag.GB_F_SAMPLED | Flag.GB_F_REMOTE_PARENT,
    payload: 'GET / HTTP/1.1\r\n\r\n',
    comm: 'python3',
  });
  const ev = decodeEvent(...view(rec));
  assert.equal(ev.type, EventType.GB_EV_DATA);
  assert.equal(ev.msgSeq, 7);
  assert.equal(ev.connId, 2 ** 52 + 12345);
  assert.equal(ev.tsNs, 123_456_789_012_345);
  assert.equal(ev.bytes, 77);
  assert.equal(ev.pid, 4242);
  assert.equal(ev.tid, 4243);
  assert.deepEqual(ev.tuple, { localAddr: '10.231.0.2', localPort: 8080, remoteAddr: '10.231.0.1', remotePort: 41000 });
  assert.equal(ev.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(ev.spanId, '00f067aa0ba902b7');
  assert.equal(ev.parentSpanId, '1111111111111111');
  assert.equal(ev.payload?.toString(), 'GET / HTTP/1.1\r\n\r\n');
  assert.equal(ev.comm, 'python3');
});

test('a record without HAS_PARENT has no parent; without MSG_START no payload', () => {
  const ev = decodeEvent(...view(buildRecord({ msgSeq: 1, connId: 1, tsNs: 1, bytes: 10 })));
  assert.equal(ev.parentSpanId, '');
  assert.equal(ev.payload, undefined);
});

test('rejects truncated records, unknown types and oversized payload lengths', () => {
  const rec = buildRecord({ msgSeq: 1, connId: 1, tsNs: 1, payload: 'x' });
  assert.throws(() => decodeEvent(rec, new DataView(rec.buffer, rec.byteOffset), 0, 40), DecodeError);
  const bad = Buffer.from(rec);
  bad[EV.type.offset] = 99;
  assert.throws(() => decodeEvent(...view(bad)), DecodeError);
  const big = Buffer.from(rec);
  big.writeUInt16LE(4000, EV.payload_len.offset);
  assert.throws(() => decodeEvent(...view(big)), DecodeError);
});

test('payload is cut to the record length if the record is shorter than declared', () => {
  const rec = buildRecord({ msgSeq: 1, connId: 1, tsNs: 1, payload: 'GET /abc HTTP/1.1\r\n\r\n' });
  const ev = decodeEvent(rec, new DataView(rec.buffer, rec.byteOffset, rec.byteLength), 0, rec.length - 250);
  assert.ok((ev.payload?.length ?? 0) <= 6);
});

test('formats IPv4-mapped, IPv6 and loopback addresses', () => {
  const a = Buffer.alloc(16);
  a[10] = 0xff;
  a[11] = 0xff;
  a.set([127, 0, 0, 1], 12);
  assert.equal(formatAddr(a, 0), '127.0.0.1');
  const b = Buffer.alloc(16);
  b[15] = 1;
  assert.equal(formatAddr(b, 0), '::1');
  const c = Buffer.from('fd000000000000000000000000000abc', 'hex');
  assert.equal(formatAddr(c, 0), 'fd00::abc');
  const d = Buffer.from('20010db8000100020003000400050006', 'hex');
  assert.equal(formatAddr(d, 0), '2001:db8:1:2:3:4:5:6');
});
