/**
 * End to end, real kernel, real services, real OTLP: four namespace hosts
 * joined by veth, each with its own child cgroup and its own `gearbox run`
 * agent. load client (h1) -> Node HTTP service (h2) -> Python threading HTTP
 * service (h3) -> redis-server (h4). Every request must arrive as exactly one
 * trace of six spans with the right kinds, services, parents and windows —
 * with each way of hooking syscalls (--hooks raw and --hooks per-syscall).
 * In the second round every other host's agent encodes its spans with the
 * OpenTelemetry serializer (--otlp-encoder opentelemetry) instead of the
 * agent's own encoder, so each trace mixes spans of both.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, requireRootLab, type Host } from '../support/lab';
import { OtlpReceiver } from '../support/otlp-receiver';
import { checkChains, type Hop } from '../support/trace-check';
import { SERVICES_DIR, startSampleChain } from '../../src/demo/sample-system';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const N = 50;

const CHAIN: Hop[] = [
  { service: 'loadgen', kind: 'CLIENT', name: 'GET' },
  { service: 'frontend', kind: 'SERVER', name: 'GET' },
  { service: 'frontend', kind: 'CLIENT', name: 'GET' },
  { service: 'backend', kind: 'SERVER', name: 'GET' },
  { service: 'backend', kind: 'CLIENT', name: 'INCR' },
  { service: 'redis-server', kind: 'SERVER', name: 'INCR' },
];

for (const hooks of ['raw', 'per-syscall'] as const)
  describe(`cross-host chain: client -> HTTP -> HTTP -> Redis, one agent per host, --hooks ${hooks}`, () => {
    let lab: Lab;
    let receiver: OtlpReceiver;
    let hosts: Host[];
    const agents: ChildProcess[] = [];

    before(async () => {
      requireRootLab();
      receiver = new OtlpReceiver();
      await receiver.start();
      lab = new Lab(path.join(ROOT, 'test-logs', `cross-host-chain-${hooks}`));
      hosts = lab.create(4);
      for (const [i, h] of hosts.entries()) {
        const args = [CLI, 'run', '--cgroup', h.cgroup, '--hooks', hooks, '--poll-ms', '20', '--idle-ms', '1000', '--stats-interval-ms', '0'];
        if (hooks === 'per-syscall' && i % 2 === 1) args.push('--otlp-encoder', 'opentelemetry');
        // GEARBOX_E2E_RECORD=1 keeps each host's raw kernel events (for replay fixtures).
        if (process.env.GEARBOX_E2E_RECORD === '1') args.push('--record', path.join(lab.logDir, `events-${h.name}.bin`));
        const agent = lab.spawnRoot(`agent-${h.name}`, process.execPath, args, {
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
          OTEL_BSP_SCHEDULE_DELAY: '200',
          OTEL_RESOURCE_ATTRIBUTES: `host.name=${h.name}`,
          GEARBOX_LOG_LEVEL: 'info',
        });
        agents.push(agent);
        const out = await Lab.waitFor(agent, /"msg":"attached"/, 20_000, `agent on ${h.name}`);
        assert.match(out, new RegExp(`"hooks":"${hooks}"[^\\n]*"msg":"attached"`), `agent on ${h.name} did not attach --hooks ${hooks}`);
      }
      await startSampleChain(lab); // the demo's chain: frontend@h2 -> backend@h3 -> redis@h4
    });

    after(async () => {
      await Promise.all(agents.map((a) => Lab.stop(a)));
      await lab?.destroy();
      await receiver?.stop();
    });

    async function runClient(mode: 'new' | 'keepalive') {
      const [h1, h2] = hosts;
      const client = lab.spawnIn(h1, `client-${mode}`, process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], {
        OTEL_SERVICE_NAME: 'loadgen',
        TARGET: `http://${h2.ip}:8080`,
        N: String(N),
        MODE: mode,
      });
      let out = '';
      client.stdout?.on('data', (d) => (out += d));
      const code = await new Promise<number | null>((r) => client.once('exit', r));
      assert.equal(code, 0, `client exited ${code}: ${lab.logOf(`client-${mode}`)}`);
      return JSON.parse(out.trim().split('\n').pop() ?? '{}') as { ok: number; connections: number; failures: string[] };
    }

    async function waitForSpans(expected: number, timeoutMs: number) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline && receiver.spans.length < expected) await new Promise((r) => setTimeout(r, 200));
      await new Promise((r) => setTimeout(r, 1500)); // anything extra (duplicates) would arrive now
    }

    for (const mode of ['new', 'keepalive'] as const) {
      test(`${N} requests over ${mode === 'new' ? 'new connections' : 'one keep-alive connection'}: one exact trace each`, async (t) => {
        const before = receiver.spans.length;
        const startedMs = Date.now();
        const result = await runClient(mode);
        const endedMs = Date.now();
        assert.equal(result.ok, N, `client failures: ${result.failures.join('; ')}`);
        if (mode === 'keepalive') assert.equal(result.connections, 1, 'the keep-alive client used more than one connection');
        await waitForSpans(N * CHAIN.length + before, 20_000);
        const spans = receiver.spans.slice(before);
        const keys = Array.from({ length: N }, (_, i) => `/${mode}/${i}`);
        const report = checkChains(
          spans,
          keys,
          (s) => (s.resource['service.name'] === 'loadgen' && s.kind === 3 ? String(s.attributes['url.path']) : undefined),
          CHAIN,
        );
        const bad = report.verdicts.filter((v) => !v.exact);
        fs.writeFileSync(
          path.join(lab.logDir, `spans-${mode}.json`),
          JSON.stringify(spans, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 1),
        );
        t.diagnostic(`${mode}: ${report.exact}/${report.requests} exact traces, ${report.tracesTotal} traces, ${spans.length} spans received`);
        for (const v of bad.slice(0, 5)) t.diagnostic(`${v.key}: ${v.problems.join('; ')}`);
        assert.equal(
          report.exact,
          N,
          `${N - report.exact} of ${N} traces not exact: ${bad
            .slice(0, 3)
            .map((v) => `${v.key}: ${v.problems.join('; ')}`)
            .join(' | ')}`,
        );
        assert.equal(report.tracesTotal, N, `expected exactly ${N} traces, got ${report.tracesTotal}`);
        assert.equal(spans.length, N * CHAIN.length, `expected ${N * CHAIN.length} spans, got ${spans.length}`);
        // Kernel stamps become wall-clock times: every span lies within the
        // client's run as this process's clock saw it (ms; 1 ms of rounding).
        const outside = spans.filter((s) => Number(s.startNs / 1_000_000n) < startedMs - 1 || Number(s.endNs / 1_000_000n) > endedMs + 1);
        assert.equal(
          outside.length,
          0,
          `${outside.length} spans outside the run's wall-clock window [${startedMs}, ${endedMs}] ms, e.g. ${outside[0]?.startNs}`,
        );
        // The Redis span is described per semantic conventions.
        const redisSpan = spans.find((s) => s.resource['service.name'] === 'redis-server');
        assert.equal(redisSpan?.attributes['db.system.name'], 'redis');
        assert.equal(redisSpan?.attributes['db.operation.name'], 'INCR');
        const fe = spans.find((s) => s.resource['service.name'] === 'frontend' && s.kind === 2);
        assert.equal(fe?.attributes['http.response.status_code'], 200);
        assert.equal(fe?.resource['host.name'], 'h2');
        assert.equal(fe?.resource['process.executable.name'], 'node');
      });
    }
  });
