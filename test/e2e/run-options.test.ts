/**
 * `gearbox run` options on a real kernel: a config file that excludes a
 * process by name and prints traces on the console instead of exporting;
 * --cpu-priority idle; a refusal under --hooks auto; loading under a profiler.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, requireRootLab, type Host } from '../support/lab';
import { SERVICES_DIR } from '../../src/demo/sample-system';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const N = 10;
let lab: Lab;

/**
 * python's http.server on `host`:`port`, then N requests to it from the load
 * client (service loadgen), each on a new connection; resolves a moment after
 * the client is done (the agent's idle timer), with the server still running.
 */
async function serveAndRequest(host: Host, port: number, suffix: string): Promise<ChildProcess> {
  const server = lab.spawnIn(host, `server${suffix}`, 'python3', ['-u', '-m', 'http.server', String(port), '--bind', host.ip]);
  await Lab.waitFor(server, /Serving HTTP/, 10_000, 'python http.server');
  const client = lab.spawnIn(host, `client${suffix}`, process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], {
    OTEL_SERVICE_NAME: 'loadgen',
    TARGET: `http://${host.ip}:${port}`,
    N: String(N),
    MODE: 'new',
  });
  await new Promise((r) => client.once('exit', r));
  await new Promise((r) => setTimeout(r, 1500));
  return server;
}

/** The load client's spans in the agent's --console output. */
const clientSpanLines = (out: string) => out.split('\n').filter((l) => /loadgen\S*\s+CLIENT GET \/new\/\d+/.test(l));

before(() => requireRootLab());
after(async () => lab?.destroy());

test('--config with exclude-comm and console: client spans printed, the excluded server traced not at all', async () => {
  lab = new Lab(path.join(ROOT, 'test-logs', 'run-options'));
  const [h1] = lab.create(1);
  const config = path.join(lab.logDir, 'gearbox.yaml');
  fs.writeFileSync(config, 'exclude-comm: [python3]\nconsole: true\nexport: false\nidle-ms: 500\npoll-ms: 20\nstats-interval-ms: 0\n');
  const agent = lab.spawnRoot('agent', process.execPath, [CLI, 'run', '--config', config, '--cgroup', h1.cgroup]);
  let out = '';
  agent.stdout?.on('data', (d) => (out += d));
  await Lab.waitFor(agent, /"msg":"attached"/, 20_000, 'agent');
  await serveAndRequest(h1, 8080, '');
  await Lab.stop(agent);
  const clientLines = clientSpanLines(out);
  const serverLines = out.split('\n').filter((l) => /\sSERVER\s/.test(l));
  assert.equal(clientLines.length, N, `expected ${N} client spans on the console, got:\n${out.slice(-3000)}`);
  assert.equal(serverLines.length, 0, `python3 is excluded but its spans appeared:\n${serverLines.join('\n')}`);
  assert.doesNotMatch(out, /span export failed/, 'export: false must not try to export');
});

test('a refusal unrelated to the hook set fails once under --hooks auto, without falling back', async () => {
  if (!lab) {
    lab = new Lab(path.join(ROOT, 'test-logs', 'run-options'));
    lab.create(1);
  }
  const h = lab.hosts[0];
  // excluded_comm_map holds 64 names: the 65th is refused while the maps are filled, after the raw hooks loaded.
  // (Without a bound of its own, the agent used to accept a few more: the kernel preallocates spare entries.)
  const names = Array.from({ length: 65 }, (_, i) => ['--exclude-comm', `svc${i}`]).flat();
  const agent = lab.spawnRoot('agent-too-many-names', process.execPath, [CLI, 'run', '--cgroup', h.cgroup, '--hooks', 'auto', '--no-export', ...names]);
  let out = '';
  agent.stdout?.on('data', (d) => (out += d));
  agent.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => agent.once('exit', r));
  const code = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 20_000).unref())]);
  if (code === 'running') await Lab.stop(agent);
  assert.equal(code, 1, out);
  assert.match(out, /cannot exclude process name svc64: at most 64 process names to exclude/);
  assert.doesNotMatch(out, /raw syscall hooks refused/, 'a full map is not a reason to load the other hook set');
  assert.equal((out.match(/cannot exclude process name/g) ?? []).length, 1, `the object must be loaded once:\n${out}`);
});

test('--cpu-priority idle: every thread of the agent under SCHED_IDLE once attached, and it still traces', async () => {
  if (!lab) {
    lab = new Lab(path.join(ROOT, 'test-logs', 'run-options'));
    lab.create(1);
  }
  const h = lab.hosts[0];
  const agent = lab.spawnRoot('agent-idle', process.execPath, [
    CLI,
    'run',
    '--cgroup',
    h.cgroup,
    '--cpu-priority',
    'idle',
    '--console',
    '--no-export',
    '--idle-ms',
    '500',
    '--poll-ms',
    '20',
    '--stats-interval-ms',
    '0',
  ]);
  let out = '';
  agent.stdout?.on('data', (d) => (out += d));
  await Lab.waitFor(agent, /"msg":"attached"/, 20_000, 'agent');
  assert.match(out, /"cpuPriority":"idle"[^\n]*"msg":"attached"/);
  const policies = fs.readdirSync(`/proc/${agent.pid}/task`).map((tid) => {
    const sched = fs.readFileSync(`/proc/${agent.pid}/task/${tid}/sched`, 'utf8');
    return Number(/^policy\s*:\s*(\d+)/m.exec(sched)?.[1]);
  });
  assert.ok(policies.length > 1, 'node runs several threads');
  assert.deepEqual(policies, new Array(policies.length).fill(5), `SCHED_IDLE (5) on every thread: ${policies.join(',')}`);
  await Lab.stop(await serveAndRequest(h, 8081, '-idle'));
  await Lab.stop(agent);
  const clientLines = clientSpanLines(out);
  assert.equal(clientLines.length, N, `expected ${N} client spans on the console, got:\n${out.slice(-3000)}`);
});

test('under a profiler that sends SIGPROF every millisecond (node --cpu-prof), the programs load, trace and detach', async () => {
  if (!lab) {
    lab = new Lab(path.join(ROOT, 'test-logs', 'run-options'));
    lab.create(1);
  }
  const h = lab.hosts[0];
  // The verifier gives up with EAGAIN on a pending signal, and libbpf retries a program 5 times: without
  // the signals held during the load, SIGPROF every 1 ms refused gearbox_sockops every time (errno 11).
  const profiles = fs.mkdtempSync(path.join(lab.logDir, 'cpu-prof-'));
  const agent = lab.spawnRoot('agent-profiled', process.execPath, [
    '--cpu-prof',
    '--cpu-prof-interval',
    '1000',
    '--cpu-prof-dir',
    profiles,
    CLI,
    'run',
    '--cgroup',
    h.cgroup,
    '--console',
    '--no-export',
    '--idle-ms',
    '500',
    '--poll-ms',
    '20',
    '--stats-interval-ms',
    '0',
  ]);
  let out = '';
  agent.stdout?.on('data', (d) => (out += d));
  agent.stderr?.on('data', (d) => (out += d));
  await Lab.waitFor(agent, /"msg":"attached"|refused/, 20_000, 'agent');
  assert.doesNotMatch(out, /refused/, `the load failed under the profiler:\n${out.slice(0, 2000)}`);
  await Lab.stop(await serveAndRequest(h, 8082, '-profiled'));
  assert.equal(await Lab.stop(agent, 'SIGINT'), 0, out.slice(-2000));
  assert.match(out, /"msg":"detached"/);
  assert.equal(clientSpanLines(out).length, N, `expected ${N} client spans on the console, got:\n${out.slice(-3000)}`);
  const written = fs.readdirSync(profiles).filter((f) => f.endsWith('.cpuprofile'));
  assert.equal(written.length, 1, 'the profiler ran (it wrote its profile at exit)');
});
