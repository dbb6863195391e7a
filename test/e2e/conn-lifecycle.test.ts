/**
 * Connections and processes that end badly: a half-closed request, a reset,
 * a server killed mid-request, and a new connection on the same five-tuple
 * as one just closed. Two hosts, an agent on each. No stale context may be
 * adopted, every open span must end, and the kernel's per-connection,
 * per-thread and per-process map entries must be reclaimed (their counts,
 * from the agent's stats, are checked against the maps' bounds).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { Lab, requireRootLab, type Host } from '../support/lab';
import { OtlpReceiver, OTLP_KIND_CLIENT, OTLP_KIND_SERVER, type ReceivedSpan } from '../support/otlp-receiver';
import { startStaticServer } from '../support/agent-round';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const SUPPORT = path.join(ROOT, 'test', 'support');
let lab: Lab;
let server: Host;
let client: Host;
const receiver = new OtlpReceiver();
const agents: { host: Host; proc: ChildProcess; log: () => string }[] = [];

function startAgent(host: Host): { host: Host; proc: ChildProcess; log: () => string } {
  const proc = lab.spawnRoot(
    `agent-${host.name}`,
    process.execPath,
    [CLI, 'run', '--cgroup', host.cgroup, '--poll-ms', '20', '--idle-ms', '1000', '--stats-interval-ms', '500'],
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    },
  );
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  return { host, proc, log: () => out };
}

async function runClient(label: string, args: string[]): Promise<string> {
  const c = lab.spawnIn(client, label, 'python3', [path.join(SUPPORT, 'conn-scenarios.py'), ...args]);
  let out = '';
  c.stdout?.on('data', (d) => (out += d));
  const code = await new Promise((r) => c.once('exit', r));
  assert.equal(code, 0, `${label} failed: ${lab.logOf(label)}`);
  return out.trim();
}

const path_ = (s: ReceivedSpan) => String(s.attributes['url.path'] ?? new URL(String(s.attributes['url.full'] ?? 'http://x/')).pathname);

async function spansFor(p: string, count: number): Promise<ReceivedSpan[]> {
  for (let i = 0; i < 100; i++) {
    const found = receiver.spans.filter((s) => path_(s) === p);
    if (found.length >= count) return found;
    await new Promise((r) => setTimeout(r, 100));
  }
  return receiver.spans.filter((s) => path_(s) === p);
}

type Maps = Record<string, { entries: number; max: number }>;

/** The `maps` of the first stats line an agent logs after `since` characters of its log. */
async function mapsAfter(a: (typeof agents)[number], since: number): Promise<Maps> {
  for (let i = 0; i < 100; i++) {
    const line = a
      .log()
      .slice(since)
      .split('\n')
      .find((l) => l.includes('"msg":"stats"'));
    if (line) return JSON.parse(line).maps as Maps;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no stats from the agent on ${a.host.name}`);
}

before(async () => {
  requireRootLab();
  lab = new Lab(path.join(ROOT, 'test-logs', 'conn-lifecycle'));
  [server, client] = lab.create(2);
  await receiver.start();
  for (const h of [server, client]) agents.push(startAgent(h));
  await Promise.all(agents.map((a) => Lab.waitFor(a.proc, /"msg":"attached"/, 20_000, `agent on ${a.host.name}`)));
  await startStaticServer(lab, server);
});
after(async () => {
  for (const a of agents) await Lab.stop(a.proc);
  await lab?.destroy();
  await receiver.stop();
});

test('half-close: the request and its response are one exchange on each side, parented across hosts', async () => {
  assert.match(await runClient('halfclose', ['halfclose', server.ip, '8080']), /^halfclose HTTP\/1\.0 404/);
  const spans = await spansFor('/halfclose', 2);
  const c = spans.find((s) => s.kind === OTLP_KIND_CLIENT);
  const s = spans.find((x) => x.kind === OTLP_KIND_SERVER);
  assert.ok(c && s, `client and server span expected, got ${spans.length}`);
  assert.equal(s.parentSpanId, c.spanId);
  assert.equal(s.traceId, c.traceId);
  assert.ok(Number(s.attributes['gearbox.response.bytes']) > 0);
});

test('reset: the client aborts with RST mid-response; every span of the request ends', async () => {
  await runClient('reset', ['reset', server.ip, '8080']);
  const spans = await spansFor('/reset', 2);
  assert.ok(
    spans.some((s) => s.kind === OTLP_KIND_CLIENT),
    'the client span ended and was exported',
  );
  assert.ok(
    spans.some((s) => s.kind === OTLP_KIND_SERVER),
    'the server span ended and was exported',
  );
  for (const s of spans) assert.ok(s.endNs >= s.startNs);
});

test('server killed mid-request: the client span ends without a response, the server span ends at the close', async () => {
  const slow = lab.spawnIn(server, 'slow-server', 'python3', ['-u', path.join(SUPPORT, 'slow-server.py'), server.ip, '8081']);
  await Lab.waitFor(slow, /listening/, 10_000, 'slow server');
  const waiting = runClient('wait', ['wait', server.ip, '8081']);
  await Lab.waitFor(slow, /request/, 10_000, 'the request to reach the slow server');
  await Lab.stop(slow, 'SIGKILL');
  assert.match(await waiting, /^wait <no response>/);
  const spans = await spansFor('/slow', 2);
  const c = spans.find((s) => s.kind === OTLP_KIND_CLIENT);
  const s = spans.find((x) => x.kind === OTLP_KIND_SERVER);
  assert.ok(c && s, `client and server span expected, got ${spans.length}`);
  assert.equal(c.statusCode, 2, 'no response is an error');
  assert.equal(s.attributes['gearbox.end_reason'], 'close');
  assert.equal(s.parentSpanId, c.spanId);
});

test('port reuse: a new connection on the same five-tuple adopts nothing from the one before', async () => {
  const out = await runClient('reuse', ['reuse', server.ip, '8080', '40123', '3']);
  const ports = out.split('\n').map((l) => l.split(' ')[2]);
  assert.deepEqual(ports, ['40123', '40123', '40123'], out);
  const traces = new Set<string>();
  for (let i = 0; i < 3; i++) {
    const spans = await spansFor(`/reuse/${i}`, 2);
    const c = spans.find((s) => s.kind === OTLP_KIND_CLIENT);
    const s = spans.find((x) => x.kind === OTLP_KIND_SERVER);
    assert.ok(c && s, `request ${i}: client and server span expected`);
    assert.equal(s.parentSpanId, c.spanId, `request ${i}: parent is its own client span`);
    assert.equal(s.traceId, c.traceId);
    traces.add(c.traceId);
  }
  assert.equal(traces.size, 3, 'three requests, three traces');
});

test('afterwards every map entry of the ended connections, threads and processes is reclaimed', async (t) => {
  await new Promise((r) => setTimeout(r, 1500)); // closes and exits have reached the kernel
  for (const a of agents) {
    const maps = await mapsAfter(a, a.log().length);
    const line = Object.entries(maps)
      .map(([k, v]) => `${k} ${v.entries}/${v.max}`)
      .join(', ');
    t.diagnostic(`${a.host.name}: ${line}`);
    for (const [name, m] of Object.entries(maps)) assert.ok(m.entries < m.max, `${a.host.name} ${name} is full`);
    // Left: the static server's own process and thread (it lives on).
    if (maps.conn_map.entries) t.diagnostic(execFileSync('bpftool', ['map', 'dump', 'name', 'conn_map'], { encoding: 'utf8' }).slice(0, 3000));
    assert.equal(maps.conn_map.entries, 0, `${a.host.name}: connections all closed`);
    assert.equal(maps.flow_context_map.entries, 0, `${a.host.name}: no context left to send`);
    assert.equal(maps.peer_context_map.entries, 0, `${a.host.name}: no received context left`);
    assert.equal(maps.connect_ctx_map.entries, 0, `${a.host.name}: no connect-time context left`);
    assert.equal(maps.pending_map.entries, 0, `${a.host.name}: no request left pending`);
    assert.ok(maps.thread_state_map.entries <= 2, `${a.host.name}: threads of exited processes reclaimed (${maps.thread_state_map.entries} left)`);
    assert.ok(maps.seen_process_map.entries <= 1, `${a.host.name}: exited processes forgotten (${maps.seen_process_map.entries} left)`);
  }
});
