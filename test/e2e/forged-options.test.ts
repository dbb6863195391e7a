/**
 * A hostile peer whose own BPF program writes malformed or forged Gearbox
 * options: the receiving host ignores each kind, counts it, never adopts a
 * context from it, and keeps tracing (every request a root server span).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { libbpf, type Ptr } from '../../src/bpf/libbpf';
import { serverAndClientLab, tracedRound } from '../support/agent-round';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const N = 5;
// The victim is env.server (the traced HTTP server); the attacker is env.client, whose own BPF program forges options.
const env = serverAndClientLab('forged-options', ROOT);

/** Compiles and attaches the forger to the attacker's cgroup; returns a detach function. */
function attachForger(mode: number): () => void {
  const obj = path.join(env.lab.logDir, `forger-${mode}.bpf.o`);
  execFileSync('clang', [
    '-O2',
    '-g',
    '-target',
    'bpf',
    '-D__TARGET_ARCH_x86',
    `-DFORGE_MODE=${mode}`,
    '-I',
    path.join(ROOT, 'bpf', '.output'),
    '-c',
    path.join(ROOT, 'test', 'bpf', 'forger.bpf.c'),
    '-o',
    obj,
  ]);
  const lib = libbpf();
  const o = lib.bpf_object__open_file(obj, null) as Ptr | null;
  assert.ok(o, 'cannot open the forger object');
  assert.equal(lib.bpf_object__load(o), 0, 'the kernel refused the forger');
  const prog = lib.bpf_object__next_program(o, null) as Ptr;
  const cg = fs.openSync(env.client.cgroup, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  const link = lib.bpf_program__attach_cgroup(prog, cg) as Ptr | null;
  fs.closeSync(cg);
  assert.ok(link, 'cannot attach the forger');
  return () => {
    lib.bpf_link__destroy(link);
    lib.bpf_object__close(o);
  };
}

const CASES: [number, string, (k: Record<string, number>) => boolean][] = [
  [1, 'our ExID with length 20', (k) => k.opt_bad_len >= N],
  [2, 'an unknown ExID', (k) => k.opt_bad_exid >= N],
  [3, 'all-zero trace and span ids', (k) => k.opt_zero_id >= N],
  // Mode 4 (an option on the SYN) is not asserted: a SYN's options never reach
  // the parse callback (the kernel saves the SYN instead), so nothing is adopted
  // from it, and counting it from the saved SYN is not yet shown to work.
  // A truncated option cannot come from a BPF peer: bpf_store_hdr_opt refuses
  // a length byte that is not the option's size (forger mode 5 proves nothing).
  [6, 'two options of our kind in one segment (other ExID, bad length)', (k) => k.opt_bad_exid >= N && k.opt_bad_len >= N],
];

for (const [mode, what, counted] of CASES) {
  test(`forged options: ${what} — ignored, counted, no context adopted`, async (t) => {
    const detach = attachForger(mode);
    try {
      const { kernel, spans } = await tracedRound({
        lab: env.lab,
        receiver: env.receiver,
        server: env.server,
        client: env.client,
        label: `mode-${mode}`,
        agentArgs: [],
        requests: N,
        mode: 'new',
      });
      const servers = spans.filter((s) => s.kind === 2);
      t.diagnostic(
        `mode ${mode}: ${JSON.stringify({ bad_len: kernel.opt_bad_len, bad_exid: kernel.opt_bad_exid, zero_id: kernel.opt_zero_id, bad_segment: kernel.opt_bad_segment, received: kernel.opt_received, adopted: kernel.ctx_adopted })}, ${servers.length} server spans`,
      );
      assert.ok(counted(kernel), `not counted: ${JSON.stringify(kernel)}`);
      assert.equal(kernel.opt_received, 0);
      assert.equal(kernel.ctx_adopted, 0);
      assert.equal(servers.length, N, 'the victim kept tracing');
      assert.ok(
        servers.every((s) => s.parentSpanId === '' && /^[0-9a-f]{32}$/.test(s.traceId) && !/^0+$/.test(s.traceId)),
        'a server span took a forged or malformed parent',
      );
    } finally {
      detach();
    }
  });
}
