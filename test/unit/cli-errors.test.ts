/** Bad input to `gearbox run` gets a clear error and a non-zero exit, before anything is loaded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { checkCgroupPath, PrerequisiteError, requireRunPrerequisites } from '../../src/bpf/prerequisites';
import { sampleRatioFromEnv, resourceAttributesFromEnv } from '../../src/cli/config';

const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');

/**
 * `gearbox ARGS`; `unprivileged`: with no capabilities. As root that is root
 * with its capability sets emptied (setpriv), which still reads a checkout
 * only root may enter, wherever it lies; not as root, it already is.
 */
function gearbox(args: string[], opts: { unprivileged?: boolean } = {}) {
  const argv = [process.execPath, CLI, ...args];
  if (opts.unprivileged && process.getuid?.() === 0) argv.unshift('setpriv', '--bounding-set=-all', '--inh-caps=-all', '--');
  return spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 20_000 });
}

test('a cgroup path that does not exist is refused with what to do', () => {
  const c = checkCgroupPath('/sys/fs/cgroup/unified/gearbox-no-such-cgroup');
  assert.equal(c.ok, false);
  assert.match(c.detail, /does not exist/);
  assert.match(c.fix ?? '', /mkdir/);
  assert.throws(() => requireRunPrerequisites('/sys/fs/cgroup/unified/gearbox-no-such-cgroup'), PrerequisiteError);
  const r = gearbox(['run', '--cgroup', '/sys/fs/cgroup/unified/gearbox-no-such-cgroup']);
  assert.equal(r.status, 1);
  assert.match(r.stdout + r.stderr, /cgroup path: .*does not exist/);
});

test('a directory that is not on the cgroup v2 mount is refused', () => {
  const c = checkCgroupPath('/tmp');
  assert.equal(c.ok, false);
  assert.match(c.detail, /not under the cgroup v2 mount/);
});

test('without the capabilities (not root, or root without them): refused with what it needs, nothing loaded', () => {
  const r = gearbox(['run', '--cgroup', '/sys/fs/cgroup/unified'], { unprivileged: true });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /privileges: (not root and|root, but) missing CAP_BPF/);
});

test('invalid options and sampler settings are refused clearly', () => {
  const r = gearbox(['run', '--idle-ms', 'soon']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--idle-ms must be a positive integer/);
  for (const bad of ['-1', 'half', '']) {
    const m = gearbox(['run', '--max-cpu', bad]);
    assert.notEqual(m.status, 0);
    assert.match(m.stderr, /--max-cpu must be a number >= 0/);
  }
  const h = gearbox(['run', '--hooks', 'kprobe']);
  assert.notEqual(h.status, 0);
  assert.match(h.stderr, /'--hooks <set>' argument 'kprobe' is invalid. Allowed choices are auto, raw, per-syscall/);
  assert.throws(() => sampleRatioFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }), /\[0, 1\]/);
  assert.throws(() => sampleRatioFromEnv({ OTEL_TRACES_SAMPLER: 'jaeger_remote' }), /not supported/);
  assert.equal(sampleRatioFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }), 0.25);
  assert.equal(sampleRatioFromEnv({}), 1);
  assert.deepEqual(resourceAttributesFromEnv({ OTEL_RESOURCE_ATTRIBUTES: 'host.name=h2,deployment.environment.name=prod%20eu, bad' }), {
    'host.name': 'h2',
    'deployment.environment.name': 'prod eu',
  });
});

test('gearbox doctor prints a table and fails when a requirement is missing', () => {
  const asRoot = gearbox(['doctor']);
  assert.match(asRoot.stdout, /privileges/);
  assert.match(asRoot.stdout, /BTF/);
  assert.match(asRoot.stdout, /libbpf/);
  if (process.getuid?.() === 0) assert.equal(asRoot.status, 0, asRoot.stdout);
  const notRoot = gearbox(['doctor'], { unprivileged: true });
  assert.equal(notRoot.status, 1);
  assert.match(notRoot.stdout, /FAIL\s+privileges/);
  assert.match(notRoot.stdout, /fix: run as root/);
});
