/**
 * Pairs kernel events into exchanges (one request message + its response
 * message on one connection), which become spans.
 *
 * The kernel numbers messages per connection (msg_seq, +1 on every flip of
 * the data direction), so an event belongs to its exchange by number, not by
 * arrival order: events that arrive out of order between CPUs still land in
 * the right place. An exchange ends when the next request on the connection
 * starts, the connection closes, the protocol says the response is complete
 * (HTTP Content-Length, a whole Redis reply), or its response has begun and
 * nothing moved for idleNs. An exchange still waiting for its response does
 * not end by idling, however late the response is (a slow upstream, a
 * retransmitted SYN): it waits for the response, the next request or the
 * close, and gives up after maxResponseWaitNs. "Nothing moved" is judged by
 * the events read: while a backlog is being read, by the youngest of them,
 * not by the clock (a stalled agent would otherwise end every exchange whose
 * next events it had not read yet).
 * Ended exchanges wait reorderNs before they are emitted, so that late events
 * from another CPU are still counted: reorderNs of the agent's clock (tick),
 * or of the events' own clock, once an event stamped reorderNs after the end
 * has been read (checked every SWEEP_EVERY events). An event is stamped
 * before its record is reserved and records come in the order they were
 * reserved, so by then every record reserved within reorderNs of the end has
 * been read: the tick's window, kept while a backlog is read. Emitting during
 * the backlog instead of after all of it lets an exchange's objects die
 * young (V8 copied and promoted the exchanges of a whole 100-ms backlog, then
 * collected them in its old generation).
 */
import { Direction, EventType, Flag, Role } from '../events/layout';
import type { KernelEvent, Tuple } from '../events/decoder';
import { addToMessage, newMessage, type EndReason, type Exchange } from './exchange';

export type { EndReason, Exchange, Message } from './exchange';
import { expectedResponseBytes, identify, splitRequests } from '../protocols';

export interface CorrelatorOptions {
  idleNs: number;
  /** How long a request waits for the first byte of its response before its span ends unanswered. */
  maxResponseWaitNs: number;
  reorderNs: number;
  maxConnections: number;
  maxOpenPerConnection: number;
}

export interface CorrelatorStats {
  events: number;
  /** Exchanges marked incomplete because events of theirs were lost. */
  incompleteExchanges: number;
  /** Lost events reported after their exchange had been emitted. */
  lostUnattributed: number;
  exchanges: number;
  orphanResponses: number;
  lateEvents: number;
  evictedConnections: number;
  connections: number;
}

interface Conn {
  id: number;
  role: number;
  tuple: Tuple;
  lastNs: number;
  /** Open and ended-but-not-emitted exchanges, by request msg_seq. */
  exchanges: Map<number, Exchange>;
  /** Request seqs of exchanges not yet ended (a handful at most). */
  unended: number[];
  /** Highest request seq emitted: events for it or below are late. */
  emittedSeq: number;
  closed: boolean;
  /** Head of the last request message that carried data (pipelined requests are in it). */
  lastRequestHead?: Buffer;
  /** The kernel's lost-event count for this connection as of the last event. */
  lostSeen: number;
}

interface Ended {
  conn: Conn;
  seq: number;
  ex: Exchange;
  atNs: number;
}

/** Until an event with the tuple arrives (its message start may come later). */
const UNKNOWN_TUPLE: Tuple = { localAddr: '', localPort: 0, remoteAddr: '', remotePort: 0 };

export const DEFAULT_CORRELATOR_OPTIONS: CorrelatorOptions = {
  idleNs: 2_000_000_000,
  maxResponseWaitNs: 600_000_000_000,
  reorderNs: 20_000_000,
  maxConnections: 100_000,
  maxOpenPerConnection: 64,
};

/** Events between two looks at the ended exchanges, by the events' clock. */
const SWEEP_EVERY = 128;

/**
 * Connections a tick looks at for removal: a tick's work is bounded however
 * many connections are open (a busy node holds tens of thousands idle), and
 * the whole table is still gone through every few seconds.
 */
const FORGET_PER_TICK = 2048;

export class Correlator {
  private readonly conns = new Map<number, Conn>();
  /** Connections with exchanges not yet ended: the only ones a tick must look at for idleness. */
  private readonly waiting = new Set<Conn>();
  /** Where the removal of forgotten connections goes on at the next tick. */
  private forgetCursor: Iterator<Conn> = this.conns.values();
  private ended: Ended[] = [];
  /** The youngest event timestamp read, and events since the last sweep by it. */
  private frontierNs = 0;
  private sinceSweep = 0;
  private readonly opts: CorrelatorOptions;
  readonly stats: CorrelatorStats = {
    events: 0,
    incompleteExchanges: 0,
    lostUnattributed: 0,
    exchanges: 0,
    orphanResponses: 0,
    lateEvents: 0,
    evictedConnections: 0,
    connections: 0,
  };

  constructor(
    private readonly onExchange: (ex: Exchange) => void,
    opts: Partial<CorrelatorOptions> = {},
  ) {
    this.opts = { ...DEFAULT_CORRELATOR_OPTIONS, ...opts };
  }

  push(ev: KernelEvent): void {
    this.stats.events++;
    if (ev.tsNs > this.frontierNs) this.frontierNs = ev.tsNs;
    if (++this.sinceSweep >= SWEEP_EVERY) {
      this.sinceSweep = 0;
      this.emitSettled(this.frontierNs);
    }
    if (ev.type === EventType.GB_EV_CLOSE) return this.close(ev);
    if (ev.type !== EventType.GB_EV_DATA) return;
    const conn = this.connFor(ev);
    conn.lastNs = Math.max(conn.lastNs, ev.tsNs);
    const isRequest = (conn.role === Role.GB_ROLE_CLIENT) === (ev.direction === Direction.GB_DIR_SEND);
    const reqSeq = isRequest ? ev.msgSeq : ev.msgSeq - 1;
    // Events of this connection lost since its previous event: before a
    // request starts they were the end of an earlier exchange; otherwise
    // they were part of this one.
    const lostBefore = lostSince(conn, ev.connLost);
    const lostEarlier = lostBefore > 0 && isRequest && (ev.flags & Flag.GB_F_MSG_START) !== 0;
    if (lostEarlier) this.markLatestBefore(conn, reqSeq, lostBefore);
    let ex = conn.exchanges.get(reqSeq);
    if (!ex) {
      if (reqSeq <= conn.emittedSeq) {
        this.stats.lateEvents++;
        return;
      }
      // A response event may overtake its request's event (the send is
      // reported at syscall exit, the peer may answer first on another CPU):
      // open the exchange from either side; ids are on every event.
      ex = this.open(conn, reqSeq, ev);
    }
    if (conn.tuple === UNKNOWN_TUPLE && ev.tuple) conn.tuple = ex.tuple = ev.tuple;
    if (lostBefore > 0 && !lostEarlier) this.markIncomplete(ex, lostBefore);
    const msg = isRequest ? ex.request : (ex.response ??= newMessage(ev));
    addToMessage(msg, ev);
    if (isRequest && ev.payload?.length && !(ev.flags & Flag.GB_F_PIPELINED)) conn.lastRequestHead = ev.payload;
    if (ev.flags & Flag.GB_F_PIPELINED && ev.pipelineIdx > 0) {
      ex.pipelineIndex = ev.pipelineIdx;
      ex.request.head = splitRequests(conn.lastRequestHead ?? Buffer.alloc(0))[ev.pipelineIdx];
    }
    if (ev.payload && (!isRequest || ex.response?.head)) {
      ex.protocol = identify(ex.request.head, ex.response?.head);
      ex.expectedResponseBytes = expectedResponseBytes(ex.protocol);
    }
    if (!isRequest && !ex.endReason && ex.expectedResponseBytes !== undefined && msg.bytes >= ex.expectedResponseBytes) {
      this.end(conn, reqSeq, ex, 'complete', ev.tsNs);
    }
  }

  /** The youngest event timestamp read so far (0: none). */
  get readUpToNs(): number {
    return this.frontierNs;
  }

  /**
   * Ends idle exchanges and emits those that ended at least reorderNs ago.
   * `nowNs` is on the clock of the kernel's timestamps (WallClock.nowEventNs):
   * the time up to which every event has been read (readUpToNs while a
   * backlog is left in the ring buffer).
   */
  tick(nowNs: number): void {
    this.endIdle(nowNs);
    this.emitSettled(nowNs);
    this.forget(nowNs);
  }

  /**
   * A tick's upkeep without the emitting: what the agent runs between two
   * reads of a backlog (the reads' own sweeps emit meanwhile). Its cost
   * grows with the exchanges waiting, not with the connections open.
   */
  sweep(nowNs: number): void {
    this.endIdle(nowNs);
    this.forget(nowNs);
  }

  /** Ends the exchanges of connections quiet for idleNs whose response has begun, and those unanswered for too long. */
  private endIdle(nowNs: number): void {
    for (const conn of this.waiting) {
      if (nowNs - conn.lastNs < this.opts.idleNs) continue;
      for (let i = conn.unended.length - 1; i >= 0; i--) {
        const seq = conn.unended[i];
        const ex = conn.exchanges.get(seq)!;
        // Ended as of its last activity: it has been quiet for idleNs already.
        if (ex.response) this.end(conn, seq, ex, 'idle', conn.lastNs);
        else if (nowNs - ex.request.startNs >= this.opts.maxResponseWaitNs) this.end(conn, seq, ex, 'unanswered', nowNs);
      }
    }
  }

  /** Emits the ended exchanges that ended at least reorderNs before `nowNs`. */
  emitSettled(nowNs: number): void {
    if (this.ended.length === 0) return;
    const keep: Ended[] = [];
    for (const e of this.ended) {
      if (nowNs - e.atNs >= this.opts.reorderNs) this.emit(e);
      else keep.push(e);
    }
    this.ended = keep;
  }

  /** Removes connections with nothing left to emit that closed or went quiet long ago, FORGET_PER_TICK at a time. */
  private forget(nowNs: number): void {
    for (let i = 0; i < FORGET_PER_TICK; i++) {
      const next = this.forgetCursor.next();
      if (next.done) {
        this.forgetCursor = this.conns.values();
        break;
      }
      const conn = next.value;
      if (conn.exchanges.size === 0 && (conn.closed || nowNs - conn.lastNs > 10 * this.opts.idleNs)) this.conns.delete(conn.id);
    }
    this.stats.connections = this.conns.size;
  }

  /** Ends and emits everything (agent shutdown). */
  flush(): void {
    for (const conn of this.conns.values()) this.endAll(conn, 'shutdown', conn.lastNs);
    for (const e of this.ended) this.emit(e);
    this.ended = [];
    this.conns.clear();
    this.waiting.clear();
    this.stats.connections = 0;
  }

  private connFor(ev: KernelEvent): Conn {
    let conn = this.conns.get(ev.connId);
    if (!conn) {
      if (this.conns.size >= this.opts.maxConnections) this.evictOldest();
      conn = {
        id: ev.connId,
        role: ev.role,
        tuple: ev.tuple ?? UNKNOWN_TUPLE,
        lastNs: ev.tsNs,
        exchanges: new Map(),
        unended: [],
        emittedSeq: -1,
        closed: false,
        lostSeen: 0,
      };
      this.conns.set(ev.connId, conn);
      this.stats.connections = this.conns.size;
    }
    return conn;
  }

  private open(conn: Conn, reqSeq: number, ev: KernelEvent): Exchange {
    const ex: Exchange = {
      connId: conn.id,
      role: conn.role,
      tuple: conn.tuple,
      traceId: ev.traceId,
      spanId: ev.spanId,
      parentSpanId: ev.parentSpanId,
      flags: ev.flags & ~Flag.GB_F_MSG_START,
      request: newMessage(ev),
    };
    // A new request ends every earlier exchange on this connection.
    for (let i = conn.unended.length - 1; i >= 0; i--) {
      const seq = conn.unended[i];
      if (seq < reqSeq) this.end(conn, seq, conn.exchanges.get(seq)!, 'next-request', ev.tsNs);
    }
    if (conn.exchanges.size >= this.opts.maxOpenPerConnection) {
      const [oldSeq, oldest] = conn.exchanges.entries().next().value as [number, Exchange];
      if (!oldest.endReason) this.end(conn, oldSeq, oldest, 'evicted', ev.tsNs);
    }
    conn.exchanges.set(reqSeq, ex);
    conn.unended.push(reqSeq);
    this.waiting.add(conn);
    return ex;
  }

  private end(conn: Conn, seq: number, ex: Exchange, reason: EndReason, atNs: number): void {
    ex.endReason = reason;
    if (!ex.response && (reason === 'close' || reason === 'unanswered')) ex.endedNs = atNs;
    const i = conn.unended.indexOf(seq);
    if (i >= 0) conn.unended.splice(i, 1);
    if (conn.unended.length === 0) this.waiting.delete(conn);
    this.ended.push({ conn, seq, ex, atNs });
  }

  private endAll(conn: Conn, reason: EndReason, atNs: number): void {
    for (const seq of [...conn.unended]) this.end(conn, seq, conn.exchanges.get(seq)!, reason, atNs);
  }

  private emit(e: Ended): void {
    if (e.conn.exchanges.get(e.seq) === e.ex) e.conn.exchanges.delete(e.seq);
    e.conn.emittedSeq = Math.max(e.conn.emittedSeq, e.seq);
    if (e.ex.request.events === 0) {
      if (!e.ex.lostEvents || !e.ex.response) {
        // Only a response was seen: the request predates the agent (or the
        // connection), so there is nothing to time the span from.
        this.stats.orphanResponses++;
        return;
      }
      // The request's events were lost to a full ring buffer: the span is
      // still reported (ids are on every event), timed from its response.
      e.ex.request.startNs = e.ex.request.endNs = e.ex.response.startNs;
      e.ex.incomplete = 'events lost: ring buffer full (request not seen)';
    }
    if (!e.ex.request.sawStart) e.ex.incomplete ??= 'first event of the request was lost';
    this.stats.exchanges++;
    try {
      this.onExchange(e.ex);
    } catch {
      /* an exporter failure must not stop correlation */
    }
  }

  private close(ev: KernelEvent): void {
    const conn = this.conns.get(ev.connId);
    if (!conn) return;
    const lost = lostSince(conn, ev.connLost);
    if (lost > 0) this.markLatestBefore(conn, Infinity, lost);
    conn.closed = true;
    conn.lastNs = Math.max(conn.lastNs, ev.tsNs);
    this.endAll(conn, 'close', ev.tsNs);
  }

  /** The exchange with the highest request seq below `seq` lost events. */
  private markLatestBefore(conn: Conn, seq: number, lost: number): void {
    let best: Exchange | undefined;
    let bestSeq = -Infinity;
    for (const [s, ex] of conn.exchanges) {
      if (s < seq && s > bestSeq) {
        best = ex;
        bestSeq = s;
      }
    }
    if (best) this.markIncomplete(best, lost);
    else this.stats.lostUnattributed += lost; // its exchange was already emitted
  }

  private markIncomplete(ex: Exchange, lost: number): void {
    if (ex.lostEvents === undefined) this.stats.incompleteExchanges++;
    ex.lostEvents = (ex.lostEvents ?? 0) + lost;
    ex.incomplete ??= 'events lost: ring buffer full';
  }

  private evictOldest(): void {
    let oldest: Conn | undefined;
    for (const c of this.conns.values()) if (!oldest || c.lastNs < oldest.lastNs) oldest = c;
    if (!oldest) return;
    this.endAll(oldest, 'evicted', oldest.lastNs);
    this.conns.delete(oldest.id);
    this.waiting.delete(oldest);
    this.stats.evictedConnections++;
  }
}

/**
 * Events the kernel could not hand over on this connection since the count
 * last seen (16-bit, wrapping). An event from another CPU that arrives late
 * carries an older count: it moves nothing backwards.
 */
function lostSince(conn: Conn, connLost: number): number {
  const diff = (connLost - conn.lostSeen) & 0xffff;
  if (diff === 0 || diff >= 0x8000) return 0;
  conn.lostSeen = connLost;
  return diff;
}
