/**
 * Builds raw ring-buffer records (struct gb_event [+ payload]) with the
 * generated layout, so unit tests feed the real decoder exactly what the
 * kernel would.
 */
import { Direction, EV, EV_SIZE, EventType, Flag, PAYLOAD_MAX, PAYLOAD_OFFSET, Role, Syscall, TUPLE } from '../../src/events/layout';

export interface EventSpec {
  type?: number;
  direction?: number;
  role?: number;
  flags?: number;
  pid?: number;
  tid?: number;
  msgSeq: number;
  connId: number;
  tsNs: number;
  bytes?: number;
  syscall?: number;
  local?: [string, number];
  remote?: [string, number];
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  payload?: string | Buffer;
  comm?: string;
  /** The connection's lost-event count as the kernel reports it. */
  connLost?: number;
}

function putAddr(buf: Buffer, off: number, addr: string): void {
  if (addr.includes('.')) {
    buf[off + 10] = 0xff;
    buf[off + 11] = 0xff;
    addr.split('.').forEach((o, i) => (buf[off + 12 + i] = Number(o)));
    return;
  }
  const [head, tail] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => buf.writeUInt16BE(parseInt(g, 16), off + 2 * i));
}

function putU64(buf: Buffer, off: number, v: number): void {
  buf.writeUInt32LE(v % 0x1_0000_0000, off);
  buf.writeUInt32LE(Math.floor(v / 0x1_0000_0000), off + 4);
}

export function buildRecord(s: EventSpec): Buffer {
  const payload = s.payload === undefined ? undefined : Buffer.isBuffer(s.payload) ? s.payload : Buffer.from(s.payload, 'latin1');
  const flags = (s.flags ?? Flag.GB_F_SAMPLED) | (payload ? Flag.GB_F_MSG_START : 0) | (s.parentSpanId ? Flag.GB_F_HAS_PARENT : 0);
  const buf = Buffer.alloc(flags & Flag.GB_F_MSG_START ? PAYLOAD_OFFSET + PAYLOAD_MAX : EV_SIZE);
  buf.writeUInt8(s.type ?? EventType.GB_EV_DATA, EV.type.offset);
  buf.writeUInt8(s.direction ?? Direction.GB_DIR_SEND, EV.direction.offset);
  buf.writeUInt8(s.role ?? Role.GB_ROLE_CLIENT, EV.role.offset);
  buf.writeUInt8(flags, EV.flags.offset);
  buf.writeUInt32LE(s.pid ?? 100, EV.pid.offset);
  buf.writeUInt32LE(s.tid ?? s.pid ?? 100, EV.tid.offset);
  buf.writeUInt32LE(s.msgSeq, EV.msg_seq.offset);
  putU64(buf, EV.conn_id.offset, s.connId);
  putU64(buf, EV.ts_ns.offset, s.tsNs);
  buf.writeUInt16LE(s.connLost ?? 0, EV.conn_lost.offset);
  putU64(buf, EV.bytes.offset, s.bytes ?? payload?.length ?? 0);
  buf.writeUInt16LE(s.syscall ?? Syscall.GB_SC_WRITE, EV.syscall.offset);
  const t = EV.tuple.offset;
  putAddr(buf, t + TUPLE.local_addr.offset, s.local?.[0] ?? '10.0.0.1');
  buf.writeUInt16LE(s.local?.[1] ?? 40000, t + TUPLE.local_port.offset);
  putAddr(buf, t + TUPLE.remote_addr.offset, s.remote?.[0] ?? '10.0.0.2');
  buf.writeUInt16LE(s.remote?.[1] ?? 8080, t + TUPLE.remote_port.offset);
  Buffer.from(s.traceId ?? '0af7651916cd43dd8448eb211c80319c', 'hex').copy(buf, EV.trace_id.offset);
  Buffer.from(s.spanId ?? 'b7ad6b7169203331', 'hex').copy(buf, EV.span_id.offset);
  if (s.parentSpanId) Buffer.from(s.parentSpanId, 'hex').copy(buf, EV.parent_span_id.offset);
  if (payload) {
    const n = Math.min(payload.length, PAYLOAD_MAX);
    payload.copy(buf, PAYLOAD_OFFSET, 0, n);
    buf.writeUInt16LE(n, EV.payload_len.offset);
    buf.write(s.comm ?? 'svc', EV.comm.offset, 15, 'latin1');
  }
  return buf;
}

export function view(buf: Buffer): [Buffer, DataView, number, number] {
  return [buf, new DataView(buf.buffer, buf.byteOffset, buf.byteLength), 0, buf.length];
}
