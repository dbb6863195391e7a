/**
 * Where the TCP option goes: on the segment that carries a request's first
 * byte (and its retransmits), not on every segment of the request. A client
 * writes each request in many small pieces, one segment each; its host's
 * kernel must write the context about once per request, and the server must
 * still adopt it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, requireRootLab, type Host } from '../support/lab';
import { startStaticServer } from '../support/agent-round';
import { OtlpReceiver } from '../support/otlp-receiver';
import { until } from '../support/process-watch';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const N = 8;
const PIECES = 30;

// N requests on new connections, each head written in PIECES + 2 writes
// with TCP_NODELAY and a pause between them, so each piece is a segment.
const PIECEWISE_CLIENT = `
import socket, sys, time
host, n, pieces = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    s = socket.create_connection((host, 8080))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(f"GET /pieces/{i} HTTP/1.1\\r\\nHost: {host}\\r\\n".encode())
    for k in range(pieces):
        s.sendall(f"X-Piece-{k}: {'x' * 40}\\r\\n".encode())
        time.sleep(0.003)
    s.sendall(b"Connection: close\\r\\n\\r\\n")
    while s.recv(65536):
        pass
    s.close()
print("done", flush=True)
`;

let lab: Lab;
let server: Host;
let client: Host;
const receiver = new OtlpReceiver();

before(async () => {
  requireRootLab();
  lab = new Lab(path.join(ROOT, 'test-logs', 'option-placement'));
  [server, client] = lab.create(2);
  await receiver.start();
  await startStaticServer(lab, server);
});
after(async () => {
  await lab?.destroy();
  await receiver.stop();
});

function agentOn(host: Host, label: string): { proc: ChildProcess; log: () => string } {
  const proc = lab.spawnRoot(label, process.execPath, [CLI, 'run', '--cgroup', host.cgroup, '--poll-ms', '20', '--idle-ms', '500', '--stats-interval-ms', '0'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  return { proc, log: () => out };
}

function kernelCounters(log: string): Record<string, number> {
  const line = log.split('\n').find((l) => l.includes('"msg":"detached"')) ?? '{}';
  return (JSON.parse(line).kernel ?? {}) as Record<string, number>;
}

test(`a request written in ${PIECES + 2} segments carries its context once, and the server adopts it`, async (t) => {
  const serverAgent = agentOn(server, 'agent-server');
  const clientAgent = agentOn(client, 'agent-client');
  // Both at once: waitFor sees only output that comes after it is called.
  await Promise.all([
    Lab.waitFor(serverAgent.proc, /"msg":"attached"/, 20_000, 'agent on the server host'),
    Lab.waitFor(clientAgent.proc, /"msg":"attached"/, 20_000, 'agent on the client host'),
  ]);
  const from = receiver.spans.length;
  const py = lab.spawnIn(client, 'client', 'python3', ['-u', '-c', PIECEWISE_CLIENT, server.ip, String(N), String(PIECES)]);
  await Lab.waitFor(py, /done/, 30_000, 'piecewise client');
  const ours = () => receiver.spans.slice(from).filter((s) => String(s.attributes['url.path'] ?? '').startsWith('/pieces/'));
  await until(() => ours().length >= 2 * N, 10_000);
  await Lab.stop(clientAgent.proc);
  await Lab.stop(serverAgent.proc);
  const sent = kernelCounters(clientAgent.log());
  const received = kernelCounters(serverAgent.log());
  const clients = ours().filter((s) => s.kind === 3);
  const servers = ours().filter((s) => s.kind === 2);
  const clientIds = new Set(clients.map((s) => s.spanId));
  const parented = servers.filter((s) => clientIds.has(s.parentSpanId) && clients.some((c) => c.traceId === s.traceId)).length;
  t.diagnostic(`${clients.length} client and ${servers.length} server spans, ${parented} parented; options written ${sent.opt_written}, received ${received.opt_received}, for ${N} requests of ${PIECES + 2} segments`);
  assert.equal(clients.length, N);
  assert.equal(servers.length, N);
  assert.equal(parented, N, 'every server span is the child of its client span');
  // Once per request; a retransmitted first segment may carry it again.
  assert.ok(sent.opt_written >= N && sent.opt_written <= 2 * N, `options written: ${sent.opt_written} for ${N} requests (each of ${PIECES + 2} segments)`);
  assert.ok(received.opt_received >= N && received.opt_received <= 2 * N, `options received: ${received.opt_received}`);
});
