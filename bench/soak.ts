/**
 * Soak: `npm run soak`, two parts (SOAK_PARTS, default "busy-node,chain").
 *
 * busy-node: test/support/busy-node.ts at full length — 10,000 idle
 * keep-alive connections through nginx, ~500 new connections and ~3,500
 * requests a second for 60 s, /metrics scraped every second, then 60 s of
 * quiet. Fails if an event is lost, a scrape or stats line takes over 50 ms,
 * other periodic work over 20 ms, or RSS is not back within 20 % of idle.
 * Results go to bench/results.json ("soakBusyNode").
 *
 * chain (SOAK_SECONDS, default 1800): the sample chain on four
 * namespace hosts, one `gearbox run` agent per host exporting to a local OTLP
 * receiver, under mixed traffic: a keep-alive client, a client that opens a
 * new connection per request, and a short-lived client process every 5 s.
 * Every 10 s it samples each agent's RSS and its kernel map occupancy (from
 * the agent's stats), prints them, and at the end says whether both stayed
 * flat (exit code 1 if not). Results go to bench/results.json ("soak").
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, type Host } from '../src/lab/namespace-lab';
import { SERVICES_DIR, startSampleChain } from '../src/demo/sample-system';
import { OtlpSink, ROOT, median, requireRoot, rssMiB, saveResults } from './bench-support';
import { sleep } from '../test/support/process-watch';
import { runBusyNode } from '../test/support/busy-node';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 1800);
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

interface Sample {
  t: number;
  rssMiB: Record<string, number>;
  maps: Record<string, Record<string, number>>;
  spansReceived: number;
}

const PARTS = (process.env.SOAK_PARTS ?? 'busy-node,chain').split(',');

async function main(): Promise<void> {
  requireRoot();
  if (PARTS.includes('busy-node')) await busyNode();
  if (PARTS.includes('chain')) await chain();
}

async function busyNode(): Promise<void> {
  const lab = new Lab(path.join(ROOT, 'test-logs', 'soak-busy-node'));
  const sink = await OtlpSink.start();
  try {
    const [server, client] = lab.create(2);
    const r = await runBusyNode({
      lab,
      server,
      client,
      otlpEndpoint: sink.endpoint,
      idleConnections: 10_000,
      newConnectionsPerSecond: 500,
      requestsPerSecond: 3500,
      loadSeconds: 60,
      scrapeEveryMs: 1000,
      settleSeconds: 60,
      progress: (l) => console.log(`busy-node: ${l}`),
    });
    await Lab.stop(r.agent.proc);
    const { agent: _agent, ...figures } = r;
    const problems: string[] = [];
    if (r.kernel.events_lost !== 0) problems.push(`${r.kernel.events_lost} events lost`);
    if (!(r.scrapes.maxMs <= 50)) problems.push(`a scrape took ${r.scrapes.maxMs.toFixed(1)} ms`);
    for (const [task, t] of Object.entries(r.loop)) {
      const bound = task === 'scrape' || task === 'stats-line' || task === 'memory-relief' ? 50 : 20;
      if (t.maxMs > bound) problems.push(`${task} held the agent's thread for ${t.maxMs} ms`);
    }
    if (r.rssMiB.after > r.rssMiB.idle * 1.2) problems.push(`RSS ${r.rssMiB.after.toFixed(1)} MiB a minute after the load, idle ${r.rssMiB.idle.toFixed(1)}`);
    console.log(JSON.stringify(figures, null, 1));
    console.log(problems.length ? `busy-node: MISSED\n  ${problems.join('\n  ')}` : 'busy-node: every target met');
    saveResults('soakBusyNode', { ...figures, problems });
    if (problems.length) process.exitCode = 1;
  } finally {
    await lab.destroy();
    await sink.stop();
  }
}

async function chain(): Promise<void> {
  const lab = new Lab(path.join(ROOT, 'test-logs', 'soak'));
  const sink = await OtlpSink.start();
  const samples: Sample[] = [];
  const agents: { host: Host; proc: ChildProcess; log: () => string }[] = [];
  const clients: ChildProcess[] = [];
  let stopping = false;
  const onSignal = () => (stopping = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const hosts = lab.create(4);
    for (const h of hosts) {
      const proc = lab.spawnRoot(`agent-${h.name}`, process.execPath, [CLI, 'run', '--cgroup', h.cgroup, '--stats-interval-ms', '10000'], {
        OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint,
        OTEL_RESOURCE_ATTRIBUTES: `host.name=${h.name}`,
      });
      let out = '';
      proc.stdout?.on('data', (d) => (out = (out + d).slice(-200_000)));
      agents.push({ host: h, proc, log: () => out });
    }
    await Promise.all(agents.map((a) => Lab.waitFor(a.proc, /"msg":"attached"/, 20_000, `agent on ${a.host.name}`)));
    await startSampleChain(lab);
    const [h1, h2] = hosts;
    const client = (label: string, mode: string, n: number, delayMs: number) =>
      lab.spawnIn(h1, label, process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], {
        OTEL_SERVICE_NAME: 'loadgen',
        TARGET: `http://${h2.ip}:8080`,
        N: String(n),
        MODE: mode,
        DELAY_MS: String(delayMs),
      });
    clients.push(client('keepalive', 'keepalive', 0, 10), client('new-conns', 'new', 0, 40));
    console.log(`soak: ${SECONDS} s of mixed traffic on 4 hosts; sampling every 10 s`);
    console.log('t(s)  RSS MiB h1/h2/h3/h4        conn_map  thread_state_map  pending_map  seen_process_map  spans received');
    const start = Date.now();
    let shortLived = 0;
    while (!stopping && Date.now() - start < SECONDS * 1000) {
      for (let i = 0; i < 2 && !stopping; i++) {
        await sleep(5000);
        const c = client(`short-${shortLived++ % 4}`, 'new', 5, 0); // a new process each time
        c.once('exit', () => void 0);
      }
      const sample: Sample = { t: Math.round((Date.now() - start) / 1000), rssMiB: {}, maps: {}, spansReceived: await sink.count() };
      for (const a of agents) {
        sample.rssMiB[a.host.name] = rssMiB(a.proc.pid!);
        const line = a
          .log()
          .split('\n')
          .filter((l) => l.includes('"msg":"stats"'))
          .pop();
        const maps = line ? (JSON.parse(line).maps as Record<string, { entries: number }>) : {};
        sample.maps[a.host.name] = Object.fromEntries(Object.entries(maps).map(([k, v]) => [k, v.entries]));
      }
      samples.push(sample);
      const sum = (m: string) => Object.values(sample.maps).reduce((acc, x) => acc + (x[m] ?? 0), 0);
      console.log(
        `${String(sample.t).padStart(5)}  ${Object.values(sample.rssMiB)
          .map((r) => r.toFixed(1))
          .join('/')
          .padEnd(
            24,
          )}  ${String(sum('conn_map')).padStart(8)}  ${String(sum('thread_state_map')).padStart(16)}  ${String(sum('pending_map')).padStart(11)}  ${String(sum('seen_process_map')).padStart(16)}  ${sample.spansReceived}`,
      );
    }
  } finally {
    for (const c of clients) await Lab.stop(c);
    for (const a of agents) await Lab.stop(a.proc);
    await lab.destroy();
    await sink.stop();
  }
  verdict(samples);
}

/** Flat: the last fifth of the run is within 10 % (RSS) of the second fifth (after warm-up), and no map keeps growing. */
function verdict(samples: Sample[]): void {
  if (samples.length < 10) {
    console.log(`only ${samples.length} samples: too short to judge (SOAK_SECONDS >= 100)`);
    return;
  }
  const fifth = Math.floor(samples.length / 5);
  const early = samples.slice(fifth, 2 * fifth);
  const late = samples.slice(-fifth);
  const problems: string[] = [];
  const report: Record<string, unknown> = {};
  for (const host of Object.keys(samples[0].rssMiB)) {
    const a = median(early.map((s) => s.rssMiB[host]));
    const b = median(late.map((s) => s.rssMiB[host]));
    report[`${host}.rssMiB`] = { early: a, late: b, max: Math.max(...samples.map((s) => s.rssMiB[host])) };
    if (b > a * 1.1) problems.push(`${host}: RSS grew ${a.toFixed(1)} -> ${b.toFixed(1)} MiB`);
    for (const m of Object.keys(samples[0].maps[host] ?? {})) {
      const ea = Math.max(...early.map((s) => s.maps[host]?.[m] ?? 0));
      const lb = median(late.map((s) => s.maps[host]?.[m] ?? 0));
      report[`${host}.${m}`] = { earlyMax: ea, lateMedian: lb };
      if (lb > ea * 1.5 + 16) problems.push(`${host}: ${m} grew ${ea} -> ${lb}`);
    }
  }
  console.log(
    problems.length ? `NOT FLAT:\n  ${problems.join('\n  ')}` : `flat: RSS within 10 % and map occupancy bounded over ${samples[samples.length - 1].t} s`,
  );
  saveResults('soak', { seconds: samples[samples.length - 1].t, flat: problems.length === 0, problems, report, samples });
  fs.writeFileSync(path.join(ROOT, 'test-logs', 'soak', 'samples.json'), JSON.stringify(samples, null, 1));
  if (problems.length) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e.stack ?? e);
  process.exitCode = 1;
});
