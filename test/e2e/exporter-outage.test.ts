/**
 * The OTLP endpoint goes away for 60 s under steady traffic, comes back,
 * then rejects exports, then answers slower than the exporter's timeout.
 * The agent retries what may pass with backoff while its bounded queue
 * absorbs new spans: memory stays flat, spans beyond the queue are dropped
 * and counted, export resumes by itself, permanent rejections are counted as
 * failed spans, nothing crashes, and the agent keeps reporting throughout.
 * OUTAGE_SECONDS shortens the outage when debugging (default 60).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab } from '../support/lab';
import { serverAndClientLab } from '../support/agent-round';
import { rssMiB, sleep, until } from '../support/process-watch';
import { SERVICES_DIR } from '../../src/demo/sample-system';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const OUTAGE_SECONDS = Number(process.env.OUTAGE_SECONDS ?? 60);
const env = serverAndClientLab('exporter-outage', ROOT);

function traffic(label: string, n: number, delayMs: number): ChildProcess {
  return env.lab.spawnIn(env.client, label, process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], {
    TARGET: `http://${env.server.ip}:8080`,
    N: String(n),
    MODE: 'keepalive',
    DELAY_MS: String(delayMs),
  });
}

test(`exporter down ${OUTAGE_SECONDS} s, then rejecting, then slow: bounded memory, drops counted, export resumes, no crash`, async (t) => {
  // A CPU budget (0.5 cores) well above what this agent uses (~0.2 on these
  // machines, with its exporter retrying): a cut in the sampling ratio could
  // then only come from taking the outage's drops for overload.
  const agent = env.lab.spawnRoot(
    'agent',
    process.execPath,
    [CLI, 'run', '--cgroup', env.server.cgroup, '--poll-ms', '20', '--idle-ms', '500', '--stats-interval-ms', '1000', '--max-cpu', '0.5'],
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: env.receiver.endpoint,
      OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
      OTEL_BSP_MAX_QUEUE_SIZE: '512',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '128',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    },
  );
  let log = '';
  agent.stdout?.on('data', (d) => (log += d));
  await Lab.waitFor(agent, /"msg":"attached"/, 20_000, 'agent');
  const pid = agent.pid!;
  const stats = () =>
    log
      .split('\n')
      .filter((l) => l.includes('"msg":"stats"'))
      .map((l) => JSON.parse(l));
  const lastExport = () => stats().at(-1)?.export ?? {};

  // Healthy.
  const warm = traffic('warm', 20, 0);
  await new Promise((r) => warm.once('exit', r));
  assert.ok(await until(() => env.receiver.spans.length >= 20, 15_000), `healthy export: ${env.receiver.spans.length} spans`);
  await sleep(1500);
  const rssBefore = rssMiB(pid);

  // Outage under steady traffic.
  const port = env.receiver.port;
  env.receiver.kill();
  const during = traffic('outage', 0, 5);
  let rssPeak = rssBefore;
  const statsBefore = stats().length;
  for (let s = 0; s < OUTAGE_SECONDS; s++) {
    await sleep(1000);
    rssPeak = Math.max(rssPeak, rssMiB(pid));
    assert.equal(agent.exitCode, null, 'the agent is still running');
  }
  await Lab.stop(during);
  const afterOutage = lastExport();
  const statsDuring = stats().length - statsBefore;

  // Back: export resumes by itself (the held batch, then the queue), and new traffic flows.
  const beforeBack = env.receiver.spans.length;
  await env.receiver.start(port);
  // gRPC's own reconnect backoff (grown during the outage) decides when the
  // channel tries again: seconds, at most about two minutes after a long outage.
  const drainedOk = await until(() => lastExport().queued === 0 && env.receiver.spans.length > beforeBack, 150_000);
  const backAt = Date.now();
  const resumed = traffic('resumed', 20, 0);
  await new Promise((r) => resumed.once('exit', r));
  const resumedOk = await until(() => env.receiver.spans.filter((s) => Number(s.startNs / 1_000_000n) >= backAt).length >= 20, 20_000);

  // Rejects exports (a permanent error: not retried, the spans count as failed).
  await until(() => lastExport().queued === 0, 10_000);
  const beforeReject = lastExport();
  env.receiver.behaviour = 'reject';
  const rejected = traffic('rejected', 30, 0);
  await new Promise((r) => rejected.once('exit', r));
  const rejectedOk = await until(() => (lastExport().spansFailed ?? 0) > (beforeReject.spansFailed ?? 0), 10_000);
  const afterReject = lastExport();
  // Answers slower than the exporter's timeout: retried until it is quick again.
  env.receiver.behaviour = 'slow';
  env.receiver.slowMs = 3000;
  const slow = traffic('slow', 30, 0);
  await new Promise((r) => slow.once('exit', r));
  const slowOk = await until(() => (lastExport().exportErrors ?? 0) > (afterReject.exportErrors ?? 0), 10_000);
  const afterSlow = lastExport();
  env.receiver.behaviour = 'ok';
  const deliveredOk = await until(() => lastExport().queued === 0 && (lastExport().spansExported ?? 0) > (afterSlow.spansExported ?? 0), 20_000);

  const code = await Lab.stop(agent, 'SIGTERM', 30_000);
  const detached = JSON.parse(log.split('\n').find((l) => l.includes('"msg":"detached"')) ?? '{}');
  const e = detached.export ?? {};
  t.diagnostic(
    `outage ${OUTAGE_SECONDS} s: RSS ${rssBefore.toFixed(1)} -> peak ${rssPeak.toFixed(1)} MiB; dropped ${afterOutage.spansDropped} spans, ${afterOutage.exportErrors} export errors; ${statsDuring} stats lines during the outage; ` +
      `resumed: ${env.receiver.spans.length - beforeBack} spans after restart; rejected: ${afterReject.spansFailed - beforeReject.spansFailed} spans failed; slow: ${afterSlow.exportErrors - afterReject.exportErrors} attempts timed out; final ${JSON.stringify(e)}`,
  );
  assert.equal(code, 0, 'clean exit');
  assert.ok(afterOutage.spansDropped > 0, 'spans beyond the queue were dropped and counted');
  assert.ok(afterOutage.exportErrors > 0, 'failed exports were counted');
  assert.ok(afterOutage.queued <= 512, `the queue stays within its bound (${afterOutage.queued})`);
  assert.ok(rssPeak - rssBefore < 64, `memory stays bounded: ${rssBefore.toFixed(1)} -> ${rssPeak.toFixed(1)} MiB`);
  assert.ok(statsDuring >= OUTAGE_SECONDS / 2, 'the agent kept reporting during the outage');
  assert.ok(drainedOk, 'export resumed by itself once the endpoint was back: the queue drained');
  assert.ok(resumedOk, 'new traffic is exported again');
  // Drops because the exporter is down are not the agent being over its CPU budget: it goes on sampling every trace.
  assert.doesNotMatch(log, /over the CPU budget/, 'an exporter outage lowered the sampling ratio');
  assert.ok(rejectedOk, 'rejected exports count their spans as failed');
  assert.ok(slowOk, 'answers slower than the timeout count as failed attempts');
  assert.ok(deliveredOk, 'what waited during the slow phase was delivered once the endpoint was quick again');
  assert.equal(e.spansQueued, e.spansHanded, 'everything queued was handed to the exporter by the end');
  assert.equal(e.spansHanded, e.spansExported + e.spansFailed, 'every export ended in success or a counted failure');
});
