/**
 * `gearbox demo`: builds the sample system, traces it with one agent per
 * host, prints every trace as a tree as it arrives with a status line, and
 * removes everything on exit (also on Ctrl-C). Exports over OTLP as well when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
import os from 'node:os';
import path from 'node:path';
import { OtlpGrpcSpanExporter } from '../otlp/otlp-grpc-exporter';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { requireRunPrerequisites, PrerequisiteError } from '../bpf/prerequisites';
import { SampleSystem } from '../demo/sample-system';
import { FanOutExporter, TraceTreePrinter } from '../export/trace-tree-printer';
import type { Logger } from '../log';

export interface DemoOptions {
  requests: number;
  delayMs: number;
  log: Logger;
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  try {
    requireRunPrerequisites('/sys/fs/cgroup/unified');
  } catch (e) {
    if (e instanceof PrerequisiteError) {
      process.stderr.write(
        `gearbox demo cannot run here:\n${e.failed.map((c) => `  - ${c.name}: ${c.detail}${c.fix ? `\n    fix: ${c.fix}` : ''}`).join('\n')}\n`,
      );
      return 1;
    }
    throw e;
  }
  const printer = new TraceTreePrinter();
  const otlp = process.env.OTEL_EXPORTER_OTLP_ENDPOINT || process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  const shared: SpanExporter = otlp ? new FanOutExporter([printer, new OtlpGrpcSpanExporter()]) : printer;
  // One exporter for all four agents: each agent's shutdown must not close it.
  const perHost: SpanExporter = {
    export: (s, d) => shared.export(s, d),
    shutdown: async () => {},
    forceFlush: () => shared.forceFlush?.() ?? Promise.resolve(),
  };
  const system = new SampleSystem({
    requests: opts.requests,
    delayMs: opts.delayMs,
    exporterFor: () => perHost,
    log: opts.log,
    logDir: path.join(os.tmpdir(), `gearbox-demo-${process.pid}`),
  });
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    system.stopLoad();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const started = Date.now();
  let status: NodeJS.Timeout | undefined;
  try {
    process.stdout.write(
      'gearbox demo: 4 hosts (network namespaces + child cgroups), one agent each:\n  loadgen@h1 -> frontend@h2 (Node.js) -> backend@h3 (Python) -> redis-server@h4\n\n',
    );
    await system.start();
    status = setInterval(() => {
      const s = system.agents.map((a) => a.stats());
      const events = s.reduce((a, x) => a + x.correlator.events, 0);
      const lost = s.reduce((a, x) => a + (x.kernel.events_lost ?? 0), 0);
      const secs = (Date.now() - started) / 1000;
      process.stdout.write(
        `[status] requests traced ${printer.tracesPrinted}  spans exported ${printer.spansSeen}  events ${events} (${(events / secs).toFixed(0)}/s)  lost ${lost}${otlp ? `  otlp ${otlp}` : ''}\n`,
      );
    }, 3000);
    const result = await system.runLoad();
    await new Promise((r) => setTimeout(r, 1500)); // let the last spans arrive
    process.stdout.write(
      `\nload generator: ${result.ok} of ${result.requests} requests answered${result.failures?.length ? `; failures: ${result.failures.slice(0, 3).join('; ')}` : ''}\n`,
    );
  } finally {
    if (status) clearInterval(status);
    await system.stop();
    await shared.shutdown();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.stdout.write(
    `traces printed: ${printer.tracesPrinted}, spans: ${printer.spansSeen}${interrupted ? ' (interrupted)' : ''}; everything the demo created has been removed.\n`,
  );
  return printer.tracesPrinted > 0 ? 0 : 1;
}
