/**
 * Sampling in the kernel, decided once at the root and carried to the other
 * hosts in the option's ExID: OTEL_TRACES_SAMPLER=parentbased_traceidratio
 * with OTEL_TRACES_SAMPLER_ARG=0.3 on every agent of the four-host chain.
 * Each request is either a whole six-span trace or nothing at all on every
 * host, about 30 % are sampled, and the hosts downstream send the kernel
 * events of sampled requests only.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, requireRootLab, type Host } from '../support/lab';
import { OtlpReceiver } from '../support/otlp-receiver';
import { byTrace } from '../support/trace-check';
import { SERVICES_DIR, startSampleChain } from '../../src/demo/sample-system';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const N = 200;
const RATIO = 0.3;
let lab: Lab;
let hosts: Host[];
const receiver = new OtlpReceiver();
const agents: { host: Host; proc: ChildProcess; log: () => string }[] = [];

before(async () => {
  requireRootLab();
  await receiver.start();
  lab = new Lab(path.join(ROOT, 'test-logs', 'sampling'));
  hosts = lab.create(4);
  for (const h of hosts) {
    const proc = lab.spawnRoot(
      `agent-${h.name}`,
      process.execPath,
      [CLI, 'run', '--cgroup', h.cgroup, '--poll-ms', '20', '--idle-ms', '1000', '--stats-interval-ms', '0'],
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY: '200',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: String(RATIO),
      },
    );
    let out = '';
    proc.stdout?.on('data', (d) => (out += d));
    agents.push({ host: h, proc, log: () => out });
    await Lab.waitFor(proc, /"msg":"attached"/, 20_000, `agent on ${h.name}`);
  }
  await startSampleChain(lab);
});
after(async () => {
  await lab?.destroy();
  await receiver.stop();
});

test(`traceidratio ${RATIO} at the root, followed downstream: whole traces or nothing`, async (t) => {
  const [h1, h2] = hosts;
  const client = lab.spawnIn(h1, 'client', process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], {
    OTEL_SERVICE_NAME: 'loadgen',
    TARGET: `http://${h2.ip}:8080`,
    N: String(N),
    MODE: 'new',
  });
  assert.equal(await new Promise((r) => client.once('exit', r)), 0, lab.logOf('client'));
  await new Promise((r) => setTimeout(r, 3000));
  for (const a of agents) await Lab.stop(a.proc);
  const kernel = agents.map(
    (a) =>
      JSON.parse(
        a
          .log()
          .split('\n')
          .find((l) => l.includes('"msg":"detached"')) ?? '{}',
      ).kernel ?? {},
  );

  const traces = byTrace(receiver.spans);
  const sizes = [...traces.values()].map((s) => s.length);
  const whole = sizes.filter((n) => n === 6).length;
  const partial = sizes.filter((n) => n !== 6);
  // Binomial(200, 0.3): mean 60, sd 6.5; 5 sd either side.
  t.diagnostic(
    `${traces.size} traces sampled of ${N} requests (${((100 * traces.size) / N).toFixed(1)} %), ${whole} whole; kernel events sent per host: ${kernel.map((k) => k.events_sent).join(' / ')}`,
  );
  assert.equal(partial.length, 0, `every sampled request is a whole trace (sizes ${partial.join(',')})`);
  assert.ok(traces.size >= 28 && traces.size <= 92, `about ${RATIO * 100} % sampled, got ${traces.size} of ${N}`);
  // Unsampled requests cost no events downstream: the Python backend's host
  // sends about 12 events per sampled request (its server and Redis client
  // exchanges, one connection each); if unsampled requests sent theirs too it
  // would be N / sampled times that (about 40).
  const perSampled = kernel[2].events_sent / traces.size;
  assert.ok(perSampled < 18, `downstream host h3 sent ${kernel[2].events_sent} events for ${traces.size} sampled requests (${perSampled.toFixed(1)} each)`);
  // The options still carried the (unsampled) decision on every request.
  assert.ok(kernel[0].opt_written >= N, `the root host wrote the option on every request (${kernel[0].opt_written})`);
});
