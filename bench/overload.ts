/**
 * Loss under overload, side by side with untraced runs: event storms in the
 * traced cgroup (bench/syscall-loop.c), three per CPU, so that they
 * outnumber the agent for CPU time; the agent runs as deployed (default ring
 * buffer and export) plus its metrics endpoint. Three regimes:
 * - `tcp` storms: small writes and reads on a loopback connection, one
 *   endless message, every call an event (cheap for the agent to read);
 * - `rpc` storms: a client process and a server process; every call opens
 *   a message, every round trip is a new trace of two spans (client,
 *   server), as between two services, with the agent's CPU budget as
 *   deployed: it samples fewer new traces instead of losing events;
 * - the same with no budget (`--max-cpu 0`): every request traced, more
 *   events than the agent can take, so the ring buffer overflows.
 * The storms of a run share a fixed number of rounds.
 * Reported per round and as medians, for each regime:
 * - the storms' time per call, traced against untraced;
 * - events the kernel handed over, events the agent read, events the kernel
 *   counted as lost (ring buffer full): the loss is exact when read = handed
 *   over (the bench says so, or that it is not);
 * - whether the agent stayed responsive: the latency of /metrics scrapes
 *   every 250 ms during the storm, and the longest gap between its stats
 *   lines (logged every second);
 * - the agent's CPU and peak RSS.
 * `node dist/bench/overload.js` (BENCH_OVERLOAD_ROUNDS; BENCH_OVERLOAD_SCALE multiplies the storms'
 * work; BENCH_OVERLOAD_REGIMES=id,... runs only those).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BenchCgroups,
  OtlpSink,
  buildSyscallLoop,
  cpuSeconds,
  median,
  requireRoot,
  rssMiB,
  saveResults,
  spawnInCgroup,
  startAgent,
  stopAgent,
  type RunningAgent,
} from './bench-support';

const ROUNDS = Number(process.env.BENCH_OVERLOAD_ROUNDS ?? 3);
const SCALE = Number(process.env.BENCH_OVERLOAD_SCALE ?? 1);
const STORMS = 3 * os.availableParallelism();

interface Regime {
  id: string;
  label: string;
  kind: 'tcp' | 'rpc';
  /** Loop rounds of all the storms together (tcp: a write+read pair; rpc: a round trip, 4 calls). */
  rounds: number;
  agentArgs: string[];
}

const REGIMES: Regime[] = [
  { id: 'tcp_stream', label: 'one endless message per storm (tcp)', kind: 'tcp', rounds: 4_000_000 * SCALE, agentArgs: [] },
  { id: 'rpc_budget', label: 'a new trace per round trip (rpc), default CPU budget', kind: 'rpc', rounds: 1_000_000 * SCALE, agentArgs: [] },
  {
    id: 'rpc_no_budget',
    label: 'a new trace per round trip (rpc), no budget (--max-cpu 0)',
    kind: 'rpc',
    rounds: 1_000_000 * SCALE,
    agentArgs: ['--max-cpu', '0'],
  },
];
const STATS_INTERVAL_MS = 1000;

interface StormResult {
  /** Median over the storm processes of their ns per syscall. */
  nsPerCall: number;
  seconds: number;
}

interface TracedRound extends StormResult {
  eventsHandedOver: number;
  eventsRead: number;
  eventsLost: number;
  decodeErrors: number;
  exact: boolean;
  scrapes: number;
  scrapeFailures: number;
  scrapeMsMax: number;
  scrapeMsMedian: number;
  statsGapMsMax: number;
  agentCpuS: number;
  agentRssMiBPeak: number;
  spansReceived: number;
}

/** Runs the regime's storms to the end; the median of their ns per call. */
async function storms(bin: string, cgroup: string, regime: Regime): Promise<StormResult> {
  const t0 = Date.now();
  const procs = Array.from({ length: STORMS }, () => spawnInCgroup(cgroup, [bin, regime.kind, String(Math.round(regime.rounds / STORMS))]));
  const outs = await Promise.all(
    procs.map(
      (p) =>
        new Promise<number>((resolve, reject) => {
          let out = '';
          let err = '';
          p.stdout!.on('data', (d) => (out += d));
          p.stderr!.on('data', (d) => (err += d));
          p.once('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`storm exited ${code}: ${err}`))));
        }),
    ),
  );
  return { nsPerCall: median(outs), seconds: (Date.now() - t0) / 1000 };
}

/** The agent's metrics port, from its "metrics endpoint" log line. */
function metricsPort(agent: RunningAgent): number {
  const line = agent.log.find((l) => l.includes('"msg":"metrics endpoint"'));
  const port = line && JSON.parse(line).port;
  if (!port) throw new Error('the agent did not log its metrics endpoint');
  return port;
}

/** The longest gap between consecutive stats lines logged in [fromMs, toMs]. */
function longestStatsGap(agent: RunningAgent, fromMs: number, toMs: number): number {
  const times = agent.log
    .filter((l) => l.includes('"msg":"stats"'))
    .map((l) => JSON.parse(l).time as number)
    .filter((t) => t >= fromMs && t <= toMs);
  const edges = [fromMs, ...times, toMs];
  let gap = 0;
  for (let i = 1; i < edges.length; i++) gap = Math.max(gap, edges[i] - edges[i - 1]);
  return gap;
}

async function tracedRound(bin: string, cgroup: string, regime: Regime, sink: OtlpSink): Promise<TracedRound> {
  const agent = await startAgent(
    cgroup,
    ['--stats-interval-ms', String(STATS_INTERVAL_MS), '--metrics-port', '0', '--metrics-host', '127.0.0.1', ...regime.agentArgs],
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
    },
  );
  const pid = agent.proc.pid!;
  const url = `http://127.0.0.1:${metricsPort(agent)}/metrics`;
  const spans0 = await sink.count();
  const cpu0 = cpuSeconds(pid);
  let rss = rssMiB(pid);
  const scrapeMs: number[] = [];
  let scrapeFailures = 0;
  let storming = true;
  const scraper = (async () => {
    while (storming) {
      const t = process.hrtime.bigint();
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        await res.text();
        if (!res.ok) scrapeFailures++;
        else scrapeMs.push(Number(process.hrtime.bigint() - t) / 1e6);
      } catch {
        scrapeFailures++;
      }
      rss = Math.max(rss, rssMiB(pid));
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const from = Date.now();
  let storm: StormResult;
  try {
    storm = await storms(bin, cgroup, regime);
  } finally {
    storming = false; // also when a storm failed: the scraper must end
  }
  const to = Date.now();
  await scraper;
  await new Promise((r) => setTimeout(r, 1500)); // the agent reads what is still queued
  const agentCpuS = cpuSeconds(pid) - cpu0;
  await stopAgent(agent);
  const line = agent.log.find((l) => l.includes('"msg":"detached"'));
  if (!line) throw new Error('the agent did not log its final counters ("detached")');
  const d = JSON.parse(line);
  const handedOver = Number(d.kernel?.events_sent ?? NaN);
  const read = Number(d.records);
  return {
    ...storm,
    eventsHandedOver: handedOver,
    eventsRead: read,
    eventsLost: Number(d.kernel?.events_lost ?? NaN),
    decodeErrors: Number(d.decodeErrors),
    exact: handedOver === read,
    scrapes: scrapeMs.length,
    scrapeFailures,
    scrapeMsMax: scrapeMs.length ? Math.max(...scrapeMs) : NaN,
    scrapeMsMedian: scrapeMs.length ? median(scrapeMs) : NaN,
    statsGapMsMax: longestStatsGap(agent, from, to),
    agentCpuS,
    agentRssMiBPeak: rss,
    spansReceived: (await sink.count()) - spans0,
  };
}

async function main(): Promise<void> {
  requireRoot();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gearbox-bench-overload-'));
  const bin = buildSyscallLoop(tmp);
  const cgroups = new BenchCgroups();
  const traced = cgroups.make('traced');
  const sink = await OtlpSink.start();
  const out: Record<string, unknown> = {};
  const rows: string[] = [];
  try {
    const only = process.env.BENCH_OVERLOAD_REGIMES?.split(',');
    for (const regime of REGIMES.filter((r) => !only || only.includes(r.id))) {
      const off: StormResult[] = [];
      const on: TracedRound[] = [];
      console.log(
        `Overload, ${regime.label}: ${STORMS} storms (three per CPU), ${regime.rounds.toLocaleString('en')} loop rounds in all, in the traced cgroup; ${ROUNDS} rounds, untraced and traced alternating`,
      );
      for (let r = 0; r < ROUNDS; r++) {
        for (const tracedNow of r % 2 === 0 ? [false, true] : [true, false]) {
          if (tracedNow) on.push(await tracedRound(bin, traced, regime, sink));
          else off.push(await storms(bin, traced, regime));
        }
        const a = off[off.length - 1];
        const b = on[on.length - 1];
        const all = b.eventsHandedOver + b.eventsLost;
        console.log(
          `  round ${r + 1}: untraced ${a.nsPerCall.toFixed(0)} ns/call | traced ${b.nsPerCall.toFixed(0)} ns/call; kernel handed over ${b.eventsHandedOver.toLocaleString('en')} events, agent read ${b.eventsRead.toLocaleString('en')} (${b.exact ? 'all' : 'NOT all'}), lost ${b.eventsLost.toLocaleString('en')} (${((100 * b.eventsLost) / all).toFixed(1)} %); ` +
            `/metrics answered ${b.scrapes} scrapes (median ${b.scrapeMsMedian.toFixed(1)} ms, max ${b.scrapeMsMax.toFixed(1)} ms, ${b.scrapeFailures} failed), longest gap between stats lines ${b.statsGapMsMax} ms; agent ${(b.agentCpuS / b.seconds).toFixed(2)} cores, RSS peak ${b.agentRssMiBPeak.toFixed(1)} MiB`,
        );
      }
      const ratio = on.map((b, i) => b.nsPerCall / off[i].nsPerCall);
      const lostShare = on.map((b) => b.eventsLost / (b.eventsHandedOver + b.eventsLost));
      const readPerSecond = on.map((b) => b.eventsRead / b.seconds);
      const spread = (xs: number[], d: number) => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}..${Math.max(...xs).toFixed(d)})`;
      rows.push(
        `| ${regime.label} | ${spread(ratio, 2)} | ${spread(
          readPerSecond.map((x) => x / 1000),
          0,
        )} k/s | ${spread(
          lostShare.map((x) => 100 * x),
          1,
        )} % | ${on.filter((b) => b.exact).length} of ${on.length} rounds | ${Math.max(...on.map((b) => b.scrapeMsMax)).toFixed(0)} ms (${on.reduce((s, b) => s + b.scrapeFailures, 0)} failed) | ${Math.max(...on.map((b) => b.statsGapMsMax))} ms | ${spread(
          on.map((b) => b.agentCpuS / b.seconds),
          2,
        )} | ${Math.max(...on.map((b) => b.agentRssMiBPeak)).toFixed(1)} MiB |`,
      );
      out[regime.id] = {
        label: regime.label,
        measuredAt: new Date().toISOString(),
        rounds: ROUNDS,
        kind: regime.kind,
        storms: STORMS,
        loopRounds: regime.rounds,
        agentArgs: regime.agentArgs,
        timePerCallRatio: median(ratio),
        eventsReadPerSecond: median(readPerSecond),
        lostShare: median(lostShare),
        exactRounds: on.filter((b) => b.exact).length,
        perRound: { untraced: off, traced: on },
      };
      if (on.some((b) => !b.exact || b.decodeErrors > 0)) process.exitCode = 1;
    }
  } finally {
    cgroups.remove();
    await sink.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  console.log(
    '| regime | storm time per call traced/untraced | events read by the agent | events lost (kernel counter), share | loss counted exactly (read = handed over) | /metrics latency during the storm, max | longest gap between 1-s stats lines | agent CPU, cores | agent RSS peak |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
  saveResults('overload', { rounds: ROUNDS, ...out }, process.env.BENCH_OVERLOAD_REGIMES !== undefined);
}

main().catch((e) => {
  console.error(e.stack ?? e);
  process.exitCode = 1;
});
