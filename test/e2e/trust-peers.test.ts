/**
 * Trust boundary: context arriving from outside --trust-peers is ignored and
 * counted (a new trace starts at this host); from inside, it is adopted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, requireRootLab, type Host } from '../support/lab';
import { OtlpReceiver } from '../support/otlp-receiver';
import { SERVICES_DIR } from '../../src/demo/sample-system';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const N = 10;
let lab: Lab;
let receiver: OtlpReceiver;
let h1: Host;
let h2: Host;
let clientAgent: ChildProcess;

before(async () => {
  requireRootLab();
  receiver = new OtlpReceiver();
  await receiver.start();
  lab = new Lab(path.join(ROOT, 'test-logs', 'trust-peers'));
  [h1, h2] = lab.create(2);
  clientAgent = startAgent('agent-h1', h1, []);
  await Lab.waitFor(clientAgent, /"msg":"attached"/, 20_000, 'agent h1');
  const server = lab.spawnIn(h2, 'server', 'python3', ['-u', '-m', 'http.server', '8080', '--bind', h2.ip]);
  await Lab.waitFor(server, /Serving HTTP/, 10_000, 'python http.server');
});

after(async () => {
  await Lab.stop(clientAgent);
  await lab?.destroy();
  await receiver?.stop();
});

function startAgent(label: string, host: Host, extra: string[]): ChildProcess {
  return lab.spawnRoot(label, process.execPath, [CLI, 'run', '--cgroup', host.cgroup, '--poll-ms', '20', '--idle-ms', '500', '--stats-interval-ms', '0', ...extra], {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
}

async function round(mode: string, trust: string): Promise<{ parented: number; roots: number; untrusted: number }> {
  const agent = startAgent(`agent-h2-${mode}`, h2, ['--trust-peers', trust]);
  let log = '';
  agent.stdout?.on('data', (d) => (log += d));
  await Lab.waitFor(agent, /"msg":"attached"/, 20_000, 'agent h2');
  const from = receiver.spans.length;
  const client = lab.spawnIn(h1, `client-${mode}`, process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], { TARGET: `http://${h2.ip}:8080`, N: String(N), MODE: mode });
  await new Promise((r) => client.once('exit', r));
  await new Promise((r) => setTimeout(r, 1500));
  await Lab.stop(agent);
  await new Promise((r) => setTimeout(r, 500));
  const spans = receiver.spans.slice(from).filter((s) => String(s.attributes['url.path'] ?? '').startsWith(`/${mode}/`));
  const clients = new Set(spans.filter((s) => s.kind === 3).map((s) => s.spanId));
  const servers = spans.filter((s) => s.kind === 2);
  const detached = log.split('\n').find((l) => l.includes('"msg":"detached"')) ?? '{}';
  return {
    parented: servers.filter((s) => clients.has(s.parentSpanId)).length,
    roots: servers.filter((s) => s.parentSpanId === '').length,
    untrusted: (JSON.parse(detached).kernel?.opt_untrusted as number) ?? -1,
  };
}

test('a peer outside the trusted networks cannot set the parent; the options are counted', async (t) => {
  const r = await round('new', '10.231.0.3/32,fd00::/8');
  t.diagnostic(`outside: ${r.roots} root server spans, ${r.parented} parented, ${r.untrusted} options rejected`);
  assert.equal(r.roots, N);
  assert.equal(r.parented, 0);
  assert.ok(r.untrusted >= N, `expected >= ${N} untrusted options counted, got ${r.untrusted}`);
});

test('a peer inside the trusted networks sets the parent', async (t) => {
  const r = await round('keepalive', '10.231.0.0/24');
  t.diagnostic(`inside: ${r.parented} parented server spans, ${r.untrusted} options rejected`);
  assert.equal(r.parented, N);
  assert.equal(r.untrusted, 0);
});
