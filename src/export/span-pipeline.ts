/**
 * The SDK's BatchSpanProcessor in front of the OTLP/gRPC exporter
 * (OtlpGrpcSpanExporter: the OpenTelemetry exporter with a faster encoder). Both read
 * the standard variables: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT (default
 * http://localhost:4317), _HEADERS, _TIMEOUT, _COMPRESSION, _INSECURE, and
 * OTEL_BSP_* for batching and the bounded queue (Gearbox's own defaults,
 * DEFAULT_BATCH, where a variable is not set).
 *
 * The queue is bounded: a span that finds it full is dropped and counted
 * (the processor would drop it silently; the pipeline mirrors its rule, so
 * the count is exact). Failed exports that may pass are retried with backoff
 * (RetryingExporter) while the queue absorbs what arrives meanwhile.
 */
import { BatchSpanProcessor, type BufferConfig, type ReadableSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OtlpGrpcSpanExporter } from './otlp-grpc-exporter';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { Logger } from '../log';
import { DEFAULT_RETRY, RetryingExporter } from './retrying-exporter';

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
export const DEFAULT_BATCH = { maxQueueSize: 8192, maxExportBatchSize: 1024, scheduledDelayMillis: 1000, exportTimeoutMillis: DEFAULT_RETRY.maxElapsedMs + 60_000 };

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
export class CountingExporter implements SpanExporter {
  readonly stats: ExportStats = { spansQueued: 0, spansDropped: 0, spansHanded: 0, spansExported: 0, spansFailed: 0, exportErrors: 0 };

  constructor(private readonly inner: SpanExporter) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.stats.spansHanded += spans.length;
    this.inner.export(spans, (r) => {
      if (r.code === ExportResultCode.SUCCESS) this.stats.spansExported += spans.length;
      else this.stats.spansFailed += spans.length;
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
  processor: SpanProcessor;
  exporter: CountingExporter;
  /** The queue bound in force. */
  maxQueueSize: number;
  /** Spans waiting in the queue. */
  queued(): number;
  submit(span: ReadableSpan): void;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** `batch` overrides the OTEL_BSP_* settings (the demo wants short delays). */
export function createSpanPipeline(log: Logger, exporter: SpanExporter = new OtlpGrpcSpanExporter(), batch?: BufferConfig): SpanPipeline {
  let lastErrorLog = 0;
  const retrying = new RetryingExporter(exporter, DEFAULT_RETRY, (err, willRetry) => {
    counting.stats.exportErrors++;
    const now = Date.now();
    if (now - lastErrorLog > 10_000) {
      lastErrorLog = now;
      log.warn({ err: err?.message, willRetry, queued: queued(), dropped: counting.stats.spansDropped }, willRetry ? 'span export failed, retrying (spans queue meanwhile)' : 'span export failed');
    }
  });
  const counting = new CountingExporter(retrying);
  const config = effectiveBatch(batch);
  const processor = new BatchSpanProcessor(counting, config);
  const stats = counting.stats;
  const queued = () => stats.spansQueued - stats.spansHanded;
  return {
    processor,
    exporter: counting,
    maxQueueSize: config.maxQueueSize,
    queued,
    submit(span) {
      // The processor's own rule (drop when its buffer holds maxQueueSize),
      // applied here so that every drop is counted.
      if (queued() >= config.maxQueueSize) {
        stats.spansDropped++;
        return;
      }
      stats.spansQueued++;
      processor.onEnd(span);
    },
    flush: () => processor.forceFlush(),
    shutdown: () => {
      retrying.stopRetrying(5000);
      return processor.shutdown();
    },
  };
}
