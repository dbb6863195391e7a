/**
 * Overload: an event storm (a tight loop of small TCP writes and reads) next
 * to ordinary HTTP traffic, into a deliberately small ring buffer (64 KiB). The kernel
 * counts what it could not hand over; the agent must receive exactly what
 * the kernel sent (sent = received, lost counted separately), log the loss,
 * mark the spans that lost events as incomplete instead of dropping them,
 * keep logging its stats and stop promptly on SIGTERM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { Lab } from '../support/lab';
import { serverAndClientLab } from '../support/agent-round';
import { SERVICES_DIR } from '../../src/demo/sample-system';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const env = serverAndClientLab('overload', ROOT);

test('a full ring buffer: loss counted exactly, reported, charged to incomplete spans; the agent stays responsive', async (t) => {
  const loop = path.join(env.lab.logDir, 'syscall-loop');
  execFileSync('clang', ['-O2', '-o', loop, path.join(ROOT, 'bench', 'syscall-loop.c')]);
  const agent = env.lab.spawnRoot(
    'agent',
    process.execPath,
    [
      CLI,
      'run',
      '--cgroup',
      env.server.cgroup,
      '--ringbuf-bytes',
      '65536',
      '--poll-ms',
      '50',
      '--idle-ms',
      '500',
      '--stats-interval-ms',
      '500',
      '--metrics-port',
      '0',
      '--metrics-host',
      '127.0.0.1',
    ],
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: env.receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
  );
  let log = '';
  agent.stdout?.on('data', (d) => (log += d));
  await Lab.waitFor(agent, /"msg":"attached"/, 20_000, 'agent');
  const attachedAt = Date.now();

  // The storm runs on the server host, in the traced cgroup, beside the HTTP server.
  const storm = env.lab.spawnIn(env.server, 'storm', loop, ['tcp', '3000000']);
  const stormStarted = Date.now();
  const http = env.lab.spawnIn(env.client, 'client', process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], {
    TARGET: `http://${env.server.ip}:8080`,
    N: '300',
    MODE: 'keepalive',
  });
  await new Promise((r) => http.once('exit', r));
  const statsDuringStorm = log.split('\n').filter((l) => l.includes('"msg":"stats"')).length;
  await Lab.stop(storm);
  const stormMs = Date.now() - stormStarted;
  await new Promise((r) => setTimeout(r, 1500));
  // The agent's own metrics, scraped the way Prometheus would.
  const metricsPort = JSON.parse(log.split('\n').find((l) => l.includes('"msg":"metrics endpoint"')) ?? '{}').port;
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
  const stopStarted = Date.now();
  const code = await Lab.stop(agent, 'SIGTERM', 20_000);
  const stopMs = Date.now() - stopStarted;

  const detached = JSON.parse(log.split('\n').find((l) => l.includes('"msg":"detached"')) ?? '{}');
  const kernel = detached.kernel ?? {};
  const warnings = log.split('\n').filter((l) => l.includes('events lost: ring buffer full'));
  const totalWarned = warnings.reduce((a, l) => a + (JSON.parse(l).lost as number), 0);
  const incomplete = env.receiver.spans.filter((s) => s.attributes['gearbox.events_lost'] !== undefined);
  const charged = incomplete.reduce((a, s) => a + Number(s.attributes['gearbox.events_lost']), 0);
  t.diagnostic(
    `kernel sent ${kernel.events_sent}, lost ${kernel.events_lost}; agent read ${detached.records} records; ${warnings.length} loss warnings (${totalWarned} events); ` +
      `${env.receiver.spans.length} spans, ${incomplete.length} marked incomplete (${charged} lost events charged, ${detached.correlator?.lostUnattributed} after their span was sent); stop took ${stopMs} ms; ${statsDuringStorm} stats lines during the storm; ` +
      `${kernel.wakeups} wakeups forced over the ${stormMs} ms storm`,
  );
  t.diagnostic(
    `metrics: events_received ${metric('gearbox_events_received_total')}, events_lost ${metric('gearbox_events_lost_total')}, spans_incomplete ${metric('gearbox_spans_incomplete_total')}, rss ${metric('gearbox_process_resident_memory_bytes')}`,
  );
  assert.equal(code, 0, 'the agent exits cleanly');
  assert.equal(metric('gearbox_events_lost_total'), kernel.events_lost, 'the metrics endpoint reports the loss');
  assert.equal(metric('gearbox_events_received_total'), detached.records, 'and what was received');
  assert.ok(metric('gearbox_spans_incomplete_total') > 0);
  assert.ok(metric('gearbox_process_resident_memory_bytes') > 0);
  assert.match(metrics, /^gearbox_map_entries\{map="conn_map"\} \d+$/m);
  assert.match(metrics, /^gearbox_options_rejected_total\{reason="untrusted_peer"\} 0$/m);
  assert.ok(stopMs < 10_000, `stop took ${stopMs} ms`);
  assert.ok(statsDuringStorm >= 1, 'the agent kept logging its stats during the storm');
  assert.ok(kernel.events_lost > 1000, `the storm should overflow a 64 KiB ring buffer (lost ${kernel.events_lost})`);
  // The backlog stays above the wakeup mark for the whole storm: a wakeup
  // (an interrupt, a hypervisor exit in a VM) on every submit would cost
  // the traced process microseconds per call. At most one per ms per CPU,
  // and some, or the agent would only drain on its poll timer.
  assert.ok(kernel.wakeups > 0, 'the agent is woken when a lot is queued');
  const attachedMs = Date.now() - attachedAt;
  assert.ok(
    kernel.wakeups <= (attachedMs + 100) * os.availableParallelism(),
    `wakeups are rate-limited (${kernel.wakeups} in the ${attachedMs} ms the agent was attached)`,
  );
  assert.equal(detached.records, kernel.events_sent, 'every event the kernel submitted was read: loss is only what the kernel counted');
  // A 64 KiB ring wraps every few hundred records: the records that run past
  // its end (put together from its two ends) must decode like the rest.
  assert.equal(detached.decodeErrors, 0, 'no record failed to decode');
  assert.equal(totalWarned, kernel.events_lost, 'the warnings add up to the kernel counter');
  assert.ok(incomplete.length > 0, 'spans that lost events are exported, marked incomplete');
  for (const s of incomplete) assert.match(String(s.attributes['gearbox.incomplete']), /ring buffer/);
  assert.ok(charged + detached.correlator.lostUnattributed <= kernel.events_lost, 'no more loss charged than happened');
  for (const s of env.receiver.spans) assert.match(`${s.traceId}/${s.spanId}`, /^[0-9a-f]{32}\/[0-9a-f]{16}$/, 'well-formed ids only');
  assert.ok(env.receiver.spans.length > 0);
});
