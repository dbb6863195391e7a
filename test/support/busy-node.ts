/**
 * A busy node, as a user meets one: nginx on a traced host holds thousands
 * of idle keep-alive connections while new connections arrive at a steady
 * rate and requests run on kept-alive ones; the agent's /metrics endpoint is
 * scraped throughout, as Prometheus would. Measures what a scrape costs the
 * client and the agent, how long the ring buffer waited unread behind the
 * agent's periodic work, events lost, and the agent's RSS before, at the
 * peak of, and after the load. Shared by the end-to-end test (short) and
 * `npm run soak` (full length).
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, startNginx, type Host } from './lab';
import { rssMiB, sleep } from './process-watch';
import { lastLogLine } from './agent-round';
import type { TaskTiming } from '../../src/overhead/loop-watch';

const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');
const SUPPORT = path.resolve(__dirname, '..', '..', '..', 'test', 'support');

export interface BusyNodeOptions {
  lab: Lab;
  /** The traced host (nginx and the agent) and the host the clients run on. */
  server: Host;
  client: Host;
  otlpEndpoint: string;
  /** Idle keep-alive connections held open through the load. */
  idleConnections: number;
  /** New connections a second (one request each, Connection: close). */
  newConnectionsPerSecond: number;
  /** Requests a second on kept-alive connections. */
  requestsPerSecond: number;
  loadSeconds: number;
  scrapeEveryMs: number;
  /** How long after the load RSS is read again. */
  settleSeconds: number;
  /** Extra `gearbox run` arguments. */
  agentArgs?: string[];
  /** Called with progress lines. */
  progress?: (line: string) => void;
}

export interface BusyNodeResult {
  idleHeld: number;
  requests: { newConnections: number; keptAlive: number; errors: number };
  scrapes: { count: number; maxMs: number; medianMs: number; failed: number };
  /** The agent's own timings (LoopWatch), from its last stats line. */
  loop: Record<string, TaskTiming>;
  kernel: Record<string, number>;
  export: Record<string, number>;
  rssMiB: { idle: number; peak: number; after: number };
  agent: { proc: ChildProcess; log: () => string; metricsPort: number };
}

/** A wrk Lua script: each connection waits `delayMs` between requests (pacing), optionally closing after each. */
function wrkScript(dir: string, name: string, delayMs: number, close: boolean): string {
  const file = path.join(dir, `${name}.lua`);
  fs.writeFileSync(file, `${close ? 'wrk.headers["Connection"] = "close"\n' : ''}function delay() return ${delayMs} end\n`);
  return file;
}

/** Requests, and socket errors + non-2xx answers, from wrk's summary. */
function wrkCounts(out: string): { requests: number; errors: number } {
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0) + non2xx;
  return { requests, errors };
}

/** One GET /metrics, as Prometheus makes it; its time in ms. */
export function scrape(port: number): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`/metrics answered ${res.statusCode}`))));
      })
      .on('error', reject);
  });
}

export async function runBusyNode(o: BusyNodeOptions): Promise<BusyNodeResult> {
  const say = o.progress ?? (() => {});
  const { lab, server, client } = o;
  const block = `  server { listen ${server.ip}:8080 backlog=4096; keepalive_timeout 3600s; keepalive_requests 1000000; location / { return 200 "ok\\n"; } }`;
  await startNginx(lab, server, 'busy-nginx', block, o.idleConnections + 4096);

  const proc = lab.spawnRoot(
    'busy-agent',
    process.execPath,
    [CLI, 'run', '--cgroup', server.cgroup, '--stats-interval-ms', '1000', '--metrics-port', '0', '--metrics-host', '127.0.0.1', ...(o.agentArgs ?? [])],
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: o.otlpEndpoint,
    },
  );
  let out = '';
  proc.stdout?.on('data', (d) => (out = (out + d).slice(-4_000_000)));
  const log = () => out;
  await Lab.waitFor(proc, /"msg":"attached"/, 20_000, 'the agent');
  const metricsPort = Number(lastLogLine(log(), 'metrics endpoint')?.port);
  if (!metricsPort) throw new Error(`the agent logged no metrics port:\n${log().slice(-2000)}`);
  await sleep(2000);
  const idle = rssMiB(proc.pid!);
  say(`agent attached; idle RSS ${idle.toFixed(1)} MiB`);

  // The idle connections, opened before the load and held through it.
  const holder = lab.spawnIn(client, 'idle-connections', process.execPath, [path.join(SUPPORT, 'idle-connections.js')], {
    TARGET: `${server.ip}:8080`,
    COUNT: String(o.idleConnections),
  });
  const heldLine = await Lab.waitFor(holder, /"held"/, 120_000, 'the idle connections');
  const held = (
    JSON.parse(
      heldLine
        .trim()
        .split('\n')
        .filter((l) => l.includes('"held"'))
        .pop()!,
    ) as { held: number }
  ).held;
  say(`${held} idle connections held`);

  // Paced load: wrk connections that each wait 10 ms between requests.
  const url = `http://${server.ip}:8080/`;
  const perConn = 1000 / 10;
  const wrk = (label: string, rate: number, close: boolean) =>
    lab.spawnIn(client, label, 'wrk', [
      '-t1',
      `-c${Math.max(1, Math.round(rate / perConn))}`,
      `-d${o.loadSeconds}s`,
      '--timeout',
      '10s',
      '-s',
      wrkScript(lab.logDir, label, 10, close),
      url,
    ]);
  const fresh = wrk('wrk-new-connections', o.newConnectionsPerSecond, true);
  const kept = wrk('wrk-kept-alive', o.requestsPerSecond, false);
  const done = Promise.all([fresh, kept].map((p) => new Promise((r) => p.once('exit', r))));
  let loadOver = false;
  void done.then(() => (loadOver = true));

  const scrapeMs: number[] = [];
  let failed = 0;
  let peak = idle;
  while (!loadOver) {
    const started = Date.now();
    try {
      scrapeMs.push(await scrape(metricsPort));
    } catch {
      failed++;
    }
    peak = Math.max(peak, rssMiB(proc.pid!));
    await sleep(Math.max(0, o.scrapeEveryMs - (Date.now() - started)));
  }
  const n = wrkCounts(lab.logOf('wrk-new-connections'));
  const k = wrkCounts(lab.logOf('wrk-kept-alive'));
  say(`load over: ${n.requests} requests on new connections, ${k.requests} kept alive; ${scrapeMs.length} scrapes`);

  // After the load: scrapes go on (at a slower pace) while memory settles.
  const settleUntil = Date.now() + o.settleSeconds * 1000;
  while (Date.now() < settleUntil) {
    peak = Math.max(peak, rssMiB(proc.pid!));
    await sleep(Math.min(1000, Math.max(0, settleUntil - Date.now())));
  }
  const after = rssMiB(proc.pid!);
  await Lab.stop(holder);
  await sleep(1500); // the next stats line sees the end of the load
  const stats = lastLogLine(log(), 'stats') ?? {};
  const sorted = [...scrapeMs].sort((a, b) => a - b);
  return {
    idleHeld: held,
    requests: { newConnections: n.requests, keptAlive: k.requests, errors: n.errors + k.errors },
    scrapes: { count: scrapeMs.length, maxMs: sorted[sorted.length - 1] ?? NaN, medianMs: sorted[Math.floor(sorted.length / 2)] ?? NaN, failed },
    loop: (stats.loop ?? {}) as Record<string, TaskTiming>,
    kernel: (stats.kernel ?? {}) as Record<string, number>,
    export: (stats.export ?? {}) as Record<string, number>,
    rssMiB: { idle, peak, after },
    agent: { proc, log, metricsPort },
  };
}
