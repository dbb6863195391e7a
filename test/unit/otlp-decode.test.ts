/**
 * What OtlpTraceEncoder writes, read back with code generated from the
 * upstream protos (opentelemetry-proto v1.4.0, as shipped in
 * @elastic/mockotlpserver) by protobufjs: every span of the recorded kernel
 * events and a span with every feature of the data model decode to the
 * fields they were built from. The byte-for-byte comparison with the
 * OpenTelemetry serializer (otlp-trace-encoder.test.ts) would pass on a bug
 * both share; this one reads the bytes as a collector does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import protobuf from 'protobufjs';
import { SpanKind, SpanStatusCode, TraceFlags, type Attributes, type AttributeValue, type HrTime } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { OtlpTraceEncoder } from '../../src/otlp/trace-encoder';
import { recordedSpans } from '../support/recorded-spans';

const PROTO_ROOT = path.dirname(require.resolve('@elastic/mockotlpserver/package.json'));

function requestType(): protobuf.Type {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTO_ROOT, target);
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: true });
  return root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
}

/* The decoded message, as protobufjs's toObject gives it (longs as strings, bytes as Buffers). */
interface DecodedValue {
  stringValue?: string;
  string_value?: string;
  bool_value?: boolean;
  int_value?: string;
  double_value?: number;
  bytes_value?: Buffer;
  array_value?: { values?: DecodedValue[] };
  kvlist_value?: { values?: { key: string; value: DecodedValue }[] };
}
interface DecodedSpan {
  trace_id: Buffer;
  span_id: Buffer;
  trace_state?: string;
  parent_span_id?: Buffer;
  name: string;
  kind?: number;
  start_time_unix_nano: string;
  end_time_unix_nano: string;
  attributes?: { key: string; value: DecodedValue }[];
  events?: { name: string; time_unix_nano: string; attributes?: { key: string; value: DecodedValue }[] }[];
  links?: { trace_id: Buffer; span_id: Buffer; attributes?: { key: string; value: DecodedValue }[]; flags?: number }[];
  status?: { code?: number; message?: string };
  flags?: number;
}
interface DecodedRequest {
  resource_spans: {
    resource: { attributes?: { key: string; value: DecodedValue }[] };
    scope_spans: { scope: { name: string; version?: string }; spans: DecodedSpan[] }[];
  }[];
}

function valueOf(v: DecodedValue): unknown {
  if (v.string_value !== undefined) return v.string_value;
  if (v.bool_value !== undefined) return v.bool_value;
  if (v.int_value !== undefined) return Number(v.int_value);
  if (v.double_value !== undefined) return v.double_value;
  if (v.bytes_value !== undefined) return new Uint8Array(v.bytes_value);
  if (v.array_value) return (v.array_value.values ?? []).map(valueOf);
  if (v.kvlist_value) return Object.fromEntries((v.kvlist_value.values ?? []).map((kv) => [kv.key, valueOf(kv.value)]));
  return undefined;
}

const attrsOf = (kvs: { key: string; value: DecodedValue }[] | undefined) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, valueOf(kv.value)]));
const nanos = (t: HrTime) => (BigInt(t[0]) * 1_000_000_000n + BigInt(t[1])).toString();
const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('hex') : '');

function decode(spans: ReadableSpan[]): DecodedRequest {
  const type = requestType();
  const bytes = new OtlpTraceEncoder().encode(spans);
  return type.toObject(type.decode(bytes), { longs: String, bytes: Buffer, defaults: false }) as DecodedRequest;
}

function assertSpan(got: DecodedSpan, want: ReadableSpan): void {
  const ctx = want.spanContext();
  assert.equal(hex(got.trace_id), ctx.traceId);
  assert.equal(hex(got.span_id), ctx.spanId);
  assert.equal(hex(got.parent_span_id), want.parentSpanContext?.spanId ?? '');
  assert.equal(got.name, want.name);
  assert.equal(got.kind ?? 0, want.kind + 1, 'OTLP counts UNSPECIFIED as 0');
  assert.equal(got.start_time_unix_nano, nanos(want.startTime));
  assert.equal(got.end_time_unix_nano, nanos(want.endTime));
  assert.deepEqual(attrsOf(got.attributes), want.attributes as Record<string, unknown>);
  assert.equal(got.status?.code ?? 0, want.status.code);
  assert.equal(got.status?.message ?? '', want.status.message ?? '');
  assert.equal((got.flags ?? 0) & 0xff, ctx.traceFlags);
  assert.equal(((got.flags ?? 0) & 0x200) !== 0, want.parentSpanContext?.isRemote === true, 'the is-remote flag');
  assert.equal(got.trace_state ?? '', ctx.traceState?.serialize() ?? '');
}

test('every span of the recorded kernel events decodes, with the upstream protos, to what it was built from', () => {
  const resource = resourceFromAttributes({ 'service.name': 'frontend', 'host.name': 'h2', 'process.pid': 4242 });
  const spans = recordedSpans([resource]);
  const decoded = decode(spans);
  assert.equal(decoded.resource_spans.length, 1);
  const rs = decoded.resource_spans[0];
  assert.deepEqual(attrsOf(rs.resource.attributes), resource.attributes);
  assert.equal(rs.scope_spans.length, 1);
  assert.equal(rs.scope_spans[0].scope.name, spans[0].instrumentationScope.name);
  const got = rs.scope_spans[0].spans;
  assert.equal(got.length, spans.length);
  got.forEach((g, i) => assertSpan(g, spans[i]));
  console.log(`${spans.length} recorded spans decoded field by field`);
});

test('a span with every feature of the data model decodes to its fields', () => {
  const attributes: Attributes = {
    s: 'naïve ✓',
    long: 'x'.repeat(300),
    b: true,
    i: -42,
    big: 2 ** 53 - 1,
    d: 0.25,
    arr: ['a', 'b'],
    nums: [1, 2, 3],
  };
  const span: ReadableSpan = {
    name: 'GET /ü',
    kind: SpanKind.SERVER,
    spanContext: () => ({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: TraceFlags.SAMPLED,
      traceState: new TraceState('a=1,b=2'),
    }),
    parentSpanContext: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED, isRemote: true },
    startTime: [1_765_000_000, 123_456_789],
    endTime: [1_765_000_001, 987_654_321],
    status: { code: SpanStatusCode.ERROR, message: 'upstream 503' },
    attributes,
    links: [
      { context: { traceId: '11111111111111111111111111111111', spanId: '2222222222222222', traceFlags: TraceFlags.NONE }, attributes: { why: 'pipelined' } },
    ],
    events: [{ name: 'retry', time: [1_765_000_000, 500_000_000], attributes: { attempt: 2 } }],
    duration: [1, 864_197_532],
    ended: true,
    resource: resourceFromAttributes({ 'service.name': 'svc' }),
    instrumentationScope: { name: 'gearbox', version: '0.1.0' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
  const decoded = decode([span]);
  const ss = decoded.resource_spans[0].scope_spans[0];
  assert.deepEqual(ss.scope, { name: 'gearbox', version: '0.1.0' });
  const got = ss.spans[0];
  assertSpan(got, span);
  assert.deepEqual(
    got.links?.map((l) => [hex(l.trace_id), hex(l.span_id), attrsOf(l.attributes)]),
    [['11111111111111111111111111111111', '2222222222222222', { why: 'pipelined' }]],
  );
  assert.deepEqual(
    got.events?.map((e) => [e.name, e.time_unix_nano, attrsOf(e.attributes)]),
    [['retry', '1765000000500000000', { attempt: 2 }]],
  );
  const v: AttributeValue | undefined = attributes.big;
  assert.equal(attrsOf(got.attributes).big, v, 'integers past 2^32 survive');
});
