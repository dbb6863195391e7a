/** Resources of traced processes, also for processes gone before /proc is read. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEvent } from '../../src/events/decoder';
import { EV, EventType, PROC, STRUCTS } from '../../src/events/layout';
import { ProcessResources } from '../../src/resources/process-resources';
import { view } from '../support/event-builder';

function procRecord(pid: number, comm: string, env: string, args: string): Buffer {
  const b = Buffer.alloc(STRUCTS.gb_proc_event.size);
  b.writeUInt8(EventType.GB_EV_PROC, EV.type.offset);
  b.writeUInt32LE(pid, EV.pid.offset);
  b.write(comm, EV.comm.offset, 15, 'latin1');
  b.writeUInt32LE(env.length, PROC.env_len.offset);
  b.write(env, PROC.env.offset, 'latin1');
  b.writeUInt32LE(args.length, PROC.args_len.offset);
  b.write(args, PROC.args.offset, 'latin1');
  return b;
}

test('a process that has already exited is named from what the kernel sent (GB_EV_PROC)', () => {
  const pid = 4_000_000; // above pid_max: no /proc entry
  const ev = decodeEvent(...view(procRecord(pid, 'curl', 'HOME=/root\0OTEL_SERVICE_NAME=checkout\0PATH=/bin\0', 'curl\0-s\0http://x/\0')));
  assert.equal(ev.type, EventType.GB_EV_PROC);
  assert.equal(ev.comm, 'curl');
  const r = new ProcessResources({ 'host.name': 'h9' });
  r.learn(pid, { comm: ev.comm ?? '', env: ev.proc!.env, args: ev.proc!.args });
  const attrs = r.get(pid).attributes;
  assert.equal(attrs['service.name'], 'checkout');
  assert.equal(attrs['process.command_line'], 'curl -s http://x/');
  assert.equal(attrs['process.executable.name'], 'curl');
  assert.equal(attrs['process.pid'], pid);
  assert.equal(attrs['host.name'], 'h9');
});

test('without OTEL_SERVICE_NAME the process name is the service name; comm mode ignores the variable', () => {
  const pid = 4_000_001;
  const rec = decodeEvent(...view(procRecord(pid, 'worker', 'OTEL_SERVICE_NAME=billing\0', 'worker\0')));
  const byComm = new ProcessResources({}, 'comm');
  byComm.learn(pid, { comm: rec.comm ?? '', env: rec.proc!.env, args: rec.proc!.args });
  assert.equal(byComm.get(pid).attributes['service.name'], 'worker');
  const plain = decodeEvent(...view(procRecord(pid + 1, 'worker', 'HOME=/\0', 'worker\0')));
  const byEnv = new ProcessResources();
  byEnv.learn(pid + 1, { comm: plain.comm ?? '', env: plain.proc!.env, args: plain.proc!.args });
  assert.equal(byEnv.get(pid + 1).attributes['service.name'], 'worker');
});

test('the live agent process itself resolves from /proc', () => {
  const r = new ProcessResources();
  r.observe(process.pid, 'node');
  assert.equal(r.get(process.pid).attributes['process.executable.name'], 'node');
});

test('Kubernetes: pod uid and container id from the cgroup, workload name from the pod name', async () => {
  const { kubernetesFromCgroup, workloadFromPodName } = await import('../../src/resources/process-resources');
  const cid = 'a'.repeat(64);
  assert.deepEqual(
    kubernetesFromCgroup(
      `0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f60_7182_93a4_b5c6d7e8f901.slice/cri-containerd-${cid}.scope\n`,
    ),
    { podUid: '1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901', containerId: cid },
  );
  assert.deepEqual(kubernetesFromCgroup(`0::/kubepods/besteffort/pod0a1b2c3d-0000-1111-2222-333344445555/${cid}\n`), {
    podUid: '0a1b2c3d-0000-1111-2222-333344445555',
    containerId: cid,
  });
  assert.equal(kubernetesFromCgroup('0::/system.slice/sshd.service\n'), undefined);
  assert.equal(workloadFromPodName('checkout-7d9f8b6c5d-x2k9p'), 'checkout');
  assert.equal(workloadFromPodName('redis-0'), 'redis');
  assert.equal(workloadFromPodName('node-exporter-abcde'), 'node-exporter');
});
