/**
 * One measured round against a single traced server: start a `gearbox run`
 * agent on the server's host, send N requests from the client host, stop
 * the agent, and return its final kernel counters and the spans received.
 */
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, type Host } from '../../src/lab/namespace-lab';
import { SERVICES_DIR } from '../../src/demo/sample-system';
import { after, before } from 'node:test';
import { requireRootLab } from '../../src/lab/namespace-lab';
import { OtlpReceiver, type ReceivedSpan } from './otlp-receiver';

const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** python3 -m http.server on host:8080; resolves when it listens. */
export async function startStaticServer(lab: Lab, host: Host): Promise<void> {
  const server = lab.spawnIn(host, 'server', 'python3', ['-u', '-m', 'http.server', '8080', '--bind', host.ip]);
  await Lab.waitFor(server, /Serving HTTP/, 10_000, 'python http.server');
}

export interface RoundOptions {
  lab: Lab;
  receiver: OtlpReceiver;
  server: Host;
  client: Host;
  label: string;
  agentArgs: string[];
  requests: number;
  mode: 'new' | 'keepalive';
}

/** A `gearbox run` agent on `host`'s cgroup exporting to `receiver`, with short timers for tests; `log()` is its stdout so far. */
export function spawnTestAgent(lab: Lab, host: Host, label: string, receiver: OtlpReceiver, args: string[] = []): { proc: ChildProcess; log: () => string } {
  const proc = lab.spawnRoot(
    label,
    process.execPath,
    [CLI, 'run', '--cgroup', host.cgroup, '--poll-ms', '20', '--idle-ms', '500', '--stats-interval-ms', '0', ...args],
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
  );
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  return { proc, log: () => out };
}

/** The JSON of an agent's last log line with msg `msg`. */
export function lastLogLine(log: string, msg: string): Record<string, unknown> | undefined {
  const lines = log.split('\n').filter((l) => l.includes(`"msg":"${msg}"`));
  return lines.length ? (JSON.parse(lines[lines.length - 1]) as Record<string, unknown>) : undefined;
}

/** The kernel counters of a stopped agent, from its "detached" log line. */
export function kernelCounters(log: string): Record<string, number> {
  return (lastLogLine(log, 'detached')?.kernel ?? {}) as Record<string, number>;
}

export async function tracedRound(o: RoundOptions): Promise<{ kernel: Record<string, number>; spans: ReceivedSpan[] }> {
  const agent = spawnTestAgent(o.lab, o.server, `agent-${o.label}`, o.receiver, o.agentArgs);
  await Lab.waitFor(agent.proc, /"msg":"attached"/, 20_000, `agent ${o.label}`);
  const from = o.receiver.spans.length;
  const client = o.lab.spawnIn(o.client, `client-${o.label}`, process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], {
    TARGET: `http://${o.server.ip}:8080`,
    N: String(o.requests),
    MODE: o.mode,
  });
  await new Promise((r) => client.once('exit', r));
  await new Promise((r) => setTimeout(r, 1200));
  await Lab.stop(agent.proc);
  await new Promise((r) => setTimeout(r, 300));
  return { kernel: kernelCounters(agent.log()), spans: o.receiver.spans.slice(from) };
}

export interface ServerAndClientLab {
  lab: Lab;
  server: Host;
  client: Host;
  receiver: OtlpReceiver;
}

/**
 * A two-host lab for one test file: `server` runs python's http.server on
 * :8080, `client` is free; an OTLP receiver is up. Registers before/after
 * hooks; the returned object is filled in by `before`. Root-level hooks of
 * node:test do not wait for each other, so a file's own set-up that needs
 * the lab goes in `setup` (and `teardown`), run in order inside these hooks.
 */
export function serverAndClientLab(
  name: string,
  root: string,
  hooks: { setup?: (env: ServerAndClientLab) => Promise<void>; teardown?: (env: ServerAndClientLab) => Promise<void> } = {},
): ServerAndClientLab {
  const env = { receiver: new OtlpReceiver() } as ServerAndClientLab;
  before(async () => {
    requireRootLab();
    env.lab = new Lab(path.join(root, 'test-logs', name));
    [env.server, env.client] = env.lab.create(2);
    await env.receiver.start();
    await startStaticServer(env.lab, env.server);
    await hooks.setup?.(env);
  });
  after(async () => {
    await hooks.teardown?.(env);
    await env.lab?.destroy();
    await env.receiver.stop();
  });
  return env;
}
