/**
 * The SDK's BatchSpanProcessor in front of an OTLP/gRPC exporter. Both read
 * the standard variables: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT (default
 * http://localhost:4317), _HEADERS, _TIMEOUT, _COMPRESSION, _INSECURE, and
 * OTEL_BSP_* for batching and the bounded queue.
 */
import { BatchSpanProcessor, type BufferConfig, type ReadableSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { Logger } from '../log';

export interface ExportStats {
  spansQueued: number;
  spansExported: number;
  spansFailed: number;
  exportErrors: number;
}

/** Wraps an exporter to count what it did and to log failures once per burst. */
export class CountingExporter implements SpanExporter {
  readonly stats: ExportStats = { spansQueued: 0, spansExported: 0, spansFailed: 0, exportErrors: 0 };
  private lastErrorLog = 0;

  constructor(
    private readonly inner: SpanExporter,
    private readonly log: Logger,
  ) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.inner.export(spans, (r) => {
      if (r.code === ExportResultCode.SUCCESS) {
        this.stats.spansExported += spans.length;
      } else {
        this.stats.spansFailed += spans.length;
        this.stats.exportErrors++;
        const now = Date.now();
        if (now - this.lastErrorLog > 10_000) {
          this.lastErrorLog = now;
          this.log.warn({ err: r.error?.message, spans: spans.length }, 'span export failed');
        }
      }
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
  submit(span: ReadableSpan): void;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/** `batch` overrides the OTEL_BSP_* settings (the demo wants short delays). */
export function createSpanPipeline(log: Logger, exporter: SpanExporter = new OTLPTraceExporter(), batch?: BufferConfig): SpanPipeline {
  const counting = new CountingExporter(exporter, log);
  const processor = new BatchSpanProcessor(counting, batch);
  return {
    processor,
    exporter: counting,
    submit(span) {
      counting.stats.spansQueued++;
      processor.onEnd(span);
    },
    flush: () => processor.forceFlush(),
    shutdown: () => processor.shutdown(),
  };
}
