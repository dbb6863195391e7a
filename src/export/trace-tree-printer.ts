/**
 * A SpanExporter that prints each trace as a tree in the terminal once it has
 * been quiet for `settleMs`: service, kind, span name, duration, status.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

const KIND: Record<number, string> = { [SpanKind.SERVER]: 'SERVER', [SpanKind.CLIENT]: 'CLIENT', [SpanKind.INTERNAL]: 'INTERNAL' };

function ms(span: ReadableSpan): string {
  const ns = span.duration[0] * 1e9 + span.duration[1];
  return ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(0)} µs`;
}

function label(span: ReadableSpan): string {
  const service = String(span.resource.attributes['service.name'] ?? '?');
  const host = span.resource.attributes['host.name'];
  const path = span.attributes['url.path'];
  const name = path ? `${span.name} ${path}` : span.name;
  const status = span.status.code === SpanStatusCode.ERROR ? `ERROR${span.status.message ? ` (${span.status.message})` : ''}` : 'ok';
  return `${service}${host ? `@${host}` : ''}  ${KIND[span.kind] ?? span.kind} ${name}  ${ms(span)}  ${status}`;
}

/** Renders the spans of one trace as indented lines, roots first, children by start time. */
export function renderTraceTree(spans: ReadableSpan[]): string[] {
  const ids = new Set(spans.map((s) => s.spanContext().spanId));
  const children = new Map<string, ReadableSpan[]>();
  const roots: ReadableSpan[] = [];
  for (const s of spans) {
    const p = s.parentSpanContext?.spanId;
    if (p && ids.has(p)) children.set(p, [...(children.get(p) ?? []), s]);
    else roots.push(s);
  }
  const byStart = (a: ReadableSpan, b: ReadableSpan) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1];
  const lines: string[] = [`trace ${spans[0]?.spanContext().traceId ?? ''}  (${spans.length} spans)`];
  const walk = (s: ReadableSpan, prefix: string, last: boolean) => {
    lines.push(`${prefix}${last ? '└─ ' : '├─ '}${label(s)}${s.parentSpanContext && !ids.has(s.parentSpanContext.spanId) ? '  [parent not seen]' : ''}`);
    const kids = (children.get(s.spanContext().spanId) ?? []).sort(byStart);
    kids.forEach((k, i) => walk(k, prefix + (last ? '   ' : '│  '), i === kids.length - 1));
  };
  roots.sort(byStart).forEach((r, i) => walk(r, '', i === roots.length - 1));
  return lines;
}

export class TraceTreePrinter implements SpanExporter {
  private readonly pending = new Map<string, { spans: ReadableSpan[]; last: number }>();
  private readonly timer: NodeJS.Timeout;
  tracesPrinted = 0;
  spansSeen = 0;

  constructor(
    private readonly write: (text: string) => void = (t) => process.stdout.write(t),
    private readonly settleMs = 700,
  ) {
    this.timer = setInterval(() => this.printSettled(false), 100);
    this.timer.unref();
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const now = Date.now();
    for (const s of spans) {
      const id = s.spanContext().traceId;
      const entry = this.pending.get(id) ?? { spans: [], last: now };
      entry.spans.push(s);
      entry.last = now;
      this.pending.set(id, entry);
      this.spansSeen++;
    }
    done({ code: ExportResultCode.SUCCESS });
  }

  private printSettled(all: boolean): void {
    const now = Date.now();
    for (const [id, e] of this.pending) {
      if (!all && now - e.last < this.settleMs) continue;
      this.pending.delete(id);
      this.tracesPrinted++;
      this.write(`${renderTraceTree(e.spans).join('\n')}\n\n`);
    }
  }

  async forceFlush(): Promise<void> {
    this.printSettled(true);
  }

  async shutdown(): Promise<void> {
    clearInterval(this.timer);
    this.printSettled(true);
  }
}

/** Sends every batch to all exporters; succeeds if the first (primary) does. */
export class FanOutExporter implements SpanExporter {
  constructor(private readonly exporters: SpanExporter[]) {}

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (this.exporters.length === 0) return done({ code: ExportResultCode.SUCCESS }); // --no-export: built, then discarded
    let first: ExportResult | undefined;
    let left = this.exporters.length;
    this.exporters.forEach((e, i) =>
      e.export(spans, (r) => {
        if (i === 0) first = r;
        if (--left === 0) done(first ?? r);
      }),
    );
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.exporters.map((e) => e.shutdown()));
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.exporters.map((e) => e.forceFlush?.()));
  }
}
