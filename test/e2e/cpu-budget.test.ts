/**
 * The agent's CPU budget (--max-cpu), with real BPF on two hosts: a client on
 * h1 sends requests back to back to nginx on h2 for 16 s, more than h1's agent
 * may spend its budget of 0.05 cores on. The agent samples fewer new traces
 * (in the kernel, at the root), stays near its budget, and what it exports
 * are whole traces: h2 follows every decision. Once the load is gone the
 * ratio climbs back, and every request is traced again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, requireRootLab, startNginx, type Host } from '../support/lab';
import { SERVICES_DIR } from '../../src/demo/sample-system';
import { OtlpReceiver, OTLP_KIND_CLIENT, OTLP_KIND_SERVER } from '../support/otlp-receiver';
import { byTrace } from '../support/trace-check';
import { kernelCounters, spawnTestAgent } from '../support/agent-round';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BUDGET = 0.05;
const LOAD_MS = 16_000;
const LATE_MS = 5000; // the end of the load, once the ratio has settled
let lab: Lab;
let h1: Host;
let h2: Host;
const receiver = new OtlpReceiver();

before(async () => {
  requireRootLab();
  await receiver.start();
  lab = new Lab(path.join(ROOT, 'test-logs', 'cpu-budget'));
  [h1, h2] = lab.create(2);
  await startNginx(lab, h2, 'nginx', `  server { listen ${h2.ip}:8080; location / { return 200 "ok\\n"; } }`);
});
after(async () => {
  await lab?.destroy();
  await receiver.stop();
});

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function client(label: string, n: number) {
  return lab.spawnIn(h1, label, process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], {
    TARGET: `http://${h2.ip}:8080`,
    N: String(n),
    MODE: 'keepalive',
    WAIT_FOR_TARGET: '1',
  });
}

const summaryOf = (label: string) => JSON.parse(lab.logOf(label).trim().split('\n').pop() ?? '{}') as { requests: number; ok: number };

test(`over a budget of ${BUDGET} cores the agent sheds whole traces at the root, and takes them all again when there is room`, async (t) => {
  const a1 = spawnTestAgent(lab, h1, 'agent-h1', receiver, ['--max-cpu', String(BUDGET), '--log-level', 'debug']);
  const a2 = spawnTestAgent(lab, h2, 'agent-h2', receiver, ['--max-cpu', '0']);
  await Promise.all([Lab.waitFor(a1.proc, /"msg":"attached"/, 20_000, 'agent h1'), Lab.waitFor(a2.proc, /"msg":"attached"/, 20_000, 'agent h2')]);

  // Load: back-to-back requests on one kept-alive connection.
  const load = client('load', 0);
  await new Promise((r) => setTimeout(r, LOAD_MS - LATE_MS));
  const cpuMid = cpuSeconds(a1.proc.pid!);
  await new Promise((r) => setTimeout(r, LATE_MS));
  const lateCores = (cpuSeconds(a1.proc.pid!) - cpuMid) / (LATE_MS / 1000);
  await Lab.stop(load);
  const loadRun = summaryOf('load');
  // The request in flight when the client was stopped may not have been answered.
  assert.ok(loadRun.requests > 0 && loadRun.ok >= loadRun.requests - 1, `load client: ${lab.logOf('load')}`);

  // Room again: the ratio, if the budget cut it (the cap on new traces may
  // have held the agent within its budget alone), climbs back to 1.
  const ratioSteps = () =>
    a1
      .log()
      .split('\n')
      .filter((l) => l.includes('"agentCpuCores"'))
      .map((l) => JSON.parse(l) as { ratio: number; agentCpuCores: number });
  const lastRatio = () => ratioSteps().pop()?.ratio ?? 1;
  for (const until = Date.now() + 40_000; lastRatio() < 1;) {
    assert.ok(Date.now() < until, `the sampling ratio is still ${lastRatio()} 40 s after the load`);
    await new Promise((r) => setTimeout(r, 250));
  }
  // The load's last spans are exported a batch delay later: let them land.
  for (let last = -1, until = Date.now() + 20_000; receiver.spans.length !== last && Date.now() < until;) {
    last = receiver.spans.length;
    await new Promise((r) => setTimeout(r, 1500));
  }
  const spansBefore = receiver.spans.length;
  const after = client('after', 30);
  assert.equal(await new Promise((r) => after.once('exit', r)), 0, lab.logOf('after'));
  await new Promise((r) => setTimeout(r, 1500));
  await Promise.all([Lab.stop(a1.proc), Lab.stop(a2.proc)]);
  const k1 = kernelCounters(a1.log());
  const dropped1 = JSON.parse(
    a1
      .log()
      .split('\n')
      .find((l) => l.includes('"msg":"detached"')) ?? '{}',
  ).export?.spansDropped as number;
  const k2 = kernelCounters(a2.log());
  const ratios = ratioSteps();

  const loadTraces = byTrace(receiver.spans.slice(0, spansBefore));
  const afterTraces = byTrace(receiver.spans.slice(spansBefore));
  const roots = k1.roots_sampled + k1.roots_unsampled;
  t.diagnostic(
    `load: ${loadRun.requests} requests in ${LOAD_MS / 1000} s, ${loadTraces.size} traced (${((100 * loadTraces.size) / loadRun.requests).toFixed(1)} %); ` +
      `agent h1 ${lateCores.toFixed(3)} cores over the last ${LATE_MS / 1000} s of load (budget ${BUDGET}); ratio steps ${ratios.map((r) => `${r.ratio}@${r.agentCpuCores}`).join(' ')}; ` +
      `roots on h1: ${k1.roots_sampled} sampled, ${k1.roots_unsampled} not (${k1.roots_capped} of those by the cap); h1 dropped ${dropped1} spans and lost ${k1.events_lost} events; h2 adopted ${k2.ctx_adopted} contexts, sent ${k2.events_sent} events; after: ${afterTraces.size} of 30 traced`,
  );

  // Shed at the root, in the kernel: most new traces not sampled, and the agent near its budget.
  assert.ok(
    k1.roots_capped > 0 || (ratios.length > 0 && Math.min(...ratios.map((r) => r.ratio)) < 0.5),
    'the agent shed: the cap refused new traces, or the ratio went down',
  );
  assert.ok(roots >= loadRun.ok + 30 && roots <= loadRun.requests + 30, `${roots} root decisions on h1 for ${loadRun.ok} + 30 requests`);
  // (The first 5 s, the window a cut for CPU needs, run at ratio 1.)
  assert.ok(k1.roots_sampled < 0.6 * loadRun.requests, `${k1.roots_sampled} of ${loadRun.requests} sampled under load`);
  assert.ok(lateCores < 3 * BUDGET, `agent h1 used ${lateCores.toFixed(3)} cores once settled (budget ${BUDGET})`);

  // The cap on new traces holds the sudden load at once: no span dropped at
  // the queue, no event lost at the ring buffer, even in the first second.
  assert.equal(dropped1, 0, 'h1 dropped no spans');
  assert.equal(k1.events_lost, 0, 'h1 lost no events');
  assert.ok(k1.roots_capped > 0, 'the cap refused some new traces (it acts from the first second)');

  // What was sampled is whole: h1's client span and h2's server span under it, nothing else.
  let whole = 0;
  for (const spans of [...loadTraces.values(), ...afterTraces.values()]) {
    const c = spans.find((s) => s.kind === OTLP_KIND_CLIENT);
    const s = spans.find((x) => x.kind === OTLP_KIND_SERVER);
    if (spans.length === 2 && c && s && s.parentSpanId === c.spanId && c.parentSpanId === '') whole++;
  }
  const traces = loadTraces.size + afterTraces.size;
  assert.ok(traces - whole <= 1, `${traces - whole} of ${traces} traces not whole (at most the request cut by the load's stop)`);
  assert.ok(Math.abs(traces - k1.roots_sampled) <= 1, `${traces} traces received for ${k1.roots_sampled} sampled roots`);
  // h2 follows: it got the context of every request, sampled or not, and reported only the sampled ones.
  assert.equal(k2.ctx_adopted, roots, `h2 adopted the propagated context of every request (${k2.ctx_adopted} of ${roots})`);
  assert.equal(k2.roots_sampled + k2.roots_unsampled, 0, 'h2 started no traces of its own');

  // Back at the configured ratio: every request traced.
  assert.equal(afterTraces.size, 30, `after the load: ${afterTraces.size} of 30 requests traced`);
});
