/**
 * Turns a correlated exchange into its spans, whose ids and times came from
 * the kernel, named and described by its protocol's plug-in (src/protocols),
 * or as generic TCP, following the semantic conventions: as OTel ReadableSpans (buildSpan, for
 * any exporter), or written for OTLP straight away (encodeSpan, the agent's
 * own exporter). One description (describe) serves both.
 */
import {
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Attributes,
  type AttributeValue,
  type HrTime,
  type Link,
  type SpanContext,
  type SpanStatus,
} from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_TRANSPORT,
  ATTR_NETWORK_TYPE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from '@opentelemetry/semantic-conventions';
import { ATTR_THREAD_ID } from '@opentelemetry/semantic-conventions/incubating';
import { Flag, Role } from '../events/layout';
import type { Exchange } from '../trace/correlator';
import { identify, type ProtocolView } from '../protocols';
import type { ExchangeSide, Pipelining } from '../protocols/protocol';
import { derivePipelined } from '../trace/pipelining';
import { hrDuration, type WallClock } from '../events/clock';
import type { AttributeWriter, OtlpTraceEncoder, SpanFields } from '../otlp/trace-encoder';

export const INSTRUMENTATION_SCOPE = { name: 'gearbox', version: '0.1.0' };

// Shared by the spans that have them: a span is built for every traced hop,
// and what it allocates is paid again in garbage collection.
const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[];
const NO_EVENTS: ReadableSpan['events'] = Object.freeze([]) as unknown as ReadableSpan['events'];
const STATUS_UNSET: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });
const STATUS_ERROR: SpanStatus = Object.freeze({ code: SpanStatusCode.ERROR });

/** A finished span of a traced exchange (a class: no closure per span for spanContext()). */
class KernelSpan implements ReadableSpan {
  readonly ended = true;
  readonly instrumentationScope = INSTRUMENTATION_SCOPE;
  readonly events = NO_EVENTS;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  readonly duration: HrTime;

  constructor(
    readonly name: string,
    readonly kind: SpanKind,
    private readonly context: SpanContext,
    readonly parentSpanContext: SpanContext | undefined,
    readonly startTime: HrTime,
    readonly endTime: HrTime,
    readonly status: SpanStatus,
    readonly attributes: Attributes,
    readonly links: Link[],
    readonly resource: Resource,
  ) {
    this.duration = hrDuration(startTime, endTime);
  }

  spanContext(): SpanContext {
    return this.context;
  }
}

function isIpv4(addr: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(addr);
}

export interface SpanExtras {
  attributes?: Attributes;
  links?: Link[];
}

/** One span of an exchange: the exchange as the span sees it (a pipelined request's own copy) and what the span adds. */
export interface SpanPart {
  ex: Exchange;
  extras: SpanExtras;
}

const NO_EXTRAS: SpanExtras = Object.freeze({});

/**
 * The spans of an exchange: one, or one per request when a client pipelined
 * several HTTP/1.1 requests in one message. Request k >= 1 gets the ids the
 * server's kernel derives for it (src/trace/pipelining.ts); a pipelined
 * request of a client that itself serves a request is a root linked to it.
 */
export function spanParts(ex: Exchange): SpanPart[] {
  const pipelining = ex.role === Role.GB_ROLE_CLIENT && ex.request.head ? pipeliningOf(ex, ex.request.head) : undefined;
  if (pipelining && ex.request.head) {
    const parts = pipelining.splitRequests(ex.request.head);
    if (parts.length > 1) {
      const responses = ex.response?.head ? pipelining.splitResponses(ex.response.head, parts.length) : [];
      return parts.map((part, k) => {
        const ids = derivePipelined(ex.traceId, ex.spanId, k);
        const parentLink: Link[] =
          k > 0 && ex.parentSpanId ? [{ context: { traceId: ex.traceId, spanId: ex.parentSpanId, traceFlags: TraceFlags.SAMPLED } }] : [];
        const copy: Exchange = {
          ...ex,
          traceId: ids.traceId,
          spanId: ids.spanId,
          parentSpanId: k === 0 ? ex.parentSpanId : '',
          protocol: undefined, // the heads differ from the exchange's
          request: { ...ex.request, head: part },
          response: ex.response && { ...ex.response, head: responses[k] },
        };
        return { ex: copy, extras: { attributes: { 'gearbox.pipelined.index': k, 'gearbox.pipelined.count': parts.length }, links: parentLink } };
      });
    }
  }
  return [{ ex, extras: ex.pipelineIndex ? { attributes: { 'gearbox.pipelined.index': ex.pipelineIndex } } : NO_EXTRAS }];
}

/** The spans of an exchange (spanParts) as ReadableSpans. */
export function buildSpans(ex: Exchange, resource: Resource, clock: WallClock): ReadableSpan[] {
  return spanParts(ex).map((part) => buildSpan(part.ex, resource, clock, part.extras));
}

/** The request's protocol's pipelining, when more bytes follow its first request in the head. */
function pipeliningOf(ex: Exchange, head: Buffer): Pipelining<unknown> | undefined {
  const view = ex.protocol ?? identify(head, ex.response?.head);
  const pipelining = view.protocol?.pipelining;
  return pipelining?.mayHoldMore(view.request, head) ? pipelining : undefined;
}

/** Collects a span's attributes into an Attributes object (describe's other writer is the OTLP encoder). */
class AttributesObject implements AttributeWriter {
  readonly attributes: Attributes = {};

  attribute(key: string, value: AttributeValue): void {
    this.attributes[key] = value;
  }
}

/** The span's name: its protocol's, or `tcp PORT`. */
function spanName(ex: Exchange, view: ProtocolView): string {
  if (view.protocol) return view.protocol.spanName(view.request, view.response);
  return `tcp ${ex.role === Role.GB_ROLE_SERVER ? ex.tuple.localPort : ex.tuple.remotePort}`;
}

/** What describe tells a protocol of the exchange; one object, filled per span (describe runs to its end synchronously). */
const SIDE: ExchangeSide = { server: false, remoteAddr: '', remotePort: 0 };

/**
 * The span's attributes, written to `sink` in order, and its status: what
 * the semantic conventions require or recommend, and no more (every
 * attribute is paid for per span in the exporter). network.transport (tcp)
 * and network.protocol.name (http) are left out where they are the default.
 */
function describe(ex: Exchange, view: ProtocolView, sink: AttributeWriter, extra: Attributes | undefined): SpanStatus {
  const server = ex.role === Role.GB_ROLE_SERVER;
  const { tuple } = ex;
  sink.attribute(ATTR_NETWORK_PEER_ADDRESS, tuple.remoteAddr);
  sink.attribute(ATTR_NETWORK_PEER_PORT, tuple.remotePort);
  sink.attribute(ATTR_THREAD_ID, ex.request.tid);
  sink.attribute('gearbox.request.bytes', ex.request.bytes);
  sink.attribute('gearbox.response.bytes', ex.response?.bytes ?? 0);
  // How the span ended, when it is not the ordinary way (response complete or next request).
  if (ex.endReason !== 'complete' && ex.endReason !== 'next-request') sink.attribute('gearbox.end_reason', ex.endReason ?? 'unknown');
  if (!isIpv4(tuple.remoteAddr)) sink.attribute(ATTR_NETWORK_TYPE, 'ipv6');
  if (server) {
    sink.attribute(ATTR_SERVER_ADDRESS, tuple.localAddr);
    sink.attribute(ATTR_SERVER_PORT, tuple.localPort);
    sink.attribute(ATTR_CLIENT_ADDRESS, tuple.remoteAddr);
  } else {
    sink.attribute(ATTR_SERVER_ADDRESS, tuple.remoteAddr);
    sink.attribute(ATTR_SERVER_PORT, tuple.remotePort);
  }
  if (ex.incomplete) sink.attribute('gearbox.incomplete', ex.incomplete);
  if (ex.lostEvents) sink.attribute('gearbox.events_lost', ex.lostEvents);

  let status: SpanStatus = STATUS_UNSET;
  // The error.type attribute, when the protocol did not give one (a reply's
  // error needs a response, so this and the no-response case never meet).
  let errorTyped = false;
  if (view.protocol) {
    SIDE.server = server;
    SIDE.remoteAddr = tuple.remoteAddr;
    SIDE.remotePort = tuple.remotePort;
    const error = view.protocol.describe(view.request, view.response, SIDE, sink);
    if (error) {
      status = error.message === undefined ? STATUS_ERROR : { code: SpanStatusCode.ERROR, message: error.message };
      sink.attribute(ATTR_ERROR_TYPE, error.type);
      errorTyped = true;
    }
  } else {
    sink.attribute(ATTR_NETWORK_TRANSPORT, 'tcp');
  }
  if (!ex.response) {
    status = { code: SpanStatusCode.ERROR, message: `no response (${ex.endReason ?? 'unknown'})` };
    if (!errorTyped) sink.attribute(ATTR_ERROR_TYPE, 'no_response');
  }
  if (extra) for (const key in extra) sink.attribute(key, extra[key] as AttributeValue);
  return status;
}

/** The span's ids, kind, times and links: everything but its attributes and status. */
function spanFields(ex: Exchange, view: ProtocolView, clock: WallClock, links: Link[]): SpanFields {
  const endNs = ex.response ? ex.response.endNs : (ex.endedNs ?? ex.request.endNs);
  return {
    traceId: ex.traceId,
    spanId: ex.spanId,
    parentSpanId: ex.parentSpanId,
    parentIsRemote: (ex.flags & Flag.GB_F_REMOTE_PARENT) !== 0,
    traceFlags: ex.flags & Flag.GB_F_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE,
    name: spanName(ex, view),
    kind: ex.role === Role.GB_ROLE_SERVER ? SpanKind.SERVER : SpanKind.CLIENT,
    startTime: clock.toHrTime(ex.request.startNs),
    endTime: clock.toHrTime(Math.max(endNs, ex.request.startNs)),
    links,
  };
}

export function buildSpan(ex: Exchange, resource: Resource, clock: WallClock, extras: SpanExtras = NO_EXTRAS): ReadableSpan {
  const view = ex.protocol ?? identify(ex.request.head, ex.response?.head);
  const f = spanFields(ex, view, clock, extras.links ?? NO_LINKS);
  const attrs = new AttributesObject();
  const status = describe(ex, view, attrs, extras.attributes);
  const ctx: SpanContext = { traceId: f.traceId, spanId: f.spanId, traceFlags: f.traceFlags, isRemote: false };
  const parent: SpanContext | undefined = f.parentSpanId
    ? { traceId: f.traceId, spanId: f.parentSpanId, traceFlags: f.traceFlags, isRemote: f.parentIsRemote }
    : undefined;
  return new KernelSpan(f.name, f.kind, ctx, parent, f.startTime, f.endTime, status, attrs.attributes, f.links, resource);
}

/**
 * One span of an exchange written for OTLP straight from the exchange, as a
 * `ScopeSpans.spans` field (a view of the encoder's scratch buffer, valid
 * until its next call): the bytes `encoder.spanField(buildSpan(...))` gives,
 * without the span object, its attributes object and the walk over it
 * (test/unit/span-encoding.test.ts compares the two on recorded events).
 */
export function encodeSpan(part: SpanPart, clock: WallClock, encoder: OtlpTraceEncoder): Uint8Array {
  const { ex, extras } = part;
  const view = ex.protocol ?? identify(ex.request.head, ex.response?.head);
  return encoder.spanFieldOf(spanFields(ex, view, clock, extras.links ?? NO_LINKS), (sink) => describe(ex, view, sink, extras.attributes));
}
