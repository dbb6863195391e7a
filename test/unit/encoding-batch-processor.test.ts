/**
 * The EncodingBatchProcessor (the agent's default batcher: spans encoded as
 * they are added) keeps the SDK BatchSpanProcessor's rules: batches of
 * maxExportBatchSize, a partial batch after scheduledDelayMillis, one export
 * at a time, an export given up after exportTimeoutMillis, forceFlush and
 * shutdown sending everything (its bounded queue: export-pipeline.test.ts).
 * Every batch is, byte for byte, the OpenTelemetry serializer's request for
 * the same spans in the same order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { BatchExporter } from '../../src/otlp/batch-exporter';
import { EncodingBatchProcessor, type BatchSettings } from '../../src/otlp/encoding-batch-processor';
import type { EncodedSpans } from '../../src/otlp/trace-encoder';
import { recordedSpans } from '../support/recorded-spans';

const resources = [
  resourceFromAttributes({ 'service.name': 'frontend', 'process.pid': 11 }),
  resourceFromAttributes({ 'service.name': 'backend', 'process.pid': 12 }),
];
const SPANS = recordedSpans(resources);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `cond` holds (at most 2 s). */
async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(10);
}

/** Records what it is handed; answers at once, or when `release` is called if gated. */
class RecordingExporter implements BatchExporter<EncodedSpans> {
  readonly batches: EncodedSpans[] = [];
  inFlight = 0;
  maxInFlight = 0;
  shutdowns = 0;
  private waiting: (() => void)[] = [];

  constructor(private gated = false) {}

  export(batch: EncodedSpans, done: (r: ExportResult) => void): void {
    this.batches.push(batch);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const finish = () => {
      this.inFlight--;
      done({ code: ExportResultCode.SUCCESS });
    };
    if (this.gated) this.waiting.push(finish);
    else setImmediate(finish);
  }

  release(): void {
    this.gated = false;
    for (const f of this.waiting.splice(0)) f();
  }

  async shutdown(): Promise<void> {
    this.shutdowns++;
  }
}

const settings = (s: Partial<BatchSettings>): BatchSettings => ({
  maxQueueSize: 100_000,
  maxExportBatchSize: 512,
  scheduledDelayMillis: 60_000,
  exportTimeoutMillis: 60_000,
  ...s,
});

const libraryBytes = (spans: ReadableSpan[]) => Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);

test("full batches go at once, the rest at forceFlush; each batch is the library's bytes for its spans, in order", async () => {
  assert.ok(SPANS.length >= 400, `spans from the recordings: ${SPANS.length}`);
  const exporter = new RecordingExporter();
  const p = new EncodingBatchProcessor(exporter, settings({ maxExportBatchSize: 64 }));
  for (const s of SPANS) assert.ok(p.offer(s));
  const full = Math.floor(SPANS.length / 64);
  await waitFor(() => exporter.batches.length >= full);
  await sleep(20);
  assert.equal(exporter.batches.length, full, 'full batches sent without waiting for the delay');
  assert.equal(p.queued(), SPANS.length - 64 * full);
  await p.forceFlush();
  assert.equal(p.queued(), 0);
  assert.equal(exporter.maxInFlight, 1, 'one export at a time while batches fill');
  let at = 0;
  for (const [i, b] of exporter.batches.entries()) {
    const expected = libraryBytes(SPANS.slice(at, at + b.spanCount));
    assert.ok(Buffer.from(b.bytes).equals(expected), `batch ${i} (${b.spanCount} spans at ${at}): the library's bytes`);
    at += b.spanCount;
  }
  assert.equal(at, SPANS.length);
  console.log(`# ${exporter.batches.length} batches, ${at} spans, every batch identical to the library's request`);
});

test('a partial batch goes after scheduledDelayMillis; while an export is out, the next waits for it', async () => {
  const exporter = new RecordingExporter(true);
  const p = new EncodingBatchProcessor(exporter, settings({ maxExportBatchSize: 10, scheduledDelayMillis: 150 }));
  const t0 = Date.now();
  for (const s of SPANS.slice(0, 3)) p.offer(s);
  await waitFor(() => exporter.batches.length > 0);
  assert.ok(Date.now() - t0 >= 140, `not before the delay (sent after ${Date.now() - t0} ms)`);
  assert.equal(exporter.batches[0].spanCount, 3);
  for (const s of SPANS.slice(3, 40)) p.offer(s); // 3 full batches and 7 spans wait behind the held export
  await sleep(50);
  assert.equal(exporter.batches.length, 1, 'held export: nothing else is sent');
  assert.equal(p.queued(), 37);
  exporter.release();
  await waitFor(() => exporter.batches.length === 5);
  assert.deepEqual(
    exporter.batches.map((b) => b.spanCount),
    [3, 10, 10, 10, 7],
  );
  assert.equal(exporter.maxInFlight, 1);
  assert.equal(p.queued(), 0);
});

test('an export that never answers is given up after exportTimeoutMillis, and the next batch goes', async () => {
  const exporter = new RecordingExporter(true);
  const p = new EncodingBatchProcessor(exporter, settings({ maxExportBatchSize: 5, exportTimeoutMillis: 40 }));
  for (const s of SPANS.slice(0, 10)) p.offer(s);
  await waitFor(() => exporter.batches.length > 0);
  assert.equal(exporter.batches.length, 1);
  await waitFor(() => exporter.batches.length > 1);
  assert.equal(exporter.batches.length, 2, 'the second batch went once the first timed out');
  exporter.release();
});

test('shutdown sends what waits, shuts the exporter down once, and refuses later spans', async () => {
  const exporter = new RecordingExporter();
  const p = new EncodingBatchProcessor(exporter, settings({}));
  for (const s of SPANS.slice(0, 7)) p.offer(s);
  await Promise.all([p.shutdown(), p.shutdown()]);
  assert.deepEqual(
    exporter.batches.map((b) => b.spanCount),
    [7],
  );
  assert.equal(exporter.shutdowns, 1);
  assert.equal(p.offer(SPANS[0]), false);
});

test('an exporter that throws fails its batch, and the next batch still goes', async () => {
  const sent: number[] = [];
  const throwing: BatchExporter<EncodedSpans> = {
    export(batch, done) {
      sent.push(batch.spanCount);
      if (sent.length === 1) throw new Error('boom');
      done({ code: ExportResultCode.SUCCESS });
    },
    shutdown: async () => {},
  };
  const p = new EncodingBatchProcessor(throwing, settings({ maxExportBatchSize: 5 }));
  for (const s of SPANS.slice(0, 10)) p.offer(s);
  await waitFor(() => sent.length === 2);
  assert.deepEqual(sent, [5, 5]);
  assert.equal(p.queued(), 0);
});

test("with reuseRequestMemory, requests are written into lent buffers given back at each export's end: the library's bytes, buffers reused, none given back early", async () => {
  // Each export checks its bytes when it answers, as a transport still
  // sending them would read them; a buffer given back early would by then
  // hold a later request.
  const checked: boolean[] = [];
  const buffers = new Set<ArrayBufferLike>();
  const answers: (() => void)[] = [];
  let at = 0;
  const reading: BatchExporter<EncodedSpans> = {
    export(batch, done) {
      const from = at;
      at += batch.spanCount;
      buffers.add(batch.bytes.buffer);
      assert.ok(batch.release, 'a lent request can be given back');
      answers.push(() => {
        checked.push(Buffer.from(batch.bytes).equals(libraryBytes(SPANS.slice(from, from + batch.spanCount))));
        done({ code: ExportResultCode.SUCCESS });
      });
    },
    shutdown: async () => {},
  };
  // A timeout shorter than the exports: the processor moves on while each is still out.
  const p = new EncodingBatchProcessor(reading, settings({ maxExportBatchSize: 50, exportTimeoutMillis: 20 }), true);
  const exportsBefore = () => answers.length + checked.length;
  for (let i = 0; i < 4; i++) {
    for (const s of SPANS.slice(i * 50, i * 50 + 50)) p.offer(s);
    await waitFor(() => exportsBefore() > i);
    await sleep(30); // past the processor's timeout: it has given the batch up, the export goes on
  }
  assert.equal(answers.length, 4, 'four exports out at once');
  assert.equal(buffers.size, 4, 'none of their buffers was given back while they were out');
  for (const answer of answers.splice(0)) answer();
  for (let i = 4; i < 8; i++) {
    for (const s of SPANS.slice(i * 50, i * 50 + 50)) p.offer(s);
    await waitFor(() => answers.length > 0);
    answers.shift()!();
  }
  assert.deepEqual(checked, Array(8).fill(true), "every request was the library's bytes when its export answered");
  assert.equal(buffers.size, 4, 'the last four requests used the buffers the first four gave back');
  console.log(`# 8 requests of 50 spans in ${buffers.size} lent buffers, each the library's bytes when its export answered`);
});
