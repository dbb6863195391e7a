/**
 * OtlpTraceEncoder writes, byte for byte, what the OpenTelemetry serializer
 * (@opentelemetry/otlp-transformer) writes for the same spans: the agent's own
 * spans from recorded kernel events, and spans with every feature of the
 * data model the agent does not use itself (events, links, trace state, every
 * attribute value type, non-ASCII and long strings, several resources and
 * scopes, schema URLs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type HrTime, type Link } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { OtlpTraceEncoder } from '../../src/otlp/trace-encoder';
import { traceSerializer } from '../../src/otlp/otlp-grpc-exporter';
import { INSTRUMENTATION_SCOPE } from '../../src/export/span-builder';
import { recordedSpans } from '../support/recorded-spans';

function library(spans: ReadableSpan[]): Buffer {
  const out = ProtobufTraceSerializer.serializeRequest(spans);
  assert.ok(out, 'the library serialized the spans');
  return Buffer.from(out);
}

function assertSameBytes(encoder: OtlpTraceEncoder, spans: ReadableSpan[], what: string): number {
  const ours = Buffer.from(encoder.encode(spans));
  const theirs = library(spans);
  if (!ours.equals(theirs)) {
    let at = 0;
    while (at < ours.length && ours[at] === theirs[at]) at++;
    assert.fail(`${what}: ${ours.length} bytes against the library's ${theirs.length}, first difference at byte ${at}`);
  }
  return ours.length;
}

test("the agent's spans from recorded kernel events: the library's bytes, in batches of 1 to all, one resource or several", () => {
  const one = [resourceFromAttributes({ 'service.name': 'frontend', 'host.name': 'h2', 'process.pid': 4242 })];
  const several = [
    ...one,
    resourceFromAttributes({ 'service.name': 'backend', 'process.command_args': ['python3', 'app.py'] }),
    resourceFromAttributes({ 'service.name': 'cache', 'process.runtime.name': 'CPython' }),
  ];
  const encoder = new OtlpTraceEncoder();
  let compared = 0;
  let bytes = 0;
  for (const resources of [one, several]) {
    const spans = recordedSpans(resources);
    assert.ok(spans.length >= 400, `spans from the recordings: ${spans.length}`);
    for (const size of [1, 2, 7, 64, 1024, spans.length]) {
      for (let i = 0; i < spans.length; i += size) {
        bytes += assertSameBytes(encoder, spans.slice(i, i + size), `batch of ${size} at ${i}`);
        compared++;
      }
    }
  }
  console.log(`# ${compared} batches compared, ${bytes.toLocaleString('en')} bytes, all identical to the library's`);
});

const T0: HrTime = [1_764_000_000, 123_456_789];

function span(over: Partial<ReadableSpan> & { ctx?: Partial<ReturnType<ReadableSpan['spanContext']>> } = {}): ReadableSpan {
  const ctx = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED, ...over.ctx };
  return {
    name: 'GET',
    kind: SpanKind.SERVER,
    spanContext: () => ctx,
    parentSpanContext: { traceId: ctx.traceId, spanId: '1111111111111111', traceFlags: TraceFlags.SAMPLED, isRemote: true },
    startTime: T0,
    endTime: [T0[0] + 1, 5],
    duration: [1, 5 - T0[1]],
    status: { code: SpanStatusCode.UNSET },
    attributes: { 'url.path': '/x' },
    links: [],
    events: [],
    ended: true,
    resource: resourceFromAttributes({ 'service.name': 'svc' }),
    instrumentationScope: INSTRUMENTATION_SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
    ...over,
  };
}

test('every attribute value type, strings of every width and length, and numbers at the edges: the library’s bytes', () => {
  const long = 'x'.repeat(200);
  const veryLong = 'abcdefghij'.repeat(2000); // a three-byte length
  const attributes: Attributes = {
    ascii: 'plain',
    empty: '',
    latin1: 'café',
    cjk: '東京',
    emoji: 'ok 👍',
    loneSurrogate: 'a\ud800b',
    long,
    veryLong,
    longNonAscii: 'é'.repeat(100), // 100 characters, 200 bytes
    zero: 0,
    negZero: -0,
    small: 7,
    int32: 2 ** 31 - 1,
    uint32: 2 ** 32 - 1,
    above32: 2 ** 32 + 5,
    big: Number.MAX_SAFE_INTEGER,
    pow62: 2 ** 62,
    negative: -1,
    negativeBig: -(2 ** 40) - 3,
    int64Min: -(2 ** 63),
    pow63: 2 ** 63, // outside int64: a double
    double: 3.25,
    negDouble: -0.1,
    nan: NaN,
    inf: Infinity,
    yes: true,
    no: false,
    strings: ['a', '', 'é'],
    numbers: [1, -2, 2.5],
    bools: [true, false],
    mixed: ['a', 1, null, undefined, true] as unknown as string[],
    none: [],
    undef: undefined,
  };
  const odd = {
    bytes: new Uint8Array([0, 1, 255]),
    nested: { a: 1, b: 'two', c: { d: [true] } },
    nul: null,
  } as unknown as Attributes;
  const encoder = new OtlpTraceEncoder();
  assertSameBytes(encoder, [span({ attributes })], 'all attribute types');
  assertSameBytes(encoder, [span({ attributes: odd })], 'bytes, nested maps, null');
  assertSameBytes(encoder, [span({ attributes: {} })], 'no attributes');
  for (const [k, v] of Object.entries(attributes)) assertSameBytes(encoder, [span({ attributes: { [k]: v } })], `attribute ${k}`);
  assertSameBytes(encoder, [span({ name: veryLong }), span({ name: 'ünïcødé 🚀' }), span({ name: '' })], 'names');
});

test('events, links, trace state, status messages, kinds, parents, flags and times: the library’s bytes', () => {
  const events: TimedEvent[] = [
    { name: 'exception', time: T0, attributes: { 'exception.message': 'boom', 'exception.type': 'Error' } },
    { name: 'bare', time: [0, 0] },
    { name: 'dropped', time: [T0[0], 999_999_999], attributes: {}, droppedAttributesCount: 3 },
  ];
  const links: Link[] = [
    { context: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: TraceFlags.SAMPLED, isRemote: true } },
    {
      context: {
        traceId: '0AF7651916CD43DD8448EB211C80319C',
        spanId: 'B7AD6B7169203331',
        traceFlags: TraceFlags.NONE,
        traceState: new TraceState('vendor=a,other=b'),
      },
      attributes: { why: 'pipelined' },
      droppedAttributesCount: 1,
    },
  ];
  const encoder = new OtlpTraceEncoder();
  const variants: ReadableSpan[] = [
    span({ events, links, droppedAttributesCount: 2, droppedEventsCount: 300, droppedLinksCount: 1 }),
    span({ ctx: { traceState: new TraceState('gearbox=1') } }),
    span({ ctx: { traceFlags: TraceFlags.NONE }, parentSpanContext: undefined }),
    span({ parentSpanContext: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '2222222222222222', traceFlags: 1, isRemote: false } }),
    span({ status: { code: SpanStatusCode.ERROR, message: 'no response (idle)' } }),
    span({ status: { code: SpanStatusCode.OK } }),
    ...[SpanKind.INTERNAL, SpanKind.SERVER, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER].map((kind) => span({ kind })),
    span({ startTime: [0, 0], endTime: [0, 1] }),
    span({ startTime: [4_000_000_000, 999_999_999], endTime: [18_000_000_000, 0] }), // far past 2^53 ns
    span({ startTime: [65_535, 999_999_999], endTime: [65_536, 0] }), // across the 2^16-second split
  ];
  for (const [i, s] of variants.entries()) assertSameBytes(encoder, [s], `variant ${i}`);
  assertSameBytes(encoder, variants, 'all variants in one request');
});

test('spans of several resources and scopes are grouped as the library groups them, schema URLs and scope attributes included', () => {
  const r1 = resourceFromAttributes({ 'service.name': 'a' });
  const r2 = resourceFromAttributes({ 'service.name': 'b', 'deployment.environment.name': 'prod' }, { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' });
  const s1 = INSTRUMENTATION_SCOPE;
  const s2 = { name: 'other', schemaUrl: 'https://example.com/s', attributes: { team: 'x' } } as unknown as ReadableSpan['instrumentationScope'];
  const s3 = { name: 'noversion', version: '' };
  const spans = [
    span({ resource: r1 }),
    span({ resource: r2, instrumentationScope: s2 }),
    span({ resource: r1, instrumentationScope: s3 }),
    span({ resource: r2, instrumentationScope: s1 }),
    span({ resource: r1 }),
  ];
  assertSameBytes(new OtlpTraceEncoder(), spans, 'mixed resources and scopes');
  assertSameBytes(new OtlpTraceEncoder(), [], 'no spans');
});

test('a request larger than the scratch buffer grows it, the next request is right too, and each request is its own copy', () => {
  const encoder = new OtlpTraceEncoder();
  const big = 'y'.repeat(20_000);
  const spans = Array.from({ length: 600 }, (_, i) => span({ attributes: { big, i } })); // ~12 MB
  const first = encoder.encode(spans);
  assert.ok(first.length > 12_000_000, `request of ${first.length} bytes`);
  assert.ok(Buffer.from(first).equals(library(spans)), 'the large request is the library’s bytes');
  const small = [span()];
  const second = encoder.encode(small);
  assert.ok(Buffer.from(second).equals(library(small)));
  assert.ok(Buffer.from(first).equals(library(spans)), 'the first request was not overwritten by the second');
});

test('a request is its own buffer, exactly its size, which Buffer.from() (what the gRPC transport does to it) shares instead of copying', () => {
  const spans = [span(), span({ kind: SpanKind.CLIENT })];
  const bytes = new OtlpTraceEncoder().encode(spans);
  assert.equal(bytes.byteOffset, 0);
  assert.equal(bytes.buffer.byteLength, bytes.length, 'no other bytes in its ArrayBuffer');
  const asBuffer = Buffer.from(bytes);
  assert.ok(asBuffer.equals(library(spans)));
  assert.equal(asBuffer.buffer, bytes.buffer, 'the same memory');
  assert.ok(Buffer.from(bytes.subarray(1)).equals(library(spans).subarray(1)), 'a view of part of it is still copied as a view');
});

test('the exporter’s serializer encodes with the encoder and decodes responses with the library', () => {
  const s = traceSerializer();
  const spans = [span(), span({ kind: SpanKind.CLIENT })];
  assert.ok(Buffer.from(s.serializeRequest(spans) ?? []).equals(library(spans)));
  // ExportTraceServiceResponse { partial_success { rejected_spans: 3, error_message: "x" } }
  const response = Uint8Array.from([0x0a, 0x05, 0x08, 0x03, 0x12, 0x01, 0x78]);
  assert.deepEqual(s.deserializeResponse(response), ProtobufTraceSerializer.deserializeResponse(response));
});
