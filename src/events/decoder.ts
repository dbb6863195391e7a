/**
 * Decodes ring-buffer records (struct gb_event, optionally followed by a
 * payload head) into KernelEvent objects. Offsets come from the generated
 * layout; the decoder never trusts a record's lengths beyond its bounds.
 */
import { EV, EV_SIZE, EventType, Flag, PAYLOAD_MAX, PAYLOAD_OFFSET, PROC, TUPLE } from './layout';

export interface Tuple {
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
}

export interface KernelEvent {
  type: number; // EventType
  direction: number; // Direction
  role: number; // Role
  flags: number; // Flag bits
  pid: number;
  tid: number;
  msgSeq: number;
  connId: number;
  tsNs: number; // CLOCK_MONOTONIC
  bytes: number;
  syscall: number;
  /** k of a pipelined request (GB_F_PIPELINED), else 0 */
  pipelineIdx: number;
  /** On message starts and closes only (the connection is known by connId otherwise). */
  tuple?: Tuple;
  traceId: string; // 32 hex chars
  spanId: string; // 16 hex chars
  parentSpanId: string; // 16 hex chars, or '' when none
  payload?: Buffer; // head of the message, on GB_F_MSG_START records
  comm?: string; // task comm, on GB_F_MSG_START and GB_EV_PROC records
  /** GB_EV_PROC: the process's environment and argv (NUL-separated), as far as sent. */
  proc?: { env: Buffer; args: Buffer };
}

export class DecodeError extends Error {}

function hex(bytes: Buffer, start: number, len: number): string {
  return bytes.toString('hex', start, start + len);
}

/** Formats a 16-byte address (IPv4 stored v4-mapped) the way OTel expects. */
export function formatAddr(bytes: Uint8Array, start: number): string {
  let v4mapped = bytes[start + 10] === 0xff && bytes[start + 11] === 0xff;
  for (let i = 0; i < 10 && v4mapped; i++) if (bytes[start + i] !== 0) v4mapped = false;
  if (v4mapped) return `${bytes[start + 12]}.${bytes[start + 13]}.${bytes[start + 14]}.${bytes[start + 15]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[start + i] << 8) | bytes[start + i + 1]).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

function cString(bytes: Buffer, start: number, max: number): string {
  let end = start;
  while (end < start + max && bytes[end] !== 0) end++;
  return bytes.toString('utf8', start, end);
}

function u64(view: DataView, off: number): number {
  return view.getUint32(off + 4, true) * 0x1_0000_0000 + view.getUint32(off, true);
}

/**
 * Decodes one record. `bytes` is a Buffer (and `view` a DataView) over
 * memory holding the record at `off` with `len` valid bytes. The tuple and
 * the payload head are decoded on message starts and closes only.
 */
export function decodeEvent(bytes: Buffer, view: DataView, off: number, len: number): KernelEvent {
  if (len < EV_SIZE) throw new DecodeError(`record of ${len} bytes is shorter than gb_event (${EV_SIZE})`);
  const type = view.getUint8(off + EV.type.offset);
  if (type !== EventType.GB_EV_DATA && type !== EventType.GB_EV_CLOSE && type !== EventType.GB_EV_PROC) throw new DecodeError(`unknown event type ${type}`);
  const flags = view.getUint8(off + EV.flags.offset);
  const t = off + EV.tuple.offset;
  const ev: KernelEvent = {
    type,
    direction: view.getUint8(off + EV.direction.offset),
    role: view.getUint8(off + EV.role.offset),
    flags,
    pid: view.getUint32(off + EV.pid.offset, true),
    tid: view.getUint32(off + EV.tid.offset, true),
    msgSeq: view.getUint32(off + EV.msg_seq.offset, true),
    connId: u64(view, off + EV.conn_id.offset),
    tsNs: u64(view, off + EV.ts_ns.offset),
    bytes: u64(view, off + EV.bytes.offset),
    syscall: view.getUint16(off + EV.syscall.offset, true),
    pipelineIdx: view.getUint16(off + EV.pipeline_idx.offset, true),
    traceId: hex(bytes, off + EV.trace_id.offset, EV.trace_id.size),
    spanId: hex(bytes, off + EV.span_id.offset, EV.span_id.size),
    parentSpanId: flags & Flag.GB_F_HAS_PARENT ? hex(bytes, off + EV.parent_span_id.offset, EV.parent_span_id.size) : '',
  };
  if (type === EventType.GB_EV_PROC) {
    if (len < PROC.args.offset) throw new DecodeError(`process record of ${len} bytes is shorter than gb_proc_event`);
    const envLen = Math.min(view.getUint32(off + PROC.env_len.offset, true), PROC.env.size);
    const argsLen = Math.min(view.getUint32(off + PROC.args_len.offset, true), PROC.args.size, Math.max(0, len - PROC.args.offset));
    ev.comm = cString(bytes, off + EV.comm.offset, EV.comm.size);
    ev.proc = {
      env: Buffer.from(bytes.subarray(off + PROC.env.offset, off + PROC.env.offset + envLen)),
      args: Buffer.from(bytes.subarray(off + PROC.args.offset, off + PROC.args.offset + argsLen)),
    };
    return ev;
  }
  if (flags & Flag.GB_F_MSG_START || type === EventType.GB_EV_CLOSE) {
    ev.tuple = {
      localAddr: formatAddr(bytes, t + TUPLE.local_addr.offset),
      localPort: view.getUint16(t + TUPLE.local_port.offset, true),
      remoteAddr: formatAddr(bytes, t + TUPLE.remote_addr.offset),
      remotePort: view.getUint16(t + TUPLE.remote_port.offset, true),
    };
  }
  if (flags & Flag.GB_F_MSG_START && type === EventType.GB_EV_DATA) {
    const declared = view.getUint16(off + EV.payload_len.offset, true);
    if (declared > PAYLOAD_MAX) throw new DecodeError(`payload_len ${declared} exceeds ${PAYLOAD_MAX}`);
    const n = Math.min(declared, Math.max(0, len - PAYLOAD_OFFSET));
    ev.payload = Buffer.from(bytes.subarray(off + PAYLOAD_OFFSET, off + PAYLOAD_OFFSET + n)); // a copy: ring memory is reused
    ev.comm = cString(bytes, off + EV.comm.offset, EV.comm.size);
  }
  return ev;
}
