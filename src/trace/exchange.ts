/**
 * What the correlator makes of kernel events: messages (the events of one
 * direction of data between two flips), and exchanges (a request message
 * and its response) that become spans.
 */
import { Flag } from '../events/layout';
import type { KernelEvent, Tuple } from '../events/decoder';
import type { ProtocolView } from '../protocols';

export interface Message {
  seq: number;
  startNs: number;
  endNs: number;
  bytes: number;
  events: number;
  head?: Buffer;
  /** The event that opened the message (GB_F_MSG_START) was seen. */
  sawStart: boolean;
  pid: number;
  tid: number;
}

export type EndReason = 'next-request' | 'close' | 'complete' | 'idle' | 'unanswered' | 'evicted' | 'shutdown';

export interface Exchange {
  connId: number;
  role: number; // Role
  tuple: Tuple;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  flags: number;
  request: Message;
  response?: Message;
  endReason?: EndReason;
  /** Without a response: when the exchange was seen to end (the close, or when the agent gave up waiting). */
  endedNs?: number;
  /** Why the exchange is known to be incomplete (e.g. its first event was lost). */
  incomplete?: string;
  /** Events of this exchange the ring buffer had no room for, as far as known. */
  lostEvents?: number;
  /** Response size the protocol announced (HTTP Content-Length, a whole Redis reply). */
  expectedResponseBytes?: number;
  /** k >= 1: a request that arrived pipelined behind k others in one read (server side). */
  pipelineIndex?: number;
  /** The heads parsed (once, when the response head arrived); valid for request.head/response.head as they are. */
  protocol?: ProtocolView;
}

/** An empty message; events fill it in whatever order they arrive. */
export function newMessage(ev: KernelEvent): Message {
  return { seq: ev.msgSeq, startNs: Infinity, endNs: -Infinity, bytes: 0, events: 0, sawStart: false, pid: ev.pid, tid: ev.tid };
}

export function addToMessage(msg: Message, ev: KernelEvent): void {
  if (ev.tsNs < msg.startNs) msg.startNs = ev.tsNs;
  if (ev.tsNs > msg.endNs) msg.endNs = ev.tsNs;
  msg.bytes += ev.bytes;
  msg.events++;
  if (ev.flags & Flag.GB_F_MSG_START) {
    msg.sawStart = true;
    msg.pid = ev.pid;
    msg.tid = ev.tid;
    if (ev.payload) msg.head = ev.payload;
  }
}
