import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigFileError, loadConfigFile } from '../../src/cli/config-file';
import { serviceNameFromCgroup } from '../../src/resources/process-resources';

const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gearbox-config-'));
const write = (name: string, text: string) => {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, text);
  return p;
};

test('config files: YAML and JSON, kebab-case or camelCase keys, lists joined', () => {
  const known = ['cgroup', 'idleMs', 'excludeComm', 'console'];
  assert.deepEqual(loadConfigFile(write('a.yaml', 'cgroup: /sys/fs/cgroup/x\nidle-ms: 500\nexclude-comm: [sshd, chronyd]\nconsole: true\n'), known), {
    cgroup: '/sys/fs/cgroup/x',
    idleMs: 500,
    excludeComm: 'sshd,chronyd',
    console: true,
  });
  assert.deepEqual(loadConfigFile(write('b.json', '{"idleMs": 700}'), known), { idleMs: 700 });
  assert.deepEqual(loadConfigFile(write('empty.yaml', ''), known), {});
});

test('config files: unknown keys, bad syntax, non-objects and missing files are clear errors', () => {
  const known = ['cgroup'];
  assert.throws(() => loadConfigFile(write('c.yaml', 'cgroupp: /x\n'), known), /unknown option "cgroupp"/);
  assert.throws(() => loadConfigFile(write('d.json', '{"cgroup": '), known), /not valid JSON/);
  assert.throws(() => loadConfigFile(write('e.yaml', '- a\n- b\n'), known), /must hold an object/);
  assert.throws(() => loadConfigFile(path.join(tmp, 'nope.yaml'), known), ConfigFileError);
});

test('gearbox run validates config values with the options own rules; command line beats the file', () => {
  const bad = spawnSync(process.execPath, [CLI, 'run', '--config', write('f.yaml', 'idle-ms: soon\n')], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stdout + bad.stderr, /idleMs: --idle-ms must be a positive integer/);
  const choice = spawnSync(process.execPath, [CLI, 'run', '--config', write('g.yaml', 'service-name-from: dns\n')], { encoding: 'utf8' });
  assert.equal(choice.status, 1);
  assert.match(choice.stdout + choice.stderr, /serviceNameFrom: Allowed choices are env, comm, cgroup/);
  // The file's bad cgroup is overridden by the command line's (missing) one: the error names the command line's.
  const over = spawnSync(
    process.execPath,
    [CLI, 'run', '--config', write('h.yaml', 'cgroup: /from/file\n'), '--cgroup', '/sys/fs/cgroup/unified/gearbox-from-cli'],
    { encoding: 'utf8' },
  );
  assert.equal(over.status, 1);
  assert.match(over.stdout + over.stderr, /gearbox-from-cli does not exist/);
});

test('service.name from a cgroup path', () => {
  assert.equal(serviceNameFromCgroup('0::/system.slice/nginx.service\n'), 'nginx');
  assert.equal(serviceNameFromCgroup('0::/kubepods.slice/kubepods-pod12.slice/cri-containerd-abc123.scope\n'), 'abc123');
  assert.equal(serviceNameFromCgroup('12:cpu:/x\n0::/gearbox-test/h2\n'), 'h2');
  assert.equal(serviceNameFromCgroup('0::/\n'), undefined);
  assert.equal(serviceNameFromCgroup(undefined), undefined);
});
