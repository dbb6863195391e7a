/**
 * HTTP throughput, latency and agent cost, traced vs untraced side by side:
 * wrk (in a cgroup of its own, not traced) drives nginx, which proxies every
 * request over kept-alive connections to a second nginx serving a small body.
 * Both nginx run in the traced cgroup. Rounds alternate untraced / traced
 * (order flipped each round); the agent exports to a local OTLP/gRPC receiver.
 *
 * Then a long traced run (BENCH_LOAD_SECONDS, default 600) samples the agent's
 * RSS every 10 s: steady state and after ten minutes of load.
 *
 * Env: BENCH_HTTP_ROUNDS (5), BENCH_HTTP_SECONDS (10), BENCH_WRK_CONNECTIONS (8),
 * BENCH_LOAD_SECONDS (600; 0 skips the long run), BENCH_BPF_STATS=1 (kernel time of
 * each BPF program per request in traced rounds, from kernel.bpf_stats_enabled,
 * which itself adds two clock reads per program run: not for the ratios).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { keepAliveProxy, writeNginxConfig } from '../src/lab/nginx-config';
import {
  BenchCgroups,
  OtlpSink,
  bpfProgramTimes,
  ROOT,
  cpuSeconds,
  median,
  minorFaults,
  requireCommands,
  requireRoot,
  rssMiB,
  saveResults,
  spawnInCgroup,
  startAgent,
  stopAgent,
  withBpfStats,
  type RunningAgent,
} from './bench-support';

const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_WRK_CONNECTIONS ?? 8);
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 600);

const BPF_STATS = process.env.BENCH_BPF_STATS === '1';
const AGENT_ARGS = (process.env.BENCH_AGENT_ARGS ?? '').split(' ').filter(Boolean);
const PROXY_PORT = 18080;
const UPSTREAM_PORT = 18081;

interface WrkResult {
  rps: number;
  requests: number;
  p50Us: number;
  p99Us: number;
  errors: number;
}

function startInCgroup(cgroup: string, cmd: string, args: string[], log: string): ChildProcess {
  const out = fs.openSync(log, 'a');
  return spawnInCgroup(cgroup, [cmd, ...args], ['ignore', out, out]);
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/** wrk's latency figures carry units: 812.00us, 1.20ms, 1.01s. */
function micros(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v);
  if (!m) throw new Error(`unexpected wrk latency ${v}`);
  return Number(m[1]) * (m[2] === 'us' ? 1 : m[2] === 'ms' ? 1000 : 1e6);
}

/** Runs wrk without blocking the event loop (the OTLP receiver lives in it). */
async function runWrk(cgroup: string, seconds: number, regime: Regime): Promise<WrkResult> {
  const pacing = regime.rate ? ['-s', paceScript(regime.rate)] : [];
  const wrk = spawnInCgroup(cgroup, ['wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', ...pacing, `http://127.0.0.1:${PROXY_PORT}/`]);
  let out = '';
  let err = '';
  wrk.stdout!.on('data', (d) => (out += d));
  wrk.stderr!.on('data', (d) => (err += d));
  const code = await new Promise((r) => wrk.once('exit', r));
  if (code !== 0) throw new Error(`wrk failed: ${err}`);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const total = /(\d+) requests in/.exec(out);
  const p50 = /\s50%\s+(\S+)/.exec(out);
  const p99 = /\s99%\s+(\S+)/.exec(out);
  if (!rps || !total || !p50 || !p99) throw new Error(`cannot read wrk output:\n${out}`);
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const sockErrs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = (errs ? Number(errs[1]) : 0) + (sockErrs ? sockErrs.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps: Number(rps[1]), requests: Number(total[1]), p50Us: micros(p50[1]), p99Us: micros(p99[1]), errors };
}

/**
 * A load regime: closed loop (wrk as fast as it can: throughput), or paced
 * (each connection waits between requests, so both runs see the same offered
 * rate: latency and agent cost at a normal load), optionally with sampling.
 */
interface Regime {
  id: string;
  label: string;
  rate?: number;
  sampler?: Record<string, string>;
  /** Agent options of this regime (after BENCH_AGENT_ARGS). */
  agentArgs?: string[];
}

const REGIMES: Regime[] = [
  { id: 'saturated', label: 'closed loop (max throughput), default CPU budget (a tenth of the CPUs)' },
  { id: 'saturated_unlimited', label: 'closed loop, no CPU budget (--max-cpu 0): every request traced', agentArgs: ['--max-cpu', '0'] },
  { id: 'paced_1000', label: 'paced, ~1,000 req/s', rate: 1000 },
  {
    id: 'paced_1000_otel_encoder',
    label: 'paced, ~1,000 req/s, spans encoded by the OpenTelemetry serializer (--otlp-encoder opentelemetry), for comparison',
    rate: 1000,
    agentArgs: ['--otlp-encoder', 'opentelemetry'],
  },
  { id: 'paced_1000_idle_priority', label: 'paced, ~1,000 req/s, agent at --cpu-priority idle', rate: 1000, agentArgs: ['--cpu-priority', 'idle'] },
  {
    id: 'saturated_sampled_1pct',
    label: 'closed loop, OTEL_TRACES_SAMPLER=traceidratio 0.01',
    sampler: { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' },
  },
];

/** A wrk script that waits between requests on each connection to offer ~`rate` req/s in all. */
function paceScript(rate: number): string {
  const file = path.join(os.tmpdir(), `gearbox-wrk-pace-${rate}.lua`);
  fs.writeFileSync(file, `function delay() return ${Math.max(1, Math.round((CONNECTIONS * 1000) / rate))} end\n`);
  return file;
}

const SPANS_PER_REQUEST = 3; // proxy server span, proxy client span, upstream server span

interface TracedRound extends WrkResult {
  agentCpuS: number;
  /** Minor page faults of the agent over the round (on these virtual machines each costs microseconds). */
  agentFaults: number;
  spans: number;
  rssMiB: number;
  /** The agent's own final counters (its "detached" log line). */
  agent: AgentCounters;
  /** BENCH_BPF_STATS=1: kernel ns per request of each BPF program, and run count per request. */
  kernel?: Record<string, { nsPerRequest: number; runsPerRequest: number }>;
}

interface RegimeResult {
  regime: Regime;
  off: WrkResult[];
  on: TracedRound[];
}

interface LongRun {
  seconds: number;
  rssSamplesMiB: number[];
  requests: number;
  spans: number;
  agentCpuS: number;
}

async function main(): Promise<void> {
  requireRoot();
  requireCommands('wrk', 'nginx');
  const restoreBpfStats = BPF_STATS ? withBpfStats() : undefined;
  const cgroups = new BenchCgroups();
  const traced = cgroups.make('traced');
  const load = cgroups.make('load');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gearbox-bench-http-'));
  const sink = await OtlpSink.start(); // its own process, as a Collector would be
  const exportEnv = { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint };
  const procs: ChildProcess[] = [];
  const results: RegimeResult[] = [];
  let longRun: LongRun | undefined;
  try {
    const upstreamConf = writeNginxConfig(
      path.join(tmp, 'upstream'),
      `  server { listen 127.0.0.1:${UPSTREAM_PORT}; location / { return 200 "hello from upstream\\n"; } }`,
    );
    const proxyConf = writeNginxConfig(path.join(tmp, 'proxy'), keepAliveProxy(`127.0.0.1:${PROXY_PORT}`, `127.0.0.1:${UPSTREAM_PORT}`));
    procs.push(startInCgroup(traced, 'nginx', ['-c', upstreamConf, '-p', path.join(tmp, 'upstream')], path.join(tmp, 'upstream.log')));
    procs.push(startInCgroup(traced, 'nginx', ['-c', proxyConf, '-p', path.join(tmp, 'proxy')], path.join(tmp, 'proxy.log')));
    await waitForPort(UPSTREAM_PORT);
    await waitForPort(PROXY_PORT);
    await runWrk(load, 2, REGIMES[0]); // warm up
    const only = process.env.BENCH_HTTP_REGIMES?.split(',');
    for (const regime of REGIMES.filter((r) => !only || only.includes(r.id))) {
      console.log(
        `HTTP, ${regime.label}: wrk -t1 -c${CONNECTIONS} -d${SECONDS}s -> nginx (proxy, keepalive upstream) -> nginx; ${ROUNDS} rounds, traced/untraced alternating`,
      );
      const res: RegimeResult = { regime, off: [], on: [] };
      for (let r = 0; r < ROUNDS; r++) {
        for (const tracedFirst of r % 2 === 0 ? [false, true] : [true, false]) {
          if (tracedFirst) res.on.push(await tracedRound(traced, load, regime, sink, { ...exportEnv, ...regime.sampler }));
          else res.off.push(await runWrk(load, SECONDS, regime));
        }
        const a = res.off[res.off.length - 1];
        const b = res.on[res.on.length - 1];
        const roots = (b.agent.rootsSampled ?? 0) + (b.agent.rootsUnsampled ?? 0);
        console.log(
          `  round ${r + 1}: untraced ${a.rps.toFixed(0)} req/s p50 ${a.p50Us.toFixed(0)} us p99 ${a.p99Us.toFixed(0)} us | traced ${b.rps.toFixed(0)} req/s p50 ${b.p50Us.toFixed(0)} us p99 ${b.p99Us.toFixed(0)} us; ${b.spans} spans received, agent ${((b.agentCpuS * 1e6) / b.requests).toFixed(1)} us CPU/request, ${(b.agentFaults / b.requests).toFixed(3)} page faults/request` +
            `; new traces sampled ${b.agent.rootsSampled ?? '?'} of ${roots}, spans dropped ${b.agent.spansDropped ?? '?'}, events lost ${b.agent.eventsLost ?? '?'}`,
        );
        if (b.kernel) {
          const all = Object.values(b.kernel).reduce((s, k) => s + k.nsPerRequest, 0);
          const each = Object.entries(b.kernel).map(([n, k]) => `${n} ${k.nsPerRequest.toFixed(0)} ns (${k.runsPerRequest.toFixed(1)} runs)`);
          console.log(`    kernel, per request (bpf_stats): ${all.toFixed(0)} ns: ${each.join(', ')}`);
        }
      }
      results.push(res);
    }
    if (LOAD_SECONDS > 0) longRun = await runLong(traced, load, sink, exportEnv);
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    cgroups.remove();
    await sink.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
    restoreBpfStats?.();
  }
  report(results, longRun);
}

async function tracedRound(traced: string, load: string, regime: Regime, sink: OtlpSink, env: NodeJS.ProcessEnv): Promise<TracedRound> {
  const agent = await startAgent(traced, ['--stats-interval-ms', '0', ...AGENT_ARGS, ...(regime.agentArgs ?? [])], env);
  const pid = agent.proc.pid!;
  const spans0 = await sink.count();
  const cpu0 = cpuSeconds(pid);
  const faults0 = minorFaults(pid);
  let rss = 0;
  const sampler = setInterval(() => (rss = Math.max(rss, rssMiB(pid))), 1000);
  const prog0 = BPF_STATS ? bpfProgramTimes(pid) : undefined;
  const res = await runWrk(load, SECONDS, regime);
  const kernel = prog0 && perRequest(prog0, bpfProgramTimes(pid), res.requests);
  clearInterval(sampler);
  rss = Math.max(rss, rssMiB(pid));
  await settle(sink, spans0 + res.requests * SPANS_PER_REQUEST);
  const agentCpuS = cpuSeconds(pid) - cpu0;
  const agentFaults = minorFaults(pid) - faults0;
  await stopAgent(agent);
  return { ...res, agentCpuS, agentFaults, spans: (await sink.count()) - spans0, rssMiB: rss, agent: finalCounters(agent), kernel };
}

/** Each program's kernel time and runs between two bpfProgramTimes, per request. */
function perRequest(before: ReturnType<typeof bpfProgramTimes>, after: ReturnType<typeof bpfProgramTimes>, requests: number): TracedRound['kernel'] {
  const out: NonNullable<TracedRound['kernel']> = {};
  for (const [name, t] of after) {
    const t0 = before.get(name) ?? { ns: 0, runs: 0 };
    if (t.runs > t0.runs) out[name] = { nsPerRequest: (t.ns - t0.ns) / requests, runsPerRequest: (t.runs - t0.runs) / requests };
  }
  return out;
}

/** The agent's own account of a round: events lost, spans dropped, and new traces sampled or not (the CPU budget). */
interface AgentCounters {
  eventsLost?: number;
  spansDropped?: number;
  rootsSampled?: number;
  rootsUnsampled?: number;
}

/** Those counters, from the agent's "detached" line. */
function finalCounters(agent: RunningAgent): AgentCounters {
  const line = agent.log.find((l) => l.includes('"msg":"detached"'));
  if (!line) return {};
  const d = JSON.parse(line);
  return {
    eventsLost: d.kernel?.events_lost,
    spansDropped: d.export?.spansDropped,
    rootsSampled: d.kernel?.roots_sampled,
    rootsUnsampled: d.kernel?.roots_unsampled,
  };
}

/** Waits until the round's spans have arrived (or stopped coming). */
async function settle(sink: OtlpSink, expected: number): Promise<void> {
  let last = -1;
  for (let i = 0; i < 40; i++) {
    const n = await sink.count();
    if (n >= expected || (n === last && i > 8)) return;
    last = n;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function runLong(traced: string, load: string, sink: OtlpSink, exportEnv: NodeJS.ProcessEnv): Promise<LongRun> {
  const regime = REGIMES.find((r) => r.id === 'paced_1000')!;
  console.log(`RSS: ${LOAD_SECONDS} s of traced load (${regime.label}), agent RSS sampled every 10 s`);
  const agent = await startAgent(traced, ['--stats-interval-ms', '0'], exportEnv);
  const pid = agent.proc.pid!;
  const cpu0 = cpuSeconds(pid);
  const spans0 = await sink.count();
  const samples: number[] = [];
  const timer = setInterval(() => {
    samples.push(rssMiB(pid));
    if (samples.length % 6 === 0) console.log(`  ${samples.length * 10} s: RSS ${samples[samples.length - 1].toFixed(1)} MiB`);
  }, 10_000);
  const res = await runWrk(load, LOAD_SECONDS, regime);
  clearInterval(timer);
  await settle(sink, spans0 + res.requests * SPANS_PER_REQUEST);
  const agentCpuS = cpuSeconds(pid) - cpu0;
  await stopAgent(agent);
  return { seconds: LOAD_SECONDS, rssSamplesMiB: samples, requests: res.requests, spans: (await sink.count()) - spans0, agentCpuS };
}

/** The long run of bench/results.json, if it holds one (it says when it was measured). */
function previousLongRun(): unknown {
  const file = path.join(ROOT, 'bench', 'results.json');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')).http?.longRun : undefined;
}

function report(results: RegimeResult[], longRun: LongRun | undefined): void {
  const spread = (xs: number[], d = 3) => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}..${Math.max(...xs).toFixed(d)})`;
  const out: Record<string, unknown> = {};
  console.log(
    '| regime | throughput traced/untraced | p50 ratio | p99 ratio | agent CPU per request (3 spans) | agent CPU, cores | spans received / expected | agent RSS peak |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const { regime, off, on } of results) {
    const rps = on.map((b, i) => b.rps / off[i].rps);
    const p50 = on.map((b, i) => b.p50Us / off[i].p50Us);
    const p99 = on.map((b, i) => b.p99Us / off[i].p99Us);
    const cpu = on.map((b) => (b.agentCpuS * 1e6) / b.requests);
    const cores = on.map((b) => b.agentCpuS / SECONDS);
    const expected = on.reduce((a, b) => a + b.requests * SPANS_PER_REQUEST, 0);
    const received = on.reduce((a, b) => a + b.spans, 0);
    const rss = Math.max(...on.map((b) => b.rssMiB));
    console.log(
      `| ${regime.label} (${median(off.map((r) => r.rps)).toFixed(0)} -> ${median(on.map((r) => r.rps)).toFixed(0)} req/s) | ${spread(rps)} | ${spread(p50)} | ${spread(p99)} | ${spread(cpu, 1)} us | ${spread(cores, 2)} | ${received} / ${expected} | ${rss.toFixed(1)} MiB |`,
    );
    out[regime.id] = {
      label: regime.label,
      measuredAt: new Date().toISOString(),
      untracedRps: median(off.map((r) => r.rps)),
      tracedRps: median(on.map((r) => r.rps)),
      throughputRatio: median(rps),
      p50Ratio: median(p50),
      p99Ratio: median(p99),
      agentCpuUsPerRequest: median(cpu),
      agentCpuCores: median(cores),
      agentPageFaultsPerRequest: median(on.map((b) => b.agentFaults / b.requests)),
      spansExpected: expected,
      spansReceived: received,
      agentRssMiBPeak: rss,
      rounds: { untraced: off, traced: on },
    };
  }
  if (longRun) {
    const first = median(longRun.rssSamplesMiB.slice(0, 6));
    const last = median(longRun.rssSamplesMiB.slice(-6));
    console.log(
      `agent RSS over ${longRun.seconds} s of paced load: first minute ${first.toFixed(1)} MiB, last minute ${last.toFixed(1)} MiB, max ${Math.max(...longRun.rssSamplesMiB).toFixed(1)} MiB; ${longRun.spans} / ${longRun.requests * SPANS_PER_REQUEST} spans received; ${((longRun.agentCpuS * 1e6) / longRun.requests).toFixed(1)} us agent CPU per request`,
    );
    out.longRun = { ...longRun, measuredAt: new Date().toISOString(), rssFirstMinuteMiB: first, rssLastMinuteMiB: last };
  } else {
    out.longRun = previousLongRun(); // a run without the long one (BENCH_LOAD_SECONDS=0) keeps the last one's figures
  }
  saveResults('http', { rounds: ROUNDS, seconds: SECONDS, connections: CONNECTIONS, ...out }, process.env.BENCH_HTTP_REGIMES !== undefined);
}

main().catch((e) => {
  console.error(e.stack ?? e);
  process.exitCode = 1;
});
