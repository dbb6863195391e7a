/**
 * Where the TCP option goes: on the segment that carries a request's first
 * byte (and its retransmits), not on every segment of the request. A client
 * writes each request in many small pieces, one segment each; its host's
 * kernel must write the context about once per request, and the server must
 * still adopt it — also when the first copy of that segment is lost.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Lab } from '../support/lab';
import { kernelCounters, serverAndClientLab, spawnTestAgent } from '../support/agent-round';
import { until } from '../support/process-watch';

const ROOT = path.resolve(__dirname, '..', '..', '..');
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

const env = serverAndClientLab('option-placement', ROOT);

/** N piecewise requests from client to server with an agent on each host; spans and both kernels' counters. */
async function piecewiseRound(label: string) {
  const { lab, server, client, receiver } = env;
  const serverAgent = spawnTestAgent(lab, server, `agent-server-${label}`, receiver);
  const clientAgent = spawnTestAgent(lab, client, `agent-client-${label}`, receiver);
  // Both at once: waitFor sees only output that comes after it is called.
  await Promise.all([
    Lab.waitFor(serverAgent.proc, /"msg":"attached"/, 20_000, 'agent on the server host'),
    Lab.waitFor(clientAgent.proc, /"msg":"attached"/, 20_000, 'agent on the client host'),
  ]);
  const from = receiver.spans.length;
  const py = lab.spawnIn(client, `client-${label}`, 'python3', ['-u', '-c', PIECEWISE_CLIENT, server.ip, String(N), String(PIECES)]);
  await Lab.waitFor(py, /done/, 60_000, 'piecewise client');
  const ours = () => receiver.spans.slice(from).filter((s) => String(s.attributes['url.path'] ?? '').startsWith('/pieces/'));
  await until(() => ours().length >= 2 * N, 10_000);
  await Lab.stop(clientAgent.proc);
  await Lab.stop(serverAgent.proc);
  const clients = ours().filter((s) => s.kind === 3);
  const servers = ours().filter((s) => s.kind === 2);
  const clientIds = new Set(clients.map((s) => s.spanId));
  const parented = servers.filter((s) => clientIds.has(s.parentSpanId) && clients.some((c) => c.traceId === s.traceId)).length;
  return { clients, servers, parented, sent: kernelCounters(clientAgent.log()), received: kernelCounters(serverAgent.log()) };
}

test(`a request written in ${PIECES + 2} segments carries its context once, and the server adopts it`, async (t) => {
  const r = await piecewiseRound('clean');
  t.diagnostic(
    `${r.clients.length} client and ${r.servers.length} server spans, ${r.parented} parented; options written ${r.sent.opt_written}, received ${r.received.opt_received}, for ${N} requests of ${PIECES + 2} segments`,
  );
  assert.equal(r.clients.length, N);
  assert.equal(r.servers.length, N);
  assert.equal(r.parented, N, 'every server span is the child of its client span');
  // Once per request; a retransmitted first segment may carry it again.
  assert.ok(
    r.sent.opt_written >= N && r.sent.opt_written <= 2 * N,
    `options written: ${r.sent.opt_written} for ${N} requests (each of ${PIECES + 2} segments)`,
  );
  assert.ok(r.received.opt_received >= N && r.received.opt_received <= 2 * N, `options received: ${r.received.opt_received}`);
});

/** Runs `args` as `tc` inside the client host's network namespace. */
function tcOnClient(args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', env.client.ns, 'tc', ...args], { encoding: 'utf8' });
}

/** The dropper's counters: [first copies dropped, copies let through again]. */
function dropperCounts(): [number, number] {
  const progId = /\bid (\d+)/.exec(tcOnClient(['filter', 'show', 'dev', 'eth0', 'egress']))?.[1];
  assert.ok(progId, 'the dropper is not attached');
  const prog = JSON.parse(execFileSync('bpftool', ['-j', 'prog', 'show', 'id', progId], { encoding: 'utf8' })) as { map_ids: number[] };
  for (const id of prog.map_ids) {
    const map = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show', 'id', String(id)], { encoding: 'utf8' })) as { name: string };
    if (map.name !== 'dropper_counts') continue;
    const rows = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'id', String(id)], { encoding: 'utf8' })) as {
      formatted: { key: number; value: number };
    }[];
    const v = (k: number) => rows.find((r) => r.formatted.key === k)?.formatted.value ?? 0;
    return [v(0), v(1)];
  }
  throw new Error('the dropper has no dropper_counts map');
}

test('the first segment of each request is lost: its retransmission carries the context, and the server adopts it', async (t) => {
  // A lossy link on the client host: a tc program drops the first copy of
  // every segment that carries our option (test/bpf/first-copy-dropper.bpf.c).
  const obj = path.join(env.lab.logDir, 'first-copy-dropper.bpf.o');
  execFileSync('clang', [
    '-O2',
    '-g',
    '-target',
    'bpf',
    '-D__TARGET_ARCH_x86',
    '-I',
    path.join(ROOT, 'bpf', '.output'),
    '-c',
    path.join(ROOT, 'test', 'bpf', 'first-copy-dropper.bpf.c'),
    '-o',
    obj,
  ]);
  tcOnClient(['qdisc', 'add', 'dev', 'eth0', 'clsact']);
  try {
    tcOnClient(['filter', 'add', 'dev', 'eth0', 'egress', 'bpf', 'direct-action', 'obj', obj, 'sec', 'tc']);
    const r = await piecewiseRound('lossy');
    const [dropped, again] = dropperCounts();
    t.diagnostic(
      `${dropped} first copies dropped, ${again} let through again; ${r.servers.length} server spans, ${r.parented} parented; options written ${r.sent.opt_written}, received ${r.received.opt_received}`,
    );
    assert.ok(dropped >= N, `the dropper dropped ${dropped} segments with the option, expected one per request`);
    assert.ok(again >= N, `only ${again} retransmissions carried the option`);
    assert.equal(r.clients.length, N);
    assert.equal(r.servers.length, N);
    assert.equal(r.parented, N, 'every server span is the child of its client span, the context having come on a retransmission');
    assert.ok(r.sent.opt_written >= 2 * N, `options written ${r.sent.opt_written}: each request's first segment twice`);
  } finally {
    tcOnClient(['qdisc', 'del', 'dev', 'eth0', 'clsact']);
  }
});
