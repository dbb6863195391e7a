/**
 * One measured round against a single traced server: start a `gearbox run`
 * agent on the server's host, send N requests from the client host, stop
 * the agent, and return its final kernel counters and the spans received.
 */
import path from 'node:path';
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

export async function tracedRound(o: RoundOptions): Promise<{ kernel: Record<string, number>; spans: ReceivedSpan[] }> {
  const agent = o.lab.spawnRoot(`agent-${o.label}`, process.execPath, [CLI, 'run', '--cgroup', o.server.cgroup, '--poll-ms', '20', '--idle-ms', '500', '--stats-interval-ms', '0', ...o.agentArgs], {
    OTEL_EXPORTER_OTLP_ENDPOINT: o.receiver.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  let log = '';
  agent.stdout?.on('data', (d) => (log += d));
  await Lab.waitFor(agent, /"msg":"attached"/, 20_000, `agent ${o.label}`);
  const from = o.receiver.spans.length;
  const client = o.lab.spawnIn(o.client, `client-${o.label}`, process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], {
    TARGET: `http://${o.server.ip}:8080`,
    N: String(o.requests),
    MODE: o.mode,
  });
  await new Promise((r) => client.once('exit', r));
  await new Promise((r) => setTimeout(r, 1200));
  await Lab.stop(agent);
  await new Promise((r) => setTimeout(r, 300));
  const detached = log.split('\n').find((l) => l.includes('"msg":"detached"')) ?? '{}';
  return { kernel: (JSON.parse(detached).kernel ?? {}) as Record<string, number>, spans: o.receiver.spans.slice(from) };
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
