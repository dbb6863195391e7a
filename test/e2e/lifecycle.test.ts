/**
 * Lifecycle: every attachment is a BPF link owned by the agent, so SIGKILL
 * leaves nothing attached; one agent per cgroup (a second is refused with a
 * clear message); a killed agent does not block the next one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, requireRootLab, type Host } from '../support/lab';
import { until } from '../support/process-watch';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
let lab: Lab;
let h1: Host;

const ours = (name: string) => name.startsWith('gb_') || name.startsWith('gearbox_');

/** bpftool's JSON output; it prints nothing at all for an empty list. */
function bpftool(...args: string[]): unknown[] {
  const out = execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' }).trim();
  return out ? (JSON.parse(out) as unknown[]) : [];
}

function attached(cgroup: string): { programs: number; links: number; cgroupProgs: number } {
  const progs = bpftool('prog', 'list') as { id: number; name?: string }[];
  const ourIds = new Set(progs.filter((p) => p.name && ours(p.name)).map((p) => p.id));
  const links = bpftool('link', 'list') as { prog_id: number }[];
  const cg = bpftool('cgroup', 'show', cgroup) as { name?: string }[];
  return { programs: ourIds.size, links: links.filter((l) => ourIds.has(l.prog_id)).length, cgroupProgs: cg.filter((c) => c.name && ours(c.name)).length };
}

function agent(label: string) {
  return lab.spawnRoot(label, process.execPath, [CLI, 'run', '--cgroup', h1.cgroup, '--stats-interval-ms', '0'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
  });
}

before(() => {
  requireRootLab();
  lab = new Lab(path.join(ROOT, 'test-logs', 'lifecycle'));
  [h1] = lab.create(1);
});
after(async () => lab?.destroy());

test('SIGKILL of the agent leaves zero programs, links and cgroup attachments; a second agent on the cgroup is refused; the next one starts', async (t) => {
  assert.deepEqual(attached(h1.cgroup), { programs: 0, links: 0, cgroupProgs: 0 }, 'something of ours was attached before the test');
  const first = agent('agent-1');
  await Lab.waitFor(first, /"msg":"attached"/, 20_000, 'first agent');
  const live = attached(h1.cgroup);
  t.diagnostic(`while running: ${live.programs} programs, ${live.links} links, ${live.cgroupProgs} on the cgroup`);
  // raw syscall hooks (enter, exit), fork, exit, sockops; every loaded program but the one-shot TCP iterator is linked
  assert.ok(
    live.links >= 5 && live.links === live.programs - 1,
    `expected a link for each of the agent's programs but the iterator, got ${live.links} links for ${live.programs} programs`,
  );
  assert.equal(live.cgroupProgs, 1, 'sockops is attached to the scope cgroup');

  const second = agent('agent-2');
  const code = await new Promise<number | null>((r) => second.once('exit', r));
  assert.equal(code, 1);
  assert.match(lab.logOf('agent-2'), /another Gearbox agent \(pid \d+\) already traces/);

  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));
  const gone = await until(() => {
    const a = attached(h1.cgroup);
    return a.programs === 0 && a.links === 0 && a.cgroupProgs === 0;
  }, 5000);
  const after = attached(h1.cgroup);
  t.diagnostic(`after SIGKILL: ${after.programs} programs, ${after.links} links, ${after.cgroupProgs} on the cgroup`);
  assert.ok(gone, `left attached after SIGKILL: ${JSON.stringify(after)}`);

  const third = agent('agent-3');
  await Lab.waitFor(third, /"msg":"attached"/, 20_000, 'agent after the killed one');
  await Lab.stop(third);
  // The kernel frees programs after an RCU grace period: give it a moment.
  await until(() => attached(h1.cgroup).programs === 0, 5000);
  assert.deepEqual(attached(h1.cgroup), { programs: 0, links: 0, cgroupProgs: 0 }, 'a stopped agent detaches everything');
});

test('an agent whose cgroup is removed stops by itself, with an error, and detaches', async () => {
  const scope = path.join(path.dirname(h1.cgroup), 'removed-scope');
  fs.mkdirSync(scope);
  const a = lab.spawnRoot('agent-removed', process.execPath, [CLI, 'run', '--cgroup', scope, '--stats-interval-ms', '0'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
  });
  await Lab.waitFor(a, /"msg":"attached"/, 20_000, 'agent on the cgroup to be removed');
  fs.rmdirSync(scope);
  const code = await Promise.race([
    new Promise<number | null>((r) => a.once('exit', r)),
    new Promise<string>((r) => setTimeout(() => r('still running'), 15_000)),
  ]);
  assert.equal(code, 1, 'exits with an error');
  assert.match(lab.logOf('agent-removed'), /cgroup removed: stopping/);
  assert.match(lab.logOf('agent-removed'), /"msg":"detached"/);
});
