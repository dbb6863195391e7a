/**
 * Runs fidelity scenarios under load with one `gearbox run` agent per
 * namespace host and scores the exported traces against the services' own
 * ground truth. Used by `npm run fidelity` and by the CI test (short runs).
 * The agents run without a CPU budget: this measures what is traced, and a
 * budget would shed whole traces on purpose.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, type Host } from '../src/lab/namespace-lab';
import { OtlpReceiver } from '../test/support/otlp-receiver';
import { expectedSpanCount, score, type ScoreReport, type TruthLine } from './score';
import { SCENARIOS, SERVICES, type Scenario } from './scenarios';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

export interface RunResult extends ScoreReport {
  scenario: string;
  title: string;
  concurrency: number;
  failedRequests: number;
  seconds: number;
}

export interface HarnessOptions {
  concurrencies: number[];
  requests: number;
  logRoot: string;
  log?: (line: string) => void;
}

function truthFrom(text: string, prefix: string): TruthLine[] {
  const out: TruthLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const t = JSON.parse(line) as TruthLine & { summary?: boolean };
      if (t.summary || !t.svc) continue;
      const id = t.in ?? t.out[0];
      if (id?.startsWith(prefix)) out.push(t);
    } catch {
      /* not a ground-truth line */
    }
  }
  return out;
}

async function settle(receiver: OtlpReceiver, expected: number, from: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = receiver.spans.length;
  let quietSince = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const n = receiver.spans.length;
    if (n !== last) {
      last = n;
      quietSince = Date.now();
    }
    if (n - from >= expected && Date.now() - quietSince > 1500) return;
    if (Date.now() - quietSince > 4000) return; // nothing more is coming
  }
}

export async function runScenario(s: Scenario, receiver: OtlpReceiver, opts: HarnessOptions): Promise<RunResult[]> {
  const say = opts.log ?? (() => {});
  const lab = new Lab(path.join(opts.logRoot, s.id));
  const agents: ChildProcess[] = [];
  const results: RunResult[] = [];
  const startAgents = (hosts: Host[]) =>
    Promise.all(
      hosts.map(async (h) => {
        const agent = lab.spawnRoot(
          `agent-${h.name}`,
          process.execPath,
          [CLI, 'run', '--cgroup', h.cgroup, '--poll-ms', '20', '--idle-ms', '1000', '--stats-interval-ms', '0', '--max-cpu', '0'],
          {
            OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY: '200',
            OTEL_BSP_MAX_QUEUE_SIZE: '65536',
            OTEL_RESOURCE_ATTRIBUTES: `host.name=${h.name}`,
          },
        );
        agents.push(agent);
        await Lab.waitFor(agent, /"msg":"attached"/, 30_000, `agent on ${h.name}`);
      }),
    );
  const stopAgents = async () => {
    await Promise.all(agents.map((a) => Lab.stop(a)));
    agents.length = 0;
  };
  try {
    const hosts = lab.create(4);
    if (!s.preexisting) await startAgents(hosts);
    const target = await s.start({ lab, hosts });
    for (const c of opts.concurrencies) {
      const prefix = `c${c}q`;
      const waitFile = path.join(lab.logDir, `go-c${c}`);
      const t0 = Date.now();
      const load = lab.spawnIn(hosts[0], `load-c${c}`, process.execPath, [path.join(SERVICES, s.client ?? 'load.js')], {
        OTEL_SERVICE_NAME: 'client',
        TARGET: target,
        TOTAL: String(opts.requests),
        CONCURRENCY: String(c),
        PREFIX: prefix,
        ...(s.preexisting ? { WARMUP: '2', WAIT_FILE: waitFile } : {}),
      });
      const exited = new Promise((r) => load.once('exit', r));
      if (s.preexisting) {
        // Connections are open and idle; only now does tracing start.
        const warm = Lab.waitFor(load, /"warm":true/, 30_000, 'warm-up requests');
        await stopAgents();
        await warm;
        await startAgents(hosts);
        fs.writeFileSync(waitFile, '');
      }
      const from = receiver.spans.length;
      await exited;
      const seconds = (Date.now() - t0) / 1000;
      const logs = fs
        .readdirSync(lab.logDir)
        .filter((f) => f.endsWith('.log'))
        .map((f) => fs.readFileSync(path.join(lab.logDir, f), 'utf8'));
      const truth = logs.flatMap((t) => truthFrom(t, prefix));
      const failed = truth.filter((t) => t.svc === 'client' && (t as { status?: number }).status !== 200).length;
      await settle(receiver, expectedSpanCount(truth, s.proxies), from, 60_000);
      const report = score(receiver.spans.slice(from), truth, s.proxies);
      if (process.env.FIDELITY_DUMP)
        fs.writeFileSync(
          path.join(lab.logDir, `spans-c${c}.json`),
          JSON.stringify(receiver.spans.slice(from), (_k, v) => (typeof v === 'bigint' ? v.toString() : v)),
        );
      const r: RunResult = { scenario: s.id, title: s.title, concurrency: c, failedRequests: failed, seconds, ...report };
      results.push(r);
      say(
        `${s.id} c=${c}: ${r.exact}/${r.requests} exact (${r.percentExact.toFixed(2)} %), missing spans ${r.missingSpans}, wrong parents ${r.wrongParents}, missing parents ${r.missingParents}, merged ${r.mergedTraces}, failed requests ${failed}${r.examples.length ? `\n    e.g. ${r.examples.slice(0, 2).join('\n    e.g. ')}` : ''}`,
      );
    }
  } finally {
    await stopAgents();
    await lab.destroy();
  }
  return results;
}

export function markdownTable(results: RunResult[]): string {
  const rows = results.map(
    (r) =>
      `| ${r.title} | ${r.concurrency} | ${r.requests} | ${r.exact} | ${r.percentExact.toFixed(2)} % | ${r.missingSpans} | ${r.wrongParents} | ${r.missingParents} | ${r.mergedTraces} |`,
  );
  return [
    '| scenario | concurrency | requests | exact | exact % | missing spans | wrong parents | missing parents | merged traces |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const requests = Number(args.find((a) => a.startsWith('--requests='))?.split('=')[1] ?? 200);
  const conc = (args.find((a) => a.startsWith('--concurrency='))?.split('=')[1] ?? '1,4,16').split(',').map(Number);
  const only = args
    .find((a) => a.startsWith('--scenario='))
    ?.split('=')[1]
    ?.split(',');
  const receiver = new OtlpReceiver();
  await receiver.start();
  const all: RunResult[] = [];
  try {
    for (const s of SCENARIOS.filter((x) => !only || only.includes(x.id))) {
      console.log(`== ${s.title}`);
      all.push(
        ...(await runScenario(s, receiver, { concurrencies: conc, requests, logRoot: path.join(ROOT, 'test-logs', 'fidelity'), log: (l) => console.log(l) })),
      );
    }
  } finally {
    await receiver.stop();
  }
  console.log(`\n${markdownTable(all)}`);
  fs.mkdirSync(path.join(ROOT, 'fidelity', 'results'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'fidelity', 'results', 'latest.json'), JSON.stringify(all, null, 2));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
