/**
 * What every stage between the batcher and the network is: the SDK's
 * SpanExporter contract over any kind of batch. A SpanExporter is a
 * BatchExporter of ReadableSpan[]; the agent's own OTLP path sends batches
 * that are already encoded (EncodedSpans), so that the retry and counting
 * stages serve both.
 */
import type { ExportResult } from '@opentelemetry/core';

export interface BatchExporter<B> {
  export(batch: B, done: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
}
