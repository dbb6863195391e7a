/**
 * `npm pack` ships the compiled CO-RE object: installed from the tarball into
 * an empty directory, `gearbox --help` and `gearbox doctor` work without the
 * source tree or a compiler.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

test('the packed tarball holds the BPF object and runs from a fresh install', { timeout: 300_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gearbox-pack-'));
  try {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8' });
    const info = JSON.parse(out)[0] as { filename: string; files: { path: string }[] };
    const files = info.files.map((f) => f.path);
    assert.ok(files.includes('bpf/.output/gearbox.bpf.o'), 'the compiled BPF object is not in the package');
    assert.ok(files.includes('dist/src/cli/main.js'));
    assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('dist/test/')), 'tests are packed');
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    // npm installs into the nearest folder above with a package.json or a
    // node_modules: without one of its own, a stray /tmp/package.json (or
    // /tmp/node_modules) would take the install, and .bin/gearbox not be here.
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'gearbox-pack-test', private: true }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--omit=dev', path.join(tmp, info.filename)], { cwd: app, stdio: 'pipe' });
    const bin = path.join(app, 'node_modules', '.bin', 'gearbox');
    const help = spawnSync(bin, ['--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /run \[options\]/);
    assert.match(help.stdout, /doctor/);
    const doctor = spawnSync(bin, ['doctor'], { encoding: 'utf8', env: { ...process.env, PATH: '/usr/local/bin:/bin' } });
    assert.match(doctor.stdout, /ok {3}BPF object {3}\S*node_modules\/gearbox\/bpf\/\.output\/gearbox\.bpf\.o/);
    assert.match(doctor.stdout, /build tools +not installed \(not needed: the BPF object is built\)|build tools +\//);
    if (process.getuid?.() === 0) assert.equal(doctor.status, 0, doctor.stdout);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
