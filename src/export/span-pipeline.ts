/**
 * Batching in front of the OTLP/gRPC exporter (OtlpGrpcSpanExporter: the
 * OpenTelemetry exporter with a faster encoder): spans encoded as they are
 * submitted (EncodingBatchProcessor), or the SDK's BatchSpanProcessor for
 * any other exporter. They read the standard variables:
 * OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT (default http://localhost:4317), _HEADERS, _TIMEOUT, _COMPRESSION, _INSECURE, and
 * OTEL_BSP_* for batching and the bounded queue (Gearbox's own defaults,
 * DEFAULT_BATCH, where a variable is not set).
 *
 * The queue is bounded: a span that finds it full is dropped and counted
 * exactly. Failed exports that may pass are retried with backoff
 * (RetryingExporter) while the queue absorbs what arrives meanwhile.
 */
import { BatchSpanProcessor, type BufferConfig, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { OtlpGrpcSpanExporter } from '../otlp/otlp-grpc-exporter';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { Logger } from '../log';
import type { BatchExporter } from '../otlp/batch-exporter';
import { EncodingBatchProcessor } from '../otlp/encoding-batch-processor';
import type { EncodedSpans } from '../otlp/trace-encoder';
import type { Resource } from '@opentelemetry/resources';
import type { Exchange } from '../trace/correlator';
import type { WallClock } from '../events/clock';
import { INSTRUMENTATION_SCOPE, buildSpan, encodeSpan, spanParts, type SpanPart } from './span-builder';
import { DEFAULT_RETRY, RetryingExporter } from '../otlp/retrying-exporter';

export interface ExportStats {
  /** Spans accepted into the queue. */
  spansQueued: number;
  /** Spans refused because the queue was full (exporter slow or down). */
  spansDropped: number;
  /** Spans handed to the exporter. */
  spansHanded: number;
  spansExported: number;
  spansFailed: number;
  exportErrors: number;
}

/**
 * Larger and quicker than the SDK's (2048 spans, 5 s): an agent exports for a
 * whole host. The processor waits as long as a batch may be retried.
 */
export const DEFAULT_BATCH = {
  maxQueueSize: 8192,
  maxExportBatchSize: 1024,
  scheduledDelayMillis: 1000,
  exportTimeoutMillis: DEFAULT_RETRY.maxElapsedMs + 60_000,
};

/** Batch settings: explicit ones, else OTEL_BSP_*, else DEFAULT_BATCH. */
export function effectiveBatch(batch: BufferConfig = {}, env: NodeJS.ProcessEnv = process.env): Required<BufferConfig> {
  const pick = (explicit: number | undefined, name: string, dflt: number): number => {
    if (explicit !== undefined) return explicit;
    const raw = env[name]?.trim();
    if (!raw) return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    return n;
  };
  const maxQueueSize = pick(batch.maxQueueSize, 'OTEL_BSP_MAX_QUEUE_SIZE', DEFAULT_BATCH.maxQueueSize);
  return {
    maxQueueSize,
    maxExportBatchSize: Math.min(maxQueueSize, pick(batch.maxExportBatchSize, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', DEFAULT_BATCH.maxExportBatchSize)),
    scheduledDelayMillis: pick(batch.scheduledDelayMillis, 'OTEL_BSP_SCHEDULE_DELAY', DEFAULT_BATCH.scheduledDelayMillis),
    exportTimeoutMillis: pick(batch.exportTimeoutMillis, 'OTEL_BSP_EXPORT_TIMEOUT', DEFAULT_BATCH.exportTimeoutMillis),
  };
}

/** Wraps an exporter to count what became of every span handed to it. */
export class CountingExporter<B> implements BatchExporter<B> {
  constructor(
    private readonly inner: BatchExporter<B>,
    private readonly spansIn: (batch: B) => number,
    readonly stats: ExportStats,
  ) {}

  export(batch: B, done: (r: ExportResult) => void): void {
    const n = this.spansIn(batch);
    this.stats.spansHanded += n;
    this.inner.export(batch, (r) => {
      if (r.code === ExportResultCode.SUCCESS) this.stats.spansExported += n;
      else this.stats.spansFailed += n;
      done(r);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

export interface SpanPipeline {
  readonly stats: ExportStats;
  /** The queue bound in force. */
  maxQueueSize: number;
  /** Spans waiting in the queue. */
  queued(): number;
  /** The spans of a correlated exchange (spanParts), of `resource`; each one the queue has no room for is dropped and counted. */
  submitExchange(ex: Exchange, resource: Resource, clock: WallClock): void;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** A batcher as the pipeline drives it (the EncodingBatchProcessor is one); spans go in through offerPart. */
interface Batcher {
  queued(): number;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** Any other exporter: the SDK's BatchSpanProcessor, ReadableSpans. */
function sdkBatcher(exporter: CountingExporter<ReadableSpan[]>, config: Required<BufferConfig>): Batcher & { offer(span: ReadableSpan): boolean } {
  const processor = new BatchSpanProcessor(exporter, config);
  const queued = () => exporter.stats.spansQueued - exporter.stats.spansHanded;
  return {
    queued,
    offer(span) {
      // The processor's own rule (drop when its buffer holds maxQueueSize),
      // applied here so that every drop is counted (it drops silently).
      if (queued() >= config.maxQueueSize) return false;
      processor.onEnd(span);
      return true;
    },
    forceFlush: () => processor.forceFlush(),
    shutdown: () => processor.shutdown(),
  };
}

/**
 * `batch` overrides the OTEL_BSP_* settings (the demo wants short delays).
 * The agent's own OTLP exporter gets spans encoded as they are submitted
 * (EncodingBatchProcessor), an exchange's spans written straight from the
 * exchange (encodeSpan: no ReadableSpan is made); any other exporter (the
 * OpenTelemetry one, the console printer, a test's) gets ReadableSpans from
 * the SDK's BatchSpanProcessor. Both follow the same settings and count alike.
 */
export function createSpanPipeline(log: Logger, exporter: SpanExporter = new OtlpGrpcSpanExporter(), batch?: BufferConfig): SpanPipeline {
  const stats: ExportStats = { spansQueued: 0, spansDropped: 0, spansHanded: 0, spansExported: 0, spansFailed: 0, exportErrors: 0 };
  const config = effectiveBatch(batch);
  let lastErrorLog = 0;
  const onAttemptFailed = (err: Error | undefined, willRetry: boolean) => {
    stats.exportErrors++;
    const now = Date.now();
    if (now - lastErrorLog > 10_000) {
      lastErrorLog = now;
      log.warn(
        { err: err?.message, willRetry, queued: batcher.queued(), dropped: stats.spansDropped },
        willRetry ? 'span export failed, retrying (spans queue meanwhile)' : 'span export failed',
      );
    }
  };
  let retrying: { stopRetrying(graceMs: number): void };
  let batcher: Batcher;
  /** One span of an exchange into the batcher: written for OTLP straight away, or as a ReadableSpan. */
  let offerPart: (part: SpanPart, resource: Resource, clock: WallClock) => boolean;
  if (exporter instanceof OtlpGrpcSpanExporter) {
    const encoded = new RetryingExporter<EncodedSpans>(exporter, DEFAULT_RETRY, onAttemptFailed);
    const processor = new EncodingBatchProcessor(new CountingExporter(encoded, (b) => b.spanCount, stats), config, exporter.transport === 'http2');
    offerPart = (part, resource, clock) => processor.offerEncoded(resource, INSTRUMENTATION_SCOPE, (encoder) => encodeSpan(part, clock, encoder));
    batcher = processor;
    retrying = encoded;
  } else {
    const spans = new RetryingExporter(exporter, DEFAULT_RETRY, onAttemptFailed);
    const processor = sdkBatcher(new CountingExporter(spans, (b: ReadableSpan[]) => b.length, stats), config);
    offerPart = (part, resource, clock) => processor.offer(buildSpan(part.ex, resource, clock, part.extras));
    batcher = processor;
    retrying = spans;
  }
  const counted = (taken: boolean) => {
    if (taken) stats.spansQueued++;
    else stats.spansDropped++;
  };
  return {
    stats,
    maxQueueSize: config.maxQueueSize,
    queued: () => batcher.queued(),
    submitExchange(ex, resource, clock) {
      for (const part of spanParts(ex)) counted(offerPart(part, resource, clock));
    },
    flush: () => batcher.forceFlush(),
    shutdown: () => {
      retrying.stopRetrying(5000);
      return batcher.shutdown();
    },
  };
}
