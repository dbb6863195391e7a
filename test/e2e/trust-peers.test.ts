/**
 * Trust boundary: context arriving from outside --trust-peers is ignored and
 * counted (a new trace starts at this host); from inside, it is adopted.
 * The client host runs an agent too, so its requests carry a context.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab } from '../support/lab';
import { serverAndClientLab, tracedRound } from '../support/agent-round';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const N = 10;
// The client host has its own agent, so its requests carry options to the server's.
let clientAgent: ChildProcess;
const env = serverAndClientLab('trust-peers', ROOT, {
  async setup(e) {
    clientAgent = e.lab.spawnRoot('agent-client', process.execPath, [CLI, 'run', '--cgroup', e.client.cgroup, '--poll-ms', '20', '--stats-interval-ms', '0'], {
      OTEL_EXPORTER_OTLP_ENDPOINT: e.receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    await Lab.waitFor(clientAgent, /"msg":"attached"/, 20_000, 'agent on the client host');
  },
  async teardown() {
    await Lab.stop(clientAgent);
  },
});

async function round(mode: 'new' | 'keepalive', trust: string) {
  const { kernel, spans } = await tracedRound({
    lab: env.lab,
    receiver: env.receiver,
    server: env.server,
    client: env.client,
    label: mode,
    agentArgs: ['--trust-peers', trust],
    requests: N,
    mode,
  });
  const ours = spans.filter((s) => String(s.attributes['url.path'] ?? '').startsWith(`/${mode}/`));
  const clients = new Set(ours.filter((s) => s.kind === 3).map((s) => s.spanId));
  const servers = ours.filter((s) => s.kind === 2);
  return {
    parented: servers.filter((s) => clients.has(s.parentSpanId)).length,
    roots: servers.filter((s) => s.parentSpanId === '').length,
    untrusted: kernel.opt_untrusted ?? -1,
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
