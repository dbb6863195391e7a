/**
 * The export stages without a network: retries of failures that may pass,
 * no retries of permanent ones, bounded shutdown, the bounded queue's exact
 * drop count behind either batcher, exchanges submitted whole (their spans
 * as the library encodes them, behind either batcher), and a fan-out to no
 * exporter at all (--no-export).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OtlpGrpcSpanExporter } from '../../src/otlp/otlp-grpc-exporter';
import type { EncodedSpans } from '../../src/otlp/trace-encoder';
import { RetryingExporter, isRetryable } from '../../src/otlp/retrying-exporter';
import { createSpanPipeline } from '../../src/export/span-pipeline';
import { FanOutExporter } from '../../src/export/trace-tree-printer';
import { log } from '../../src/log';
import { recordedExchanges } from '../support/recorded-spans';
import { buildSpans } from '../../src/export/span-builder';
import { WallClock } from '../../src/events/clock';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer/build/src/trace/protobuf/trace';

const FAST = { initialBackoffMs: 5, maxBackoffMs: 20, maxElapsedMs: 2000 };
const grpcError = (code: number) => Object.assign(new Error(`grpc ${code}`), { code });

/** An exporter that answers from a script of results, then succeeds. */
class ScriptedExporter implements SpanExporter {
  calls = 0;
  constructor(private readonly script: ExportResult[]) {}
  export(_spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const r = this.script[this.calls++] ?? { code: ExportResultCode.SUCCESS };
    setImmediate(() => done(r));
  }
  async shutdown(): Promise<void> {}
}

const exportOnce = (e: SpanExporter) => new Promise<ExportResult>((resolve) => e.export([], resolve));

test('retryable failures (UNAVAILABLE, DEADLINE_EXCEEDED, no code) are retried until they pass', async () => {
  const inner = new ScriptedExporter([
    { code: ExportResultCode.FAILED, error: grpcError(14) },
    { code: ExportResultCode.FAILED, error: grpcError(4) },
    { code: ExportResultCode.FAILED, error: new Error('connect ECONNREFUSED') },
  ]);
  const failures: boolean[] = [];
  const r = new RetryingExporter(inner, FAST, (_e, willRetry) => failures.push(willRetry));
  const result = await exportOnce(r);
  assert.equal(result.code, ExportResultCode.SUCCESS);
  assert.equal(inner.calls, 4);
  assert.deepEqual(failures, [true, true, true]);
  assert.equal(r.holding, 0);
});

test('a permanent error is not retried', async () => {
  const inner = new ScriptedExporter([{ code: ExportResultCode.FAILED, error: grpcError(3 /* INVALID_ARGUMENT */) }]);
  const r = new RetryingExporter(inner, FAST);
  assert.equal((await exportOnce(r)).code, ExportResultCode.FAILED);
  assert.equal(inner.calls, 1);
  assert.equal(isRetryable(grpcError(3)), false);
  assert.equal(isRetryable(grpcError(14)), true);
});

test('a batch is given up after maxElapsedMs, and at once when retries stop', async () => {
  const down = Array.from({ length: 1000 }, () => ({ code: ExportResultCode.FAILED, error: grpcError(14) }));
  const r = new RetryingExporter(new ScriptedExporter(down), { initialBackoffMs: 5, maxBackoffMs: 10, maxElapsedMs: 100 });
  const t0 = Date.now();
  assert.equal((await exportOnce(r)).code, ExportResultCode.FAILED);
  assert.ok(Date.now() - t0 < 1000);
  const held = new RetryingExporter(new ScriptedExporter(down), { initialBackoffMs: 1000, maxBackoffMs: 1000, maxElapsedMs: 60_000 });
  const pending = exportOnce(held);
  await new Promise((res) => setTimeout(res, 50));
  assert.equal(held.holding, 1);
  held.stopRetrying(0);
  assert.equal((await pending).code, ExportResultCode.FAILED);
  assert.equal((await exportOnce(held)).code, ExportResultCode.FAILED, 'after the grace period exports fail at once');
});

const RESOURCE = resourceFromAttributes({ 'service.name': 'svc' });
const EXCHANGES = recordedExchanges(); // one span each
const CLOCK = new WallClock({ eventNs: () => 0n, realtimeNs: () => 1_700_000_000_000_000_000n, wholeSecondOffset: false });

/** Exporters that hold every export until `gate` resolves, one behind each batcher. */
const heldExporters: Record<string, (gate: Promise<void>) => SpanExporter> = {
  'behind the SDK BatchSpanProcessor (any other exporter)': (gate) => ({
    export: (_s, done) => void gate.then(() => done({ code: ExportResultCode.SUCCESS })),
    shutdown: async () => {},
  }),
  "behind the encoding batcher (the agent's OTLP exporter)": (gate) =>
    new (class extends OtlpGrpcSpanExporter {
      override export(batch: ReadableSpan[] | EncodedSpans, done: (r: ExportResult) => void): void {
        assert.ok(!Array.isArray(batch), 'the OTLP exporter is handed encoded requests');
        void gate.then(() => done({ code: ExportResultCode.SUCCESS }));
      }
      override async shutdown(): Promise<void> {}
    })({ url: 'http://127.0.0.1:9' }),
};

for (const [where, held] of Object.entries(heldExporters)) {
  test(`the bounded queue drops and counts exactly what does not fit, ${where}`, async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const p = createSpanPipeline(log, held(gate), { maxQueueSize: 10, maxExportBatchSize: 5, scheduledDelayMillis: 1 });
    const s = p.stats;
    for (const ex of EXCHANGES.slice(0, 10)) p.submitExchange(ex, RESOURCE, CLOCK);
    for (let i = 0; i < 200 && s.spansHanded === 0; i++) await new Promise((r) => setTimeout(r, 10)); // the first batch of 5 is handed over and held
    for (const ex of EXCHANGES.slice(10, 30)) p.submitExchange(ex, RESOURCE, CLOCK);
    assert.equal(s.spansHanded, 5);
    assert.equal(p.queued(), 10);
    assert.equal(s.spansDropped, 15);
    assert.equal(s.spansQueued + s.spansDropped, 30);
    release();
    await p.shutdown();
    assert.equal(s.spansExported, s.spansQueued);
  });
}

test('exchanges submitted whole reach either batcher as the spans buildSpans makes of them, as the library encodes them', async () => {
  const exchanges = EXCHANGES.slice(0, 60);
  const expected = Buffer.from(ProtobufTraceSerializer.serializeRequest(exchanges.flatMap((ex) => buildSpans(ex, RESOURCE, CLOCK)))!);
  const received: Record<string, Buffer[]> = { encoded: [], sdk: [] };
  const encoded = new (class extends OtlpGrpcSpanExporter {
    override export(batch: ReadableSpan[] | EncodedSpans, done: (r: ExportResult) => void): void {
      assert.ok(!Array.isArray(batch), 'encoded requests');
      received.encoded.push(Buffer.from(batch.bytes));
      done({ code: ExportResultCode.SUCCESS });
    }
    override async shutdown(): Promise<void> {}
  })({ url: 'http://127.0.0.1:9' });
  const sdk: SpanExporter = {
    export: (spans, done) => {
      received.sdk.push(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!));
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: async () => {},
  };
  for (const [name, exporter] of [
    ['encoded', encoded],
    ['sdk', sdk],
  ] as const) {
    const p = createSpanPipeline(log, exporter, { maxQueueSize: 1000, maxExportBatchSize: 1000, scheduledDelayMillis: 10_000 });
    for (const ex of exchanges) p.submitExchange(ex, RESOURCE, CLOCK);
    await p.shutdown();
    assert.equal(received[name].length, 1, `${name}: one batch`);
    assert.ok(received[name][0].equals(expected), `${name}: the library's request for the same spans`);
    assert.equal(p.stats.spansExported, 60);
  }
});

test('fan-out to no exporter (--no-export) completes every export', async () => {
  assert.equal((await exportOnce(new FanOutExporter([]))).code, ExportResultCode.SUCCESS);
});
