/**
 * Turns a correlated exchange into an OTel ReadableSpan whose ids and times
 * came from the kernel. Named and described by protocol (HTTP/1.x, Redis,
 * generic TCP) following the semantic conventions.
 */
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type Link, type SpanContext, type SpanStatus } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_NAME,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_NETWORK_TRANSPORT,
  ATTR_NETWORK_TYPE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
  ATTR_DB_SYSTEM_NAME,
  ATTR_DB_OPERATION_NAME,
} from '@opentelemetry/semantic-conventions';
import { ATTR_THREAD_ID } from '@opentelemetry/semantic-conventions/incubating';
import { Flag, Role } from '../events/layout';
import type { Exchange } from '../trace/correlator';
import { identify } from '../protocols';
import { looksLikeHttpRequest, splitPipelinedRequests, splitResponses } from '../protocols/http1';
import { derivePipelined } from '../trace/pipelining';
import { hrDuration, type WallClock } from './clock';

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

/**
 * All spans of an exchange: one, or one per request when a client pipelined
 * several HTTP/1.1 requests in one message. Request k >= 1 gets the ids the
 * server's kernel derives for it (src/trace/pipelining.ts); a pipelined
 * request of a client that itself serves a request is a root linked to it.
 */
export function buildSpans(ex: Exchange, resource: Resource, clock: WallClock): ReadableSpan[] {
  if (ex.role === Role.GB_ROLE_CLIENT && ex.request.head && mayHoldPipelinedRequests(ex, ex.request.head)) {
    const parts = splitPipelinedRequests(ex.request.head);
    if (parts.length > 1) {
      const responses = ex.response?.head ? splitResponses(ex.response.head, parts.length) : [];
      return parts.map((part, k) => {
        const ids = derivePipelined(ex.traceId, ex.spanId, k);
        const parentLink: Link[] = k > 0 && ex.parentSpanId ? [{ context: { traceId: ex.traceId, spanId: ex.parentSpanId, traceFlags: TraceFlags.SAMPLED } }] : [];
        const copy: Exchange = {
          ...ex,
          traceId: ids.traceId,
          spanId: ids.spanId,
          parentSpanId: k === 0 ? ex.parentSpanId : '',
          protocol: undefined, // the heads differ from the exchange's
          request: { ...ex.request, head: part },
          response: ex.response && { ...ex.response, head: responses[k] },
        };
        return buildSpan(copy, resource, clock, {
          attributes: { 'gearbox.pipelined.index': k, 'gearbox.pipelined.count': parts.length },
          links: parentLink,
        });
      });
    }
  }
  const extras: SpanExtras = ex.pipelineIndex ? { attributes: { 'gearbox.pipelined.index': ex.pipelineIndex } } : {};
  return [buildSpan(ex, resource, clock, extras)];
}

/** Bytes follow the first HTTP request in the head (or its parse is not known yet). */
function mayHoldPipelinedRequests(ex: Exchange, head: Buffer): boolean {
  if (ex.protocol === undefined) return looksLikeHttpRequest(head);
  if (ex.protocol.protocol !== 'http') return false;
  const { headLength, contentLength } = ex.protocol.request;
  return headLength !== undefined && headLength + (contentLength ?? 0) < head.length;
}

export function buildSpan(ex: Exchange, resource: Resource, clock: WallClock, extras: SpanExtras = {}): ReadableSpan {
  const server = ex.role === Role.GB_ROLE_SERVER;
  const view = ex.protocol ?? identify(ex.request.head, ex.response?.head);
  // What the semantic conventions require or recommend, and no more: every
  // attribute is paid for per span in the exporter. network.transport (tcp)
  // and network.protocol.name (http) are left out where they are the default.
  const attrs: Attributes = {
    [ATTR_NETWORK_PEER_ADDRESS]: ex.tuple.remoteAddr,
    [ATTR_NETWORK_PEER_PORT]: ex.tuple.remotePort,
    [ATTR_THREAD_ID]: ex.request.tid,
    'gearbox.request.bytes': ex.request.bytes,
    'gearbox.response.bytes': ex.response?.bytes ?? 0,
  };
  // How the span ended, when it is not the ordinary way (response complete or next request).
  if (ex.endReason !== 'complete' && ex.endReason !== 'next-request') attrs['gearbox.end_reason'] = ex.endReason ?? 'unknown';
  if (!isIpv4(ex.tuple.remoteAddr)) attrs[ATTR_NETWORK_TYPE] = 'ipv6';
  if (server) {
    attrs[ATTR_SERVER_ADDRESS] = ex.tuple.localAddr;
    attrs[ATTR_SERVER_PORT] = ex.tuple.localPort;
    attrs[ATTR_CLIENT_ADDRESS] = ex.tuple.remoteAddr;
  } else {
    attrs[ATTR_SERVER_ADDRESS] = ex.tuple.remoteAddr;
    attrs[ATTR_SERVER_PORT] = ex.tuple.remotePort;
  }
  if (ex.incomplete) attrs['gearbox.incomplete'] = ex.incomplete;
  if (ex.lostEvents) attrs['gearbox.events_lost'] = ex.lostEvents;

  let name: string;
  let status: SpanStatus = STATUS_UNSET;
  switch (view.protocol) {
    case 'http': {
      const { request, response } = view;
      name = request.method;
      attrs[ATTR_HTTP_REQUEST_METHOD] = request.method;
      attrs[ATTR_URL_PATH] = request.path;
      if (request.query !== undefined) attrs[ATTR_URL_QUERY] = request.query;
      attrs[ATTR_URL_SCHEME] = 'http';
      attrs[ATTR_NETWORK_PROTOCOL_VERSION] = request.version;
      if (request.userAgent) attrs[ATTR_USER_AGENT_ORIGINAL] = request.userAgent;
      if (!server) {
        const host = request.host ?? `${ex.tuple.remoteAddr}:${ex.tuple.remotePort}`;
        attrs[ATTR_URL_FULL] = `http://${host}${request.target.startsWith('/') ? request.target : '/'}`;
      }
      if (response) {
        attrs[ATTR_HTTP_RESPONSE_STATUS_CODE] = response.status;
        if (response.status >= 500 || (!server && response.status >= 400)) {
          status = STATUS_ERROR;
          attrs[ATTR_ERROR_TYPE] = String(response.status);
        }
      }
      break;
    }
    case 'redis': {
      name = view.command.name;
      attrs[ATTR_DB_SYSTEM_NAME] = 'redis';
      attrs[ATTR_DB_OPERATION_NAME] = view.command.name;
      attrs[ATTR_NETWORK_PROTOCOL_NAME] = 'resp';
      if (view.reply?.error !== undefined) {
        status = { code: SpanStatusCode.ERROR, message: view.reply.error };
        attrs[ATTR_ERROR_TYPE] = view.reply.error.split(' ')[0] || 'redis_error';
      }
      break;
    }
    default:
      name = `tcp ${server ? ex.tuple.localPort : ex.tuple.remotePort}`;
      attrs[ATTR_NETWORK_TRANSPORT] = 'tcp';
  }
  if (!ex.response) {
    status = { code: SpanStatusCode.ERROR, message: `no response (${ex.endReason ?? 'unknown'})` };
    attrs[ATTR_ERROR_TYPE] ??= 'no_response';
  }
  Object.assign(attrs, extras.attributes);

  const traceFlags = ex.flags & Flag.GB_F_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE;
  const ctx: SpanContext = { traceId: ex.traceId, spanId: ex.spanId, traceFlags, isRemote: false };
  const parent: SpanContext | undefined = ex.parentSpanId
    ? { traceId: ex.traceId, spanId: ex.parentSpanId, traceFlags, isRemote: (ex.flags & Flag.GB_F_REMOTE_PARENT) !== 0 }
    : undefined;
  const endNs = ex.response ? ex.response.endNs : ex.request.endNs;
  const startTime = clock.toHrTime(ex.request.startNs);
  const endTime = clock.toHrTime(Math.max(endNs, ex.request.startNs));
  return new KernelSpan(name, server ? SpanKind.SERVER : SpanKind.CLIENT, ctx, parent, startTime, endTime, status, attrs, extras.links ?? NO_LINKS, resource);
}
