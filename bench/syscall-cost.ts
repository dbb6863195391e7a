/**
 * Per-syscall added cost, measured side by side in one run: a C loop of small
 * writes and reads on (a) a TCP connection inside the traced cgroup (one
 * direction: after the first, every call continues one message; and
 * request/response: every call opens a message, as in HTTP), (b) a
 * pipe inside the traced cgroup, (c) a TCP connection in a cgroup outside the
 * scope, and (d) a syscall Gearbox does not watch (getppid) — untraced, and
 * traced with each way of hooking syscalls (--hooks raw, --hooks per-syscall),
 * in rotating order over several rounds. Prints medians and spreads; writes
 * bench/results.json.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchCgroups, buildSyscallLoop, median, requireRoot, saveResults, startAgent, stopAgent } from './bench-support';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CALLS = Number(process.env.BENCH_CALLS ?? 200_000);

const HOOKS = ['raw', 'per-syscall'] as const;

function runLoop(bin: string, cgroup: string, kind: 'tcp' | 'pingpong' | 'pipe' | 'getppid'): number {
  const r = spawnSync('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3" "$4"', 'sh', cgroup, bin, kind, String(CALLS)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`loop failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

async function main(): Promise<void> {
  requireRoot();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gearbox-bench-'));
  const bin = buildSyscallLoop(tmp);
  const cgroups = new BenchCgroups();
  const traced = cgroups.make('traced');
  const outside = cgroups.make('outside');
  const cases = [
    { id: 'tcp_in_scope', label: 'TCP write/read, traced cgroup', cg: traced, kind: 'tcp' as const },
    { id: 'tcp_request_response_in_scope', label: 'TCP request/response (every call opens a message), traced cgroup', cg: traced, kind: 'pingpong' as const },
    { id: 'pipe_in_scope', label: 'pipe write/read, traced cgroup', cg: traced, kind: 'pipe' as const },
    { id: 'tcp_out_of_scope', label: 'TCP write/read, other cgroup', cg: outside, kind: 'tcp' as const },
    { id: 'unwatched_syscall', label: 'getppid (not watched), other cgroup', cg: outside, kind: 'getppid' as const },
  ];
  const configs = ['off', ...HOOKS] as const;
  type Config = (typeof configs)[number];
  const samples: Record<string, Record<Config, number[]>> = Object.fromEntries(
    cases.map((c) => [c.id, Object.fromEntries(configs.map((k) => [k, [] as number[]])) as Record<Config, number[]>]),
  );
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate which comes first, so drift does not favour any of them.
      const order = configs.map((_, i) => configs[(i + r) % configs.length]);
      for (const config of order) {
        const agent = config === 'off' ? undefined : await startAgent(traced, ['--stats-interval-ms', '0', '--no-export', '--hooks', config]);
        for (const c of cases) samples[c.id][config].push(runLoop(bin, c.cg, c.kind));
        if (agent) await stopAgent(agent);
      }
    }
  } finally {
    cgroups.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const results = cases.map((c) => {
    const off = samples[c.id].off;
    const hooks = Object.fromEntries(
      HOOKS.map((h) => {
        const on = samples[c.id][h];
        const diffs = off.map((o, i) => on[i] - o);
        return [
          h,
          {
            tracedNsPerCall: median(on),
            addedNsPerCall: median(diffs),
            addedSpread: [Math.min(...diffs), Math.max(...diffs)],
            ratio: median(on) / median(off),
          },
        ];
      }),
    );
    return { case: c.id, label: c.label, untracedNsPerCall: median(off), hooks };
  });
  console.log(`per-syscall cost, ${ROUNDS} rounds x ${CALLS} call pairs, untraced and traced (each --hooks) side by side`);
  console.log('| case | untraced ns/call | ' + HOOKS.map((h) => `--hooks ${h}: added ns/call (median, min..max)`).join(' | ') + ' |');
  console.log('|---|---|' + HOOKS.map(() => '---').join('|') + '|');
  for (const r of results) {
    const cells = HOOKS.map((h) => {
      const x = r.hooks[h];
      return `${x.addedNsPerCall.toFixed(0)} (${x.addedSpread[0].toFixed(0)}..${x.addedSpread[1].toFixed(0)}), x${x.ratio.toFixed(2)}`;
    });
    console.log(`| ${r.label} | ${r.untracedNsPerCall.toFixed(0)} | ${cells.join(' | ')} |`);
  }
  saveResults('syscallCost', { rounds: ROUNDS, calls: CALLS, results });
}

main().catch((e) => {
  console.error(e.message ?? e);
  process.exitCode = 1;
});
