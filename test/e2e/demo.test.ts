/** The README's first command runs the demo: it must show traces and leave nothing behind. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { requireRootLab, CGROUP2_ROOT } from '../support/lab';

const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');

test('gearbox demo: five requests, five six-span traces on the terminal, everything removed afterwards', () => {
  requireRootLab();
  const before = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const r = spawnSync(process.execPath, [CLI, 'demo', '--requests', '5', '--delay-ms', '50'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const traces = r.stdout.split('\n').filter((l) => /^trace [0-9a-f]{32} {2}\(6 spans\)$/.test(l));
  assert.equal(traces.length, 5, r.stdout);
  assert.match(r.stdout, /redis-server@h4 {2}SERVER INCR/);
  assert.match(r.stdout, /load generator: 5 of 5 requests answered/);
  assert.equal(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), before, 'the demo left network namespaces behind');
  assert.deepEqual(
    fs.readdirSync(CGROUP2_ROOT).filter((d) => d.startsWith('gearbox-test-')),
    [],
    'the demo left cgroups behind',
  );
});

test('gearbox demo until Ctrl-C: SIGINT stops it cleanly and removes everything', async () => {
  requireRootLab();
  const before = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  const { spawn } = await import('node:child_process');
  const demo = spawn(process.execPath, [CLI, 'demo', '--requests', '0', '--delay-ms', '100']);
  let out = '';
  demo.stdout.on('data', (d) => (out += d));
  const deadline = Date.now() + 60_000;
  while (!/^trace [0-9a-f]{32}/m.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  demo.kill('SIGINT');
  const code = await new Promise<number | null>((r) => demo.once('exit', r));
  assert.equal(code, 0, out);
  assert.match(out, /\(interrupted\); everything the demo created has been removed/);
  assert.equal(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), before, 'the demo left network namespaces behind');
  assert.deepEqual(
    fs.readdirSync(CGROUP2_ROOT).filter((d) => d.startsWith('gearbox-test-')),
    [],
  );
});
