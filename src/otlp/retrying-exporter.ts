/**
 * Holds a batch whose export failed for a reason that may pass (the
 * endpoint is down, slow, overloaded: the gRPC codes OTLP calls retryable)
 * and tries again with exponential backoff, the way the OpenTelemetry
 * Collector's exporters do. While it holds a batch the batcher (the
 * EncodingBatchProcessor, or the SDK's BatchSpanProcessor) waits for it,
 * so new spans pile up in the processor's bounded queue and
 * the ones that find it full are dropped and counted there: memory stays
 * bounded and export resumes by itself when the endpoint is back. A batch is
 * given up after `maxElapsedMs`, on a permanent error, or at shutdown.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { BatchExporter } from './batch-exporter';
import { RETRYABLE_GRPC_CODES } from './grpc-status';

export interface RetryPolicy {
  initialBackoffMs: number;
  maxBackoffMs: number;
  maxElapsedMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { initialBackoffMs: 1000, maxBackoffMs: 5000, maxElapsedMs: 300_000 };

/** A failure that may pass: a retryable gRPC code, or no code at all (the connection itself failed). */
export function isRetryable(error: Error | undefined): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code !== 'number' || RETRYABLE_GRPC_CODES.has(code);
}

export class RetryingExporter<B = ReadableSpan[]> implements BatchExporter<B> {
  /** Batches being held for a retry right now (0 or 1 behind a BatchSpanProcessor). */
  holding = 0;
  private stopping = false;
  private failFastAfter = Infinity;
  private readonly timers = new Set<{ timer: NodeJS.Timeout; giveUp: () => void }>();

  constructor(
    private readonly inner: BatchExporter<B>,
    private readonly policy: RetryPolicy = DEFAULT_RETRY,
    private readonly onAttemptFailed: (error: Error | undefined, willRetry: boolean) => void = () => {},
  ) {}

  export(batch: B, done: (r: ExportResult) => void): void {
    if (Date.now() > this.failFastAfter) {
      done({ code: ExportResultCode.FAILED, error: new Error('agent stopping: export given up') });
      return;
    }
    const started = Date.now();
    let backoff = this.policy.initialBackoffMs;
    let held = false;
    const attempt = () => {
      this.inner.export(batch, (r) => {
        if (r.code === ExportResultCode.SUCCESS) return finish(r);
        const retry = !this.stopping && isRetryable(r.error) && Date.now() - started + backoff <= this.policy.maxElapsedMs;
        this.onAttemptFailed(r.error, retry);
        if (!retry) return finish(r);
        if (!held) {
          held = true;
          this.holding++;
        }
        const entry = {
          timer: setTimeout(
            () => {
              this.timers.delete(entry);
              attempt();
            },
            backoff * (0.8 + 0.4 * Math.random()),
          ),
          giveUp: () => finish(r),
        };
        this.timers.add(entry);
        backoff = Math.min(backoff * 2, this.policy.maxBackoffMs);
      });
    };
    const finish = (r: ExportResult) => {
      if (held) {
        held = false;
        this.holding--;
      }
      done(r);
    };
    attempt();
  }

  /**
   * Stops retrying: held batches are given up (they count as failed), the
   * rest get one attempt each for `graceMs`, then fail at once — so that
   * stopping the agent takes bounded time whatever the endpoint does.
   */
  stopRetrying(graceMs: number): void {
    this.stopping = true;
    this.failFastAfter = Date.now() + graceMs;
    for (const entry of [...this.timers]) {
      clearTimeout(entry.timer);
      this.timers.delete(entry);
      entry.giveUp();
    }
  }

  async shutdown(): Promise<void> {
    this.stopRetrying(0);
    await this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}
