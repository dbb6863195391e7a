/**
 * Agent ceiling on recorded kernel events: replays test/fixtures/recorded
 * through the agent's own stages, one core, and prints events per second:
 *   1. decode + correlate (one reused EventView, as the agent does)
 *   2. + build spans (ReadableSpans, as any exporter but the agent's own gets them)
 *   3. + export: the agent's span pipeline (spans written for OTLP straight
 *      from the exchanges, batched, OTLP/gRPC exporter) to a local OTLP
 *      receiver in another process; the rate counts until every span has
 *      been received, so it is sustained without loss.
 *   4. the same with the OpenTelemetry exporter as it comes (ReadableSpans,
 *      the SDK's batch processor and the library's protobuf serializer), for
 *      comparison.
 * `node dist/bench/replay.js [rounds]`
 */
import fs from 'node:fs';
import path from 'node:path';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OtlpGrpcSpanExporter } from '../src/otlp/otlp-grpc-exporter';
import { EventView } from '../src/events/decoder';
import { forEachRecord } from '../src/events/replay';
import { Correlator, type Exchange } from '../src/trace/correlator';
import { buildSpans } from '../src/export/span-builder';
import { createSpanPipeline, type SpanPipeline } from '../src/export/span-pipeline';
import { WallClock, nodeClock } from '../src/events/clock';
import { log } from '../src/log';
import { OtlpSink, ROOT, median, saveResults } from './bench-support';

const DIR = path.join(ROOT, 'test', 'fixtures', 'recorded');
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.events'));
const data = files.map((f) => fs.readFileSync(path.join(DIR, f)));
const rounds = Number(process.argv[2] ?? 100);
const QUEUE = 65_536;
const clock = new WallClock(nodeClock());
const resource = resourceFromAttributes({ 'service.name': 'bench' });

type Stage = 'correlate' | 'spans' | 'export' | 'export-otel';
const ALL_STAGES: Stage[] = ['correlate', 'spans', 'export', 'export-otel'];
/** BENCH_REPLAY_STAGES=export,... runs only those (for profiling one stage). */
const STAGES = (process.env.BENCH_REPLAY_STAGES?.split(',') ?? ALL_STAGES).map((s) => {
  if (!ALL_STAGES.includes(s as Stage)) throw new Error(`BENCH_REPLAY_STAGES: unknown stage ${s} (stages: ${ALL_STAGES.join(', ')})`);
  return s as Stage;
});

/** One pass over every recording; returns events and spans. */
function replayOnce(onExchange: (ex: Exchange) => void): { events: number; exchanges: number } {
  const view = new EventView();
  let events = 0;
  let exchanges = 0;
  for (const d of data) {
    const c = new Correlator((ex) => {
      exchanges++;
      onExchange(ex);
    });
    events += forEachRecord(d, (b, v, o, l) => c.push(view.load(b, v, o, l)));
    c.flush();
  }
  return { events, exchanges };
}

async function run(stage: Stage, pipeline?: SpanPipeline): Promise<{ events: number; spans: number; seconds: number; cpuSeconds: number }> {
  let spans = 0;
  let events = 0;
  let flushedAt = 0;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < rounds; r++) {
    const res = replayOnce((ex) => {
      if (stage === 'spans') spans += buildSpans(ex, resource, clock).length;
      else pipeline?.submitExchange(ex, resource, clock);
    });
    events += res.events;
    if (stage === 'correlate') spans += res.exchanges;
    if (pipeline) spans = pipeline.stats.spansQueued + pipeline.stats.spansDropped;
    // Let the exporter catch up before its queue could fill: nothing is
    // dropped, so the rate is one the agent can sustain.
    if (pipeline && (spans - flushedAt >= QUEUE / 2 || r === rounds - 1)) {
      await pipeline.flush();
      flushedAt = spans;
    }
  }
  const cpu = process.cpuUsage(cpu0);
  return { events, spans, seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function main(): Promise<void> {
  const receiver = await OtlpSink.start(); // its own process: not on the agent's core
  const results: Record<string, unknown> = {};
  await run('spans'); // warm up
  for (const stage of STAGES) {
    const rates: number[] = [];
    const cpuPerSpan: number[] = [];
    let last = { events: 0, spans: 0, seconds: 0, cpuSeconds: 0 };
    let received = 0;
    for (let i = 0; i < 3; i++) {
      const Exporter = stage === 'export' ? OtlpGrpcSpanExporter : stage === 'export-otel' ? OTLPTraceExporter : undefined;
      const pipeline =
        Exporter &&
        createSpanPipeline(log, new Exporter({ url: receiver.endpoint }), { maxQueueSize: QUEUE, maxExportBatchSize: 2048, scheduledDelayMillis: 50 });
      const before = await receiver.count();
      last = await run(stage, pipeline);
      if (pipeline) {
        await pipeline.shutdown();
        received = (await receiver.count()) - before;
        if (received !== last.spans) throw new Error(`export lost spans: ${received} received of ${last.spans}`);
      }
      rates.push(last.events / last.seconds);
      cpuPerSpan.push((last.cpuSeconds / last.spans) * 1e6);
    }
    const label = {
      correlate: 'decode + correlate',
      spans: 'decode + correlate + build spans',
      export: 'decode + correlate + export over OTLP/gRPC, spans written from the exchanges (all received)',
      'export-otel': '  the same with the OpenTelemetry serializer (for comparison)',
    }[stage];
    console.log(
      `${label}: ${last.events} events (${last.spans} ${stage === 'correlate' ? 'exchanges' : 'spans'}) per run; median ${Math.round(median(rates)).toLocaleString('en')} events/s (min ${Math.round(Math.min(...rates)).toLocaleString('en')}, max ${Math.round(Math.max(...rates)).toLocaleString('en')}); ${median(cpuPerSpan).toFixed(1)} µs of this process's CPU per ${stage === 'correlate' ? 'exchange' : 'span'}`,
    );
    results[stage] = {
      eventsPerRun: last.events,
      spansPerRun: last.spans,
      eventsPerSecond: median(rates),
      min: Math.min(...rates),
      max: Math.max(...rates),
      cpuMicrosPerSpan: median(cpuPerSpan),
      ...(stage.startsWith('export') ? { spansReceived: received } : {}),
    };
  }
  await receiver.stop();
  if (STAGES.length === ALL_STAGES.length) saveResults('replay', { rounds, recordings: files, ...results });
  else console.log('(some stages only: bench/results.json left as it was)');
}

main().catch((e) => {
  console.error(e.stack ?? e);
  process.exitCode = 1;
});
