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
  tsNs: number; // CLOCK_TAI less the agent's stamp base (bpf/config.bpf.h, stamp_clock)
  bytes: number;
  syscall: number;
  /** k of a pipelined request (GB_F_PIPELINED), else 0 */
  pipelineIdx: number;
  /** Events of this connection lost to a full ring buffer so far (mod 2^16). */
  connLost: number;
  /** On message starts and closes only (the connection is known by connId otherwise). */
  readonly tuple?: Tuple;
  readonly traceId: string; // 32 hex chars
  readonly spanId: string; // 16 hex chars
  readonly parentSpanId: string; // 16 hex chars, or '' when none
  payload?: Buffer; // head of the message, on GB_F_MSG_START records
  comm?: string; // task comm, on GB_F_MSG_START and GB_EV_PROC records
  /** GB_EV_PROC: the process's environment and argv (NUL-separated), as far as sent. */
  proc?: { env: Buffer; args: Buffer };
}

export class DecodeError extends Error {}

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
  for (let i = 0; i < 8;) {
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

function hexOf(bytes: Buffer, start: number, len: number): string {
  return bytes.toString('hex', start, start + len);
}

/**
 * One ring-buffer record seen through a reusable object: the agent decodes
 * every record into the same EventView, so the hot path allocates nothing for
 * events that continue a message. Numbers are read eagerly; ids and the
 * tuple are formatted only when asked for, and only while the record's
 * memory is still valid (during the record callback) — whoever keeps them
 * keeps the strings. The payload head and comm are copied on message starts.
 */
export class EventView implements KernelEvent {
  type = 0;
  direction = 0;
  role = 0;
  flags = 0;
  pid = 0;
  tid = 0;
  msgSeq = 0;
  connId = 0;
  tsNs = 0;
  bytes = 0;
  syscall = 0;
  pipelineIdx = 0;
  connLost = 0;
  payload?: Buffer = undefined;
  comm?: string = undefined;
  proc?: { env: Buffer; args: Buffer } = undefined;
  private raw: Buffer = Buffer.alloc(0);
  private at = 0;
  private hasTuple = false;
  private cachedTuple?: Tuple = undefined;
  private cachedTrace?: string = undefined;
  private cachedSpan?: string = undefined;
  private cachedParent?: string = undefined;

  get traceId(): string {
    return (this.cachedTrace ??= hexOf(this.raw, this.at + EV.trace_id.offset, EV.trace_id.size));
  }

  get spanId(): string {
    return (this.cachedSpan ??= hexOf(this.raw, this.at + EV.span_id.offset, EV.span_id.size));
  }

  get parentSpanId(): string {
    if (!(this.flags & Flag.GB_F_HAS_PARENT)) return '';
    return (this.cachedParent ??= hexOf(this.raw, this.at + EV.parent_span_id.offset, EV.parent_span_id.size));
  }

  /** On message starts and closes only (the connection is known by connId otherwise). */
  get tuple(): Tuple | undefined {
    if (!this.hasTuple) return undefined;
    if (!this.cachedTuple) {
      const t = this.at + EV.tuple.offset;
      const b = this.raw;
      this.cachedTuple = {
        localAddr: formatAddr(b, t + TUPLE.local_addr.offset),
        localPort: b.readUInt16LE(t + TUPLE.local_port.offset),
        remoteAddr: formatAddr(b, t + TUPLE.remote_addr.offset),
        remotePort: b.readUInt16LE(t + TUPLE.remote_port.offset),
      };
    }
    return this.cachedTuple;
  }

  /**
   * Points the view at the record at `off` (`len` valid bytes) of `bytes`
   * (`view` is a DataView over the same memory). Throws DecodeError for a
   * record that is not a well-formed event; never reads past `len`.
   */
  load(bytes: Buffer, view: DataView, off: number, len: number): this {
    if (len < EV_SIZE) throw new DecodeError(`record of ${len} bytes is shorter than gb_event (${EV_SIZE})`);
    const type = view.getUint8(off + EV.type.offset);
    if (type !== EventType.GB_EV_DATA && type !== EventType.GB_EV_CLOSE && type !== EventType.GB_EV_PROC) throw new DecodeError(`unknown event type ${type}`);
    const flags = view.getUint8(off + EV.flags.offset);
    this.raw = bytes;
    this.at = off;
    this.type = type;
    this.flags = flags;
    this.direction = view.getUint8(off + EV.direction.offset);
    this.role = view.getUint8(off + EV.role.offset);
    this.pid = view.getUint32(off + EV.pid.offset, true);
    this.tid = view.getUint32(off + EV.tid.offset, true);
    this.msgSeq = view.getUint32(off + EV.msg_seq.offset, true);
    this.connId = u64(view, off + EV.conn_id.offset);
    this.tsNs = u64(view, off + EV.ts_ns.offset);
    this.bytes = u64(view, off + EV.bytes.offset);
    this.syscall = view.getUint16(off + EV.syscall.offset, true);
    this.pipelineIdx = view.getUint16(off + EV.pipeline_idx.offset, true);
    this.connLost = view.getUint16(off + EV.conn_lost.offset, true);
    this.cachedTrace = this.cachedSpan = this.cachedParent = undefined;
    this.cachedTuple = undefined;
    this.payload = undefined;
    this.comm = undefined;
    this.proc = undefined;
    this.hasTuple = type === EventType.GB_EV_CLOSE || (type === EventType.GB_EV_DATA && (flags & Flag.GB_F_MSG_START) !== 0);
    if (type === EventType.GB_EV_PROC) {
      if (len < PROC.args.offset) throw new DecodeError(`process record of ${len} bytes is shorter than gb_proc_event`);
      const envLen = Math.min(view.getUint32(off + PROC.env_len.offset, true), PROC.env.size);
      const argsLen = Math.min(view.getUint32(off + PROC.args_len.offset, true), PROC.args.size, Math.max(0, len - PROC.args.offset));
      this.comm = cString(bytes, off + EV.comm.offset, EV.comm.size);
      this.proc = { env: copyOf(bytes, off + PROC.env.offset, envLen), args: copyOf(bytes, off + PROC.args.offset, argsLen) };
    } else if (type === EventType.GB_EV_DATA && flags & Flag.GB_F_MSG_START) {
      const declared = view.getUint16(off + EV.payload_len.offset, true);
      if (declared > PAYLOAD_MAX) throw new DecodeError(`payload_len ${declared} exceeds ${PAYLOAD_MAX}`);
      this.payload = copyOf(bytes, off + PAYLOAD_OFFSET, Math.min(declared, Math.max(0, len - PAYLOAD_OFFSET))); // ring memory is reused
      this.comm = cString(bytes, off + EV.comm.offset, EV.comm.size);
    }
    return this;
  }
}

/** A copy of bytes[start, start+n) (from Node's buffer pool for small sizes). */
function copyOf(bytes: Buffer, start: number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  bytes.copy(out, 0, start, start + n);
  return out;
}

/**
 * Decodes one record into a plain, self-contained object (ids and tuple
 * formatted): for tests, tools and replays that keep events. The agent's hot
 * path uses one EventView instead.
 */
export function decodeEvent(bytes: Buffer, view: DataView, off: number, len: number): KernelEvent {
  const v = new EventView().load(bytes, view, off, len);
  const ev: { -readonly [K in keyof KernelEvent]: KernelEvent[K] } = {
    type: v.type,
    direction: v.direction,
    role: v.role,
    flags: v.flags,
    pid: v.pid,
    tid: v.tid,
    msgSeq: v.msgSeq,
    connId: v.connId,
    tsNs: v.tsNs,
    bytes: v.bytes,
    syscall: v.syscall,
    pipelineIdx: v.pipelineIdx,
    connLost: v.connLost,
    traceId: v.traceId,
    spanId: v.spanId,
    parentSpanId: v.parentSpanId,
  };
  if (v.proc) {
    ev.comm = v.comm;
    ev.proc = v.proc;
    return ev;
  }
  const tuple = v.tuple;
  if (tuple) ev.tuple = tuple;
  if (v.payload) {
    ev.payload = v.payload;
    ev.comm = v.comm;
  }
  return ev;
}
