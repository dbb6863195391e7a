/**
 * A server span ends at its response, however late it is: nginx (h2) proxies
 * a burst of concurrent requests from a client (h1) to a backend (h3) whose
 * listen backlog is 1, over a new connection each. The backend's accept
 * queue overflows, the kernel drops SYNs, and some of nginx's connects take
 * a SYN retransmission (~1 s), longer than the agents' idle timeout. Every
 * request must still be one exact trace — client -> nginx SERVER -> nginx
 * CLIENT -> backend SERVER — with each span inside its parent's window.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, requireRootLab, startNginx, type Host } from '../support/lab';
import { OtlpReceiver, OTLP_KIND_CLIENT, OTLP_KIND_SERVER, type ReceivedSpan } from '../support/otlp-receiver';
import { checkChains, type Hop } from '../support/trace-check';
import { spawnTestAgent } from '../support/agent-round';
import { until } from '../support/process-watch';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const LOAD = path.join(ROOT, 'fidelity', 'services', 'load.js');
const BACKLOG_SERVER = path.join(ROOT, 'test', 'support', 'backlog-server.py');
const REQUESTS = 40;
const CONCURRENCY = 10;

const CHAIN: Hop[] = [
  { service: 'client', kind: 'CLIENT', name: 'GET' },
  { service: 'nginx', kind: 'SERVER', name: 'GET' },
  { service: 'nginx', kind: 'CLIENT', name: 'GET' },
  { service: 'backend', kind: 'SERVER', name: 'GET' },
];

let lab: Lab;
let hosts: Host[];
const receiver = new OtlpReceiver();
const agents: ChildProcess[] = [];

before(async () => {
  requireRootLab();
  await receiver.start();
  lab = new Lab(path.join(ROOT, 'test-logs', 'slow-connect'));
  hosts = lab.create(3);
  const [, h2, h3] = hosts;
  // --idle-ms 500 (spawnTestAgent): a retransmitted SYN takes twice as long.
  for (const h of hosts) agents.push(spawnTestAgent(lab, h, `agent-${h.name}`, receiver).proc);
  await Promise.all(agents.map((a, i) => Lab.waitFor(a, /"msg":"attached"/, 20_000, `agent on ${hosts[i].name}`)));
  const backend = lab.spawnIn(h3, 'backend', 'python3', ['-u', BACKLOG_SERVER, h3.ip, '8080'], { OTEL_SERVICE_NAME: 'backend' });
  await Lab.waitFor(backend, /listening/, 10_000, 'the backlog-1 backend');
  // No upstream keepalive: a new connection to the backend for every request.
  await startNginx(lab, h2, 'nginx', `  server { listen ${h2.ip}:8080; location / { proxy_pass http://${h3.ip}:8080; proxy_connect_timeout 30s; } }`);
});
after(async () => {
  await lab?.destroy();
  await receiver.stop();
});

test(`a burst of ${CONCURRENCY} through nginx to a backend with a listen backlog of 1: every trace exact, each server span ends at its response`, async (t) => {
  const client = lab.spawnIn(hosts[0], 'client', process.execPath, [LOAD], {
    OTEL_SERVICE_NAME: 'client',
    TARGET: `${hosts[1].ip}:8080`,
    TOTAL: String(REQUESTS),
    CONCURRENCY: String(CONCURRENCY),
  });
  await new Promise((r) => client.once('exit', r));
  const summary = JSON.parse(lab.logOf('client').trim().split('\n').pop() ?? '{}') as { ok?: number; failed?: number };
  assert.equal(summary.ok, REQUESTS, `every request answered: ${lab.logOf('client').slice(-500)}`);

  const keys = Array.from({ length: REQUESTS }, (_, i) => `/r/q${i}`);
  const pathOf = (s: ReceivedSpan) => String(s.attributes['url.path'] ?? '');
  const isRoot = (s: ReceivedSpan) => s.kind === OTLP_KIND_CLIENT && s.resource['service.name'] === 'client';
  await until(() => receiver.spans.length >= REQUESTS * CHAIN.length, 20_000);
  await new Promise((r) => setTimeout(r, 1000)); // and nothing more arrives
  const report = checkChains(receiver.spans, keys, (s) => (isRoot(s) ? pathOf(s) : undefined), CHAIN);

  // The case under test happened: nginx waited about a second for some connects.
  const nginxServer = new Map(receiver.spans.filter((s) => s.kind === OTLP_KIND_SERVER && s.resource['service.name'] === 'nginx').map((s) => [s.spanId, s]));
  const waits = receiver.spans
    .filter((s) => s.kind === OTLP_KIND_CLIENT && s.resource['service.name'] === 'nginx' && nginxServer.has(s.parentSpanId))
    .map((s) => Number(s.startNs - nginxServer.get(s.parentSpanId)!.startNs) / 1e6);
  const slow = waits.filter((ms) => ms >= 900).length;
  t.diagnostic(
    `${report.exact}/${REQUESTS} exact; ${slow} requests waited >= 0.9 s for the backend's accept (longest ${Math.max(0, ...waits).toFixed(0)} ms); ${receiver.spans.length} spans`,
  );
  for (const v of report.verdicts.filter((x) => !x.exact).slice(0, 5)) {
    const backend = receiver.spans.find((s) => s.resource['service.name'] === 'backend' && pathOf(s) === v.key);
    const wait = backend
      ? Number(
          backend.startNs -
            (receiver.spans.find((s) => s.traceId === v.traceId && s.resource['service.name'] === 'nginx' && s.kind === OTLP_KIND_SERVER)?.startNs ?? 0n),
        ) / 1e6
      : NaN;
    t.diagnostic(
      `${v.key}: ${v.problems.join('; ')}; backend span ${backend ? `parent '${backend.parentSpanId}', ${wait.toFixed(0)} ms after nginx's` : 'missing'}`,
    );
  }
  assert.ok(slow > 0, 'no connect to the backend was delayed by a dropped SYN: the scenario did not happen (the backend should overflow its backlog of 1)');
  assert.equal(report.exact, REQUESTS, 'every trace exact');
});
