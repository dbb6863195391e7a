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
import type { Attributes, AttributeValue, HrTime, Link, SpanContext, SpanKind, SpanStatus } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';

/** Wire types. */
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

// Span flags (OTLP): the low byte is the W3C trace flags.
const FLAGS_HAS_IS_REMOTE = 0x100;
const FLAGS_IS_REMOTE = 0x200;

const INT64_MIN = -(2 ** 63);
const INT64_END = 2 ** 63;
const TWO_32 = 0x1_0000_0000;

/** The scratch buffer's size to start with and to return to after a large batch. */
const INITIAL_BYTES = 1 << 20;

/** A hex digit's value, as the library reads it (anything else counts as A-F). */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return c - 55;
}

/** hexValue of the character codes below 128, looked up. */
const HEX_VALUE = Int16Array.from({ length: 128 }, (_, c) => hexValue(c));

function spanFlags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | FLAGS_HAS_IS_REMOTE | (isRemote ? FLAGS_IS_REMOTE : 0);
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

/** Spans already encoded for OTLP, ready to send: the bytes of one ExportTraceServiceRequest. */
export interface EncodedSpans {
  readonly bytes: Uint8Array;
  readonly spanCount: number;
  /**
   * Present when `bytes` lies in a buffer lent by the encoder (a request
   * written with `reuse`): call once the export is done and no transport
   * reads the bytes any more; the memory goes to a later request. Later
   * calls do nothing.
   */
  readonly release?: () => void;
}

/** What one span group's bytes start with, before growing (a batch of a few spans). */
const SPAN_BYTES_INITIAL = 16 * 1024;
/** The most bytes kept for the next requests (a batch of 1,024 agent spans is ~450 KB). */
const POOL_MAX_BYTES = 8 << 20;

/**
 * The span groups' buffers of finished requests, handed to the next ones:
 * a fresh buffer per group and batch, doubling as it filled, would allocate
 * about twice a batch's size in external memory (which V8 counts towards its
 * collections) for every batch; reused, a steady stream allocates only the
 * requests themselves.
 */
class BufferPool {
  private readonly free: Buffer[] = [];
  private bytes = 0;

  take(atLeast: number): Buffer {
    for (let i = this.free.length - 1; i >= 0; i--) {
      const buf = this.free[i];
      if (buf.length < atLeast) continue;
      this.free.splice(i, 1);
      this.bytes -= buf.length;
      return buf;
    }
    return Buffer.allocUnsafeSlow(Math.max(SPAN_BYTES_INITIAL, atLeast));
  }

  give(buf: Buffer): void {
    if (this.bytes + buf.length > POOL_MAX_BYTES) return;
    this.free.push(buf);
    this.bytes += buf.length;
  }
}

/** Free request buffers kept for the next requests. */
const REQUEST_BUFFERS_KEPT = 4;
/** Request buffers are at least this large, and a power of two: batches of varying size fit the buffers of earlier ones. */
const REQUEST_BUFFER_MIN = 64 * 1024;

/**
 * Buffers for whole requests, lent out while a request is being sent and
 * given back when its export is done. A fresh buffer per request cost a page
 * fault per 4 KB the assembly touched (a 512-span request is ~225 KB) and
 * left the dead ones to V8's collections; a few lent in turn are touched once.
 */
class RequestBufferPool {
  private readonly free: Buffer[] = [];

  take(size: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i].length >= size && (best < 0 || this.free[i].length < this.free[best].length)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0];
    let length = REQUEST_BUFFER_MIN;
    while (length < size) length *= 2;
    return Buffer.allocUnsafeSlow(length);
  }

  give(buf: Buffer): void {
    if (this.free.length < REQUEST_BUFFERS_KEPT) this.free.push(buf);
    else {
      // Keep the largest: a smaller one fits fewer requests.
      let smallest = 0;
      for (let i = 1; i < this.free.length; i++) if (this.free[i].length < this.free[smallest].length) smallest = i;
      if (this.free[smallest].length < buf.length) this.free[smallest] = buf;
    }
  }
}

/** The encoded spans of one resource and scope: their `ScopeSpans.spans` fields, back to back. */
class SpanBytes {
  private buf: Buffer;
  length = 0;

  constructor(
    private readonly pool: BufferPool,
    first: Uint8Array,
  ) {
    this.buf = pool.take(first.length);
    this.append(first);
  }

  append(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.length + bytes.length) size *= 2;
      const grown = this.pool.take(size);
      this.buf.copy(grown, 0, 0, this.length);
      this.pool.give(this.buf);
      this.buf = grown;
    }
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** Copies the bytes into `dst` at `at`; returns how many. */
  copyTo(dst: Buffer, at: number): number {
    return this.buf.copy(dst, at, 0, this.length);
  }

  /** Its buffer back to the pool; the bytes are not to be read again. */
  release(): void {
    this.pool.give(this.buf);
    this.length = 0;
  }
}

/**
 * One OTLP request being put together: each span is encoded when it is
 * added, and only its bytes are kept (outside the JavaScript heap), so a
 * span object does not outlive the code that built it. Kept until their
 * batch is sent, span objects (~1.2 KB of heap each: attributes, ids,
 * times) are copied by young-generation collections, promoted, and
 * collected again by the old generation's.
 */
export class TraceRequestBuilder {
  private readonly groups = new Map<Resource, Map<InstrumentationScope, SpanBytes>>();
  spanCount = 0;

  constructor(private readonly encoder: OtlpTraceEncoder) {}

  add(span: ReadableSpan): void {
    this.addField(span.resource, span.instrumentationScope, this.encoder.spanField(span));
  }

  /** A span already written as a `ScopeSpans.spans` field (spanField, spanFieldOf) by this builder's encoder. */
  addField(resource: Resource, scope: InstrumentationScope, bytes: Uint8Array): void {
    let byScope = this.groups.get(resource);
    if (!byScope) this.groups.set(resource, (byScope = new Map()));
    const group = byScope.get(scope);
    if (group) group.append(bytes);
    else byScope.set(scope, new SpanBytes(this.encoder.pool, bytes));
    this.spanCount++;
  }

  /** The resources of the spans added, in order of first appearance. */
  resources(): Resource[] {
    return [...this.groups.keys()];
  }

  /**
   * The request: spans by resource, then by scope, both in order of first
   * appearance. `reuse`: written into a buffer the encoder lends (see
   * EncodedSpans.release), for a transport that is done with the bytes when
   * its export is; else into a buffer of its own, exactly its size.
   */
  finish(reuse = false): EncodedSpans {
    const spanCount = this.spanCount;
    let encoded: EncodedSpans;
    if (reuse) {
      const { bytes, buffer } = this.encoder.lentRequest(this.groups);
      let lent = true;
      encoded = {
        bytes,
        spanCount,
        release: () => {
          if (!lent) return;
          lent = false;
          this.encoder.requestBuffers.give(buffer);
        },
      };
    } else {
      encoded = { bytes: this.encoder.request(this.groups), spanCount };
    }
    for (const scopes of this.groups.values()) for (const group of scopes.values()) group.release();
    this.groups.clear();
    return encoded;
  }
}

export class OtlpTraceEncoder {
  private buf: Buffer = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  private pos = 0;
  private readonly keys = new Map<string, Uint8Array>();
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
    this.tag(2, LEN);
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
          this.tag(3, LEN);
          this.string(scope.schemaUrl);
        }
        const scopeLength = this.pos - scopeAt + spans.length;
        r.scopes.push({ at: scopeAt, scopeEnd, schemaEnd: this.pos, spans, length: scopeLength });
        length += 1 + varintSize(scopeLength) + scopeLength;
      }
      const schemaAt = this.pos;
      if (resource.schemaUrl) {
        this.tag(3, LEN);
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
      out[p++] = (1 << 3) | LEN; // ExportTraceServiceRequest.resource_spans
      p = putVarint(out, p, r.length);
      p += head.copy(out, p, r.at, r.resourceEnd);
      let from = r.resourceEnd;
      for (const sc of r.scopes) {
        out[p++] = (2 << 3) | LEN; // ResourceSpans.scope_spans
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

  /** The scratch buffer back to its first size after an outsized span or request. */
  private shrinkScratch(): void {
    if (this.buf.length > 8 * INITIAL_BYTES) this.buf = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  }

  private resource(resource: Resource): void {
    this.tag(1, LEN);
    const start = this.beginLength(2);
    this.attributes(resource.attributes, 1);
    this.tag(2, VARINT);
    this.varint(0); // dropped_attributes_count: the library writes 0
    this.endLength(start, 2);
  }

  private scope(scope: InstrumentationScope & { attributes?: Attributes; droppedAttributesCount?: number }): void {
    this.tag(1, LEN);
    const start = this.beginLength(1);
    this.tag(1, LEN);
    this.string(scope.name);
    if (scope.version) {
      this.tag(2, LEN);
      this.string(scope.version);
    }
    if (scope.attributes) this.attributes(scope.attributes, 3);
    if (scope.droppedAttributesCount) {
      this.tag(4, VARINT);
      this.varint(scope.droppedAttributesCount);
    }
    this.endLength(start, 1);
  }

  private span(span: ReadableSpan): void {
    const start = this.beginLength(2);
    const ctx: SpanContext = span.spanContext();
    this.contextFields(ctx);
    const parent = span.parentSpanContext;
    this.spanHead(parent?.spanId, span.name, span.kind, span.startTime, span.endTime);
    if (span.attributes) this.attributes(span.attributes, 9);
    this.tag(10, VARINT);
    this.varint(span.droppedAttributesCount);
    for (const event of span.events) {
      this.tag(11, LEN);
      this.event(event);
    }
    this.tag(12, VARINT);
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
    this.tag(2, LEN);
    const start = this.beginLength(2);
    this.tag(1, LEN);
    this.hex(f.traceId);
    this.tag(2, LEN);
    this.hex(f.spanId);
    this.spanHead(f.parentSpanId || undefined, f.name, f.kind, f.startTime, f.endTime);
    const status = writeAttributes(this.spanAttributes);
    this.tag(10, VARINT);
    this.varint(0);
    this.tag(12, VARINT);
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
      this.tag(9, LEN);
      this.keyValue(key, value);
    },
  };

  /** Span fields 4 to 8: parent_span_id, name, kind, start and end time. */
  private spanHead(parentSpanId: string | undefined, name: string, spanKind: SpanKind | undefined, startTime: HrTime, endTime: HrTime): void {
    if (parentSpanId) {
      this.tag(4, LEN);
      this.hex(parentSpanId);
    }
    this.tag(5, LEN);
    this.string(name);
    const kind = spanKind == null ? 0 : spanKind + 1; // OTLP counts UNSPECIFIED as 0
    if (kind !== 0) {
      this.tag(6, VARINT);
      this.varint(kind);
    }
    this.tag(7, FIXED64);
    this.hrTime(startTime);
    this.tag(8, FIXED64);
    this.hrTime(endTime);
  }

  /** Span fields 13 to 16: links, dropped_links_count, status and flags. */
  private spanTail(links: readonly Link[], droppedLinks: number, status: SpanStatus, flags: number): void {
    for (const link of links) {
      this.tag(13, LEN);
      this.link(link);
    }
    this.tag(14, VARINT);
    this.varint(droppedLinks);
    this.tag(15, LEN);
    const statusStart = this.beginLength(1);
    if (status.message) {
      this.tag(2, LEN);
      this.string(status.message);
    }
    this.tag(3, VARINT);
    this.varint(status.code);
    this.endLength(statusStart, 1);
    this.tag(16, FIXED32);
    this.fixed32(flags);
  }

  /** trace_id, span_id and trace_state: fields 1 to 3 of both Span and Span.Link. */
  private contextFields(ctx: SpanContext): void {
    this.tag(1, LEN);
    this.hex(ctx.traceId);
    this.tag(2, LEN);
    this.hex(ctx.spanId);
    const traceState = ctx.traceState?.serialize();
    if (traceState) {
      this.tag(3, LEN);
      this.string(traceState);
    }
  }

  private event(event: TimedEvent): void {
    const start = this.beginLength(1);
    this.tag(1, FIXED64);
    this.hrTime(event.time);
    this.tag(2, LEN);
    this.string(event.name);
    if (event.attributes) this.attributes(event.attributes, 3);
    this.tag(4, VARINT);
    this.varint(event.droppedAttributesCount || 0);
    this.endLength(start, 1);
  }

  private link(link: Link): void {
    const start = this.beginLength(1);
    const ctx = link.context;
    this.contextFields(ctx);
    if (link.attributes) this.attributes(link.attributes, 4);
    this.tag(5, VARINT);
    this.varint(link.droppedAttributesCount || 0);
    this.tag(6, FIXED32);
    this.fixed32(spanFlags(ctx.traceFlags, ctx.isRemote));
    this.endLength(start, 1);
  }

  /** Repeated KeyValue in field `field`. */
  private attributes(attrs: Attributes, field: number): void {
    for (const key in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key)) continue;
      this.tag(field, LEN);
      this.keyValue(key, attrs[key]);
    }
  }

  private keyValue(key: string, value: unknown): void {
    const start = this.beginLength(1);
    this.keyField(key);
    this.tag(2, LEN);
    const valueStart = this.beginLength(1);
    this.anyValue(value);
    this.endLength(valueStart, 1);
    this.endLength(start, 1);
  }

  /** The fields of an AnyValue (its enclosing length is the caller's). */
  private anyValue(value: unknown): void {
    switch (typeof value) {
      case 'string':
        this.tag(1, LEN);
        this.string(value);
        return;
      case 'boolean':
        this.tag(2, VARINT);
        this.varint(value ? 1 : 0);
        return;
      case 'number':
        if (Number.isInteger(value) && value >= INT64_MIN && value < INT64_END) {
          this.tag(3, VARINT);
          this.varint(value);
        } else {
          this.tag(4, FIXED64);
          this.ensure(8);
          this.buf.writeDoubleLE(value, this.pos);
          this.pos += 8;
        }
        return;
      case 'object':
        if (value === null) return;
        if (value instanceof Uint8Array) {
          this.tag(7, LEN);
          this.bytes(value);
        } else if (Array.isArray(value)) {
          this.tag(5, LEN);
          const start = this.beginLength(1);
          for (const item of value as AttributeValue[]) {
            this.tag(1, LEN);
            const itemStart = this.beginLength(1);
            this.anyValue(item);
            this.endLength(itemStart, 1);
          }
          this.endLength(start, 1);
        } else {
          this.tag(6, LEN);
          const start = this.beginLength(1);
          const obj = value as Record<string, unknown>;
          for (const k in obj) {
            if (!Object.prototype.hasOwnProperty.call(obj, k)) continue;
            this.tag(1, LEN);
            this.keyValue(k, obj[k]);
          }
          this.endLength(start, 1);
        }
        return;
      default:
      // undefined, functions, symbols, bigints: an empty AnyValue, as the library writes
    }
  }

  /** KeyValue.key, from a cache of encoded keys (attribute keys are few). */
  private keyField(key: string): void {
    let encoded = this.keys.get(key);
    if (!encoded) {
      const at = this.pos;
      this.tag(1, LEN);
      this.string(key);
      encoded = new Uint8Array(this.buf.subarray(at, this.pos)); // a copy: subarray is a view of the scratch buffer
      if (this.keys.size >= 512) this.keys.clear();
      this.keys.set(key, encoded);
      return;
    }
    const n = encoded.length;
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = encoded[i];
    this.pos = p;
  }

  // --- primitives --------------------------------------------------------

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = Buffer.allocUnsafeSlow(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** A varint; negative integers as 64-bit two's complement (10 bytes), as protobuf's int64. */
  private varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    if (value >= 0 && value <= 0xffff_ffff) {
      let v = value >>> 0;
      while (v > 0x7f) {
        buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      buf[this.pos++] = v;
      return;
    }
    const abs = Math.abs(value);
    let low = abs >>> 0;
    let high = Math.floor(abs / TWO_32) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    while (high > 0 || low > 0x7f) {
      buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buf[this.pos++] = low;
  }

  private fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  /** HrTime [seconds, nanoseconds] as fixed64 nanoseconds, exact past 2^53. */
  private hrTime(t: HrTime): void {
    const seconds = t[0];
    const upper = Math.floor(seconds / 0x10000) * 1e9; // whole 2^16-second blocks, in ns / 2^16
    const lowPart = (upper % 0x10000) * 0x10000 + (seconds % 0x10000) * 1e9 + t[1];
    const high = Math.floor(upper / 0x10000) + Math.floor(lowPart / TWO_32);
    this.ensure(8);
    this.buf.writeUInt32LE(lowPart >>> 0, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /** A length-delimited string, UTF-8. */
  private string(s: string): void {
    const len = s.length;
    if (len < 0x80) {
      // One length byte; ASCII is written as it is scanned.
      this.ensure(len + 1);
      const buf = this.buf;
      const at = this.pos;
      let p = at + 1;
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) return this.utf8(s);
        buf[p++] = c;
      }
      buf[at] = len;
      this.pos = p;
      return;
    }
    this.utf8(s);
  }

  private utf8(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }

  private bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A hex id as bytes, length-delimited (as the library: pairs of digits, case-insensitive). */
  private hex(id: string): void {
    const n = id.length >>> 1;
    this.varint(n);
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < 2 * n; i += 2) {
      const hi = id.charCodeAt(i);
      const lo = id.charCodeAt(i + 1);
      buf[p++] = ((hi < 128 ? HEX_VALUE[hi] : hexValue(hi)) << 4) | (lo < 128 ? HEX_VALUE[lo] : hexValue(lo));
    }
    this.pos = p;
  }

  /** Reserves `guess` bytes for a length written by endLength; returns where. */
  private beginLength(guess: number): number {
    this.ensure(guess);
    const at = this.pos;
    this.pos += guess;
    return at;
  }

  /** Writes the length of what followed beginLength, as a minimal varint, moving the content if the guess was wrong. */
  private endLength(at: number, guess: number): void {
    const length = this.pos - at - guess;
    const size = varintSize(length);
    if (size !== guess) {
      this.ensure(size - guess);
      this.buf.copyWithin(at + size, at + guess, this.pos);
      this.pos += size - guess;
    }
    const buf = this.buf;
    let v = length;
    let p = at;
    while (v > 0x7f) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p] = v;
  }
}

/** Writes `v` (below 2^32) as a varint into `buf` at `p`; returns the position after it. */
function putVarint(buf: Buffer, p: number, v: number): number {
  while (v > 0x7f) {
    buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[p++] = v;
  return p;
}

function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x20_0000) return 3;
  if (v < 0x1000_0000) return 4;
  return 5;
}
