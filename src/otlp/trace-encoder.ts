/**
 * The protobuf encoding of an OTLP ExportTraceServiceRequest: each span is
 * written into a reused scratch buffer (from a ReadableSpan, spanField, or
 * field by field, spanFieldOf, which the agent's own spans use) and its
 * bytes appended to its resource's and scope's group (TraceRequestBuilder),
 * then the request is assembled around the groups. Byte for byte what the serializer of
 * @opentelemetry/otlp-transformer writes for the same spans (same fields,
 * same order, same defaults; test/unit/otlp-trace-encoder.test.ts compares
 * the two), at a fraction of its cost. That serializer walks every span twice
 * (a size estimate, then the write) through two writer classes, which makes
 * its calls polymorphic, and allocates an array per id; for the agent's spans
 * (13 attributes) it took ~7 µs a span on these machines, more than the
 * agent's whole budget for a traced hop.
 *
 * Grouping is the library's: spans by resource, then by instrumentation
 * scope (identity, in order of first appearance).
 */
import type { AttributeValue, HrTime, Link, SpanContext, SpanKind, SpanStatus } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import { BufferPool, RequestBufferPool, type SpanBytes } from './buffer-pools';
import { TraceRequestBuilder } from './request-builder';

export { TraceRequestBuilder, type EncodedSpans } from './request-builder';
import {
  ExportTraceServiceRequest,
  ResourceSpans,
  ScopeSpans,
  Span,
  SpanEvent,
  SpanLink,
  SPAN_FLAGS_HAS_IS_REMOTE,
  SPAN_FLAGS_IS_REMOTE,
  Status,
} from './trace-messages';
import { FIXED32, FIXED64, LEN, VARINT, putVarint, varintSize } from './protobuf-writer';
import { CommonWriter } from './common-writer';

function spanFlags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | SPAN_FLAGS_HAS_IS_REMOTE | (isRemote ? SPAN_FLAGS_IS_REMOTE : 0);
}

/** A span given field by field (OtlpTraceEncoder.spanFieldOf): what a ReadableSpan holds but its attributes and status. */
export interface SpanFields {
  traceId: string;
  spanId: string;
  /** '' for a root. */
  parentSpanId: string;
  parentIsRemote: boolean;
  traceFlags: number;
  name: string;
  kind: SpanKind;
  startTime: HrTime;
  endTime: HrTime;
  links: Link[];
}

/** Where span attributes are written, one at a time. */
export interface AttributeWriter {
  attribute(key: string, value: AttributeValue): void;
}

/** Where the parts of one ResourceSpans are in the scratch buffer (OtlpTraceEncoder.request). */
interface ResourcePlan {
  /** Its Resource field, [at, resourceEnd). */
  at: number;
  resourceEnd: number;
  scopes: { at: number; scopeEnd: number; schemaEnd: number; spans: SpanBytes; length: number }[];
  /** Its schema_url field ends here (it starts after the last scope's schemaEnd, or at resourceEnd). */
  schemaEnd: number;
  /** Of the ResourceSpans message. */
  length: number;
}

/**
 * `buf` (a Buffer with an ArrayBuffer of its own, exactly its size) as a
 * Uint8Array that Buffer.from() shares instead of copying. The OTLP/gRPC
 * transport makes a Buffer of every request it sends (`Buffer.from(data)`),
 * which copied the whole request into fresh memory; Buffer.from() converts
 * an object whose valueOf() returns another object from that object
 * (Node's documented rule), and from an ArrayBuffer it makes a view.
 */
function shareableBytes(buf: Buffer): Uint8Array {
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  if (buf.byteOffset === 0 && buf.length === buf.buffer.byteLength) {
    const backing = buf.buffer;
    Object.defineProperty(bytes, 'valueOf', { value: () => backing });
  }
  return bytes;
}

export class OtlpTraceEncoder extends CommonWriter {
  /** Buffers for the span groups of the requests written with this encoder. */
  readonly pool = new BufferPool();
  /** Buffers lent to requests (lentRequest) until their export is done. */
  readonly requestBuffers = new RequestBufferPool();

  /** The request for these spans; a new array each call (the transport keeps it). */
  encode(spans: readonly ReadableSpan[]): Uint8Array {
    const request = new TraceRequestBuilder(this);
    for (const span of spans) request.add(span);
    return request.finish().bytes;
  }

  /** One span as a `ScopeSpans.spans` field (tag, length, Span): a view of the scratch buffer, valid until the next call. */
  spanField(span: ReadableSpan): Uint8Array {
    this.pos = 0;
    this.tag(ScopeSpans.spans, LEN);
    this.span(span);
    const out = this.buf.subarray(0, this.pos);
    this.shrinkScratch();
    return out;
  }

  /**
   * An ExportTraceServiceRequest around spans already encoded by spanField,
   * in a buffer of its own, exactly its size (the transport keeps it):
   * the resource and scope messages are written to the scratch buffer first,
   * which gives every length, then the request is assembled with one copy of
   * the spans' bytes. (Writing it whole into the scratch buffer and copying
   * that out moved every byte twice and zeroed the copy first; on these
   * virtual machines each fresh page a copy touches costs a fault, and the
   * bytes of a batch are ~450 KB.)
   */
  request(groups: ReadonlyMap<Resource, ReadonlyMap<InstrumentationScope, SpanBytes>>): Uint8Array {
    const { plan, total } = this.planRequest(groups);
    const out = Buffer.allocUnsafeSlow(total);
    this.assemble(plan, total, out);
    return shareableBytes(out);
  }

  /** The request written into a buffer lent from requestBuffers: `bytes` is its start; give `buffer` back when they are sent. */
  lentRequest(groups: ReadonlyMap<Resource, ReadonlyMap<InstrumentationScope, SpanBytes>>): { bytes: Buffer; buffer: Buffer } {
    const { plan, total } = this.planRequest(groups);
    const buffer = this.requestBuffers.take(total);
    this.assemble(plan, total, buffer);
    return { bytes: buffer.subarray(0, total), buffer };
  }

  /** Resource and scope messages into the scratch buffer, which gives every length; the request's size. */
  private planRequest(groups: ReadonlyMap<Resource, ReadonlyMap<InstrumentationScope, SpanBytes>>): { plan: ResourcePlan[]; total: number } {
    this.pos = 0;
    const plan: ResourcePlan[] = [];
    let total = 0;
    for (const [resource, scopes] of groups) {
      const at = this.pos;
      this.resource(resource);
      const r: ResourcePlan = { at, resourceEnd: this.pos, scopes: [], schemaEnd: 0, length: 0 };
      let length = this.pos - at;
      for (const [scope, spans] of scopes) {
        const scopeAt = this.pos;
        this.scope(scope);
        const scopeEnd = this.pos;
        if (scope.schemaUrl) {
          this.tag(ScopeSpans.schema_url, LEN);
          this.string(scope.schemaUrl);
        }
        const scopeLength = this.pos - scopeAt + spans.length;
        r.scopes.push({ at: scopeAt, scopeEnd, schemaEnd: this.pos, spans, length: scopeLength });
        length += 1 + varintSize(scopeLength) + scopeLength;
      }
      const schemaAt = this.pos;
      if (resource.schemaUrl) {
        this.tag(ResourceSpans.schema_url, LEN);
        this.string(resource.schemaUrl);
      }
      r.schemaEnd = this.pos;
      r.length = length + (this.pos - schemaAt);
      plan.push(r);
      total += 1 + varintSize(r.length) + r.length;
    }
    return { plan, total };
  }

  /** The planned request (`total` bytes) into `out` (at least that large) from its start, with one copy of the spans' bytes. */
  private assemble(plan: ResourcePlan[], total: number, out: Buffer): void {
    const head = this.buf;
    let p = 0;
    for (const r of plan) {
      out[p++] = (ExportTraceServiceRequest.resource_spans << 3) | LEN;
      p = putVarint(out, p, r.length);
      p += head.copy(out, p, r.at, r.resourceEnd);
      let from = r.resourceEnd;
      for (const sc of r.scopes) {
        out[p++] = (ResourceSpans.scope_spans << 3) | LEN;
        p = putVarint(out, p, sc.length);
        p += head.copy(out, p, sc.at, sc.scopeEnd);
        p += sc.spans.copyTo(out, p);
        p += head.copy(out, p, sc.scopeEnd, sc.schemaEnd);
        from = sc.schemaEnd;
      }
      p += head.copy(out, p, from, r.schemaEnd);
    }
    if (p !== total) throw new Error(`OtlpTraceEncoder: request assembled to ${p} bytes of ${total}`);
    this.shrinkScratch();
  }

  private span(span: ReadableSpan): void {
    const start = this.beginLength(2);
    const ctx: SpanContext = span.spanContext();
    this.contextFields(ctx);
    const parent = span.parentSpanContext;
    this.spanHead(parent?.spanId, span.name, span.kind, span.startTime, span.endTime);
    if (span.attributes) this.attributes(span.attributes, Span.attributes);
    this.tag(Span.dropped_attributes_count, VARINT);
    this.varint(span.droppedAttributesCount);
    for (const event of span.events) {
      this.tag(Span.events, LEN);
      this.event(event);
    }
    this.tag(Span.dropped_events_count, VARINT);
    this.varint(span.droppedEventsCount);
    this.spanTail(span.links, span.droppedLinksCount, span.status, spanFlags(ctx.traceFlags, parent?.isRemote));
    this.endLength(start, 2);
  }

  /**
   * A span given field by field, as a `ScopeSpans.spans` field: a view of
   * the scratch buffer, valid until the next call. `writeAttributes` writes
   * the span's attributes in order and returns its status. Byte for byte
   * what spanField writes for the ReadableSpan of the same content (no
   * events, no trace state, nothing dropped).
   */
  spanFieldOf(f: SpanFields, writeAttributes: (sink: AttributeWriter) => SpanStatus): Uint8Array {
    this.pos = 0;
    this.tag(ScopeSpans.spans, LEN);
    const start = this.beginLength(2);
    this.tag(Span.trace_id, LEN);
    this.hex(f.traceId);
    this.tag(Span.span_id, LEN);
    this.hex(f.spanId);
    this.spanHead(f.parentSpanId || undefined, f.name, f.kind, f.startTime, f.endTime);
    const status = writeAttributes(this.spanAttributes);
    this.tag(Span.dropped_attributes_count, VARINT);
    this.varint(0);
    this.tag(Span.dropped_events_count, VARINT);
    this.varint(0);
    this.spanTail(f.links, 0, status, spanFlags(f.traceFlags, f.parentSpanId ? f.parentIsRemote : undefined));
    this.endLength(start, 2);
    const out = this.buf.subarray(0, this.pos);
    this.shrinkScratch();
    return out;
  }

  /** Span.attributes, one KeyValue at a time. */
  private readonly spanAttributes: AttributeWriter = {
    attribute: (key, value) => {
      this.tag(Span.attributes, LEN);
      this.keyValue(key, value);
    },
  };

  /** Span fields 4 to 8: parent_span_id, name, kind, start and end time. */
  private spanHead(parentSpanId: string | undefined, name: string, spanKind: SpanKind | undefined, startTime: HrTime, endTime: HrTime): void {
    if (parentSpanId) {
      this.tag(Span.parent_span_id, LEN);
      this.hex(parentSpanId);
    }
    this.tag(Span.name, LEN);
    this.string(name);
    const kind = spanKind == null ? 0 : spanKind + 1; // OTLP counts UNSPECIFIED as 0
    if (kind !== 0) {
      this.tag(Span.kind, VARINT);
      this.varint(kind);
    }
    this.tag(Span.start_time_unix_nano, FIXED64);
    this.hrTime(startTime);
    this.tag(Span.end_time_unix_nano, FIXED64);
    this.hrTime(endTime);
  }

  /** Span fields 13 to 16: links, dropped_links_count, status and flags. */
  private spanTail(links: readonly Link[], droppedLinks: number, status: SpanStatus, flags: number): void {
    for (const link of links) {
      this.tag(Span.links, LEN);
      this.link(link);
    }
    this.tag(Span.dropped_links_count, VARINT);
    this.varint(droppedLinks);
    this.tag(Span.status, LEN);
    const statusStart = this.beginLength(1);
    if (status.message) {
      this.tag(Status.message, LEN);
      this.string(status.message);
    }
    this.tag(Status.code, VARINT);
    this.varint(status.code);
    this.endLength(statusStart, 1);
    this.tag(Span.flags, FIXED32);
    this.fixed32(flags);
  }

  /** trace_id, span_id and trace_state: fields 1 to 3 of both Span and Span.Link. */
  private contextFields(ctx: SpanContext): void {
    this.tag(Span.trace_id, LEN);
    this.hex(ctx.traceId);
    this.tag(Span.span_id, LEN);
    this.hex(ctx.spanId);
    const traceState = ctx.traceState?.serialize();
    if (traceState) {
      this.tag(Span.trace_state, LEN);
      this.string(traceState);
    }
  }

  private event(event: TimedEvent): void {
    const start = this.beginLength(1);
    this.tag(SpanEvent.time_unix_nano, FIXED64);
    this.hrTime(event.time);
    this.tag(SpanEvent.name, LEN);
    this.string(event.name);
    if (event.attributes) this.attributes(event.attributes, SpanEvent.attributes);
    this.tag(SpanEvent.dropped_attributes_count, VARINT);
    this.varint(event.droppedAttributesCount || 0);
    this.endLength(start, 1);
  }

  private link(link: Link): void {
    const start = this.beginLength(1);
    const ctx = link.context;
    this.contextFields(ctx);
    if (link.attributes) this.attributes(link.attributes, SpanLink.attributes);
    this.tag(SpanLink.dropped_attributes_count, VARINT);
    this.varint(link.droppedAttributesCount || 0);
    this.tag(SpanLink.flags, FIXED32);
    this.fixed32(spanFlags(ctx.traceFlags, ctx.isRemote));
    this.endLength(start, 1);
  }
}
