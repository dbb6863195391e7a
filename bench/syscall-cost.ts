/**
 * Per-syscall added cost, measured side by side in one run: a C loop of small
 * writes and reads on (a) a TCP connection inside the traced cgroup, (b) a
 * pipe inside the traced cgroup, (c) a TCP connection in a cgroup outside the
 * scope — each with and without a Gearbox agent attached, alternating, over
 * several rounds. Prints medians and spreads; writes bench/results.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchCgroups, ROOT, median, requireRoot, saveResults, startAgent, stopAgent } from './bench-support';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CALLS = Number(process.env.BENCH_CALLS ?? 200_000);

function runLoop(bin: string, cgroup: string, kind: 'tcp' | 'pipe'): number {
  const r = spawnSync('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2" "$3" "$4"', 'sh', cgroup, bin, kind, String(CALLS)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`loop failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

async function main(): Promise<void> {
  requireRoot();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gearbox-bench-'));
  const bin = path.join(tmp, 'syscall-loop');
  execFileSync('clang', ['-O2', '-o', bin, path.join(ROOT, 'bench', 'syscall-loop.c')]);
  const cgroups = new BenchCgroups();
  const traced = cgroups.make('traced');
  const outside = cgroups.make('outside');
  const cases = [
    { id: 'tcp_in_scope', label: 'TCP write/read, traced cgroup', cg: traced, kind: 'tcp' as const },
    { id: 'pipe_in_scope', label: 'pipe write/read, traced cgroup', cg: traced, kind: 'pipe' as const },
    { id: 'tcp_out_of_scope', label: 'TCP write/read, other cgroup', cg: outside, kind: 'tcp' as const },
  ];
  const samples: Record<string, { off: number[]; on: number[] }> = Object.fromEntries(cases.map((c) => [c.id, { off: [], on: [] }]));
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which comes first, so drift does not favour either side.
      for (const traceFirst of r % 2 === 0 ? [false, true] : [true, false]) {
        const agent = traceFirst ? await startAgent(traced, ['--stats-interval-ms', '0', '--no-export']) : undefined;
        for (const c of cases) samples[c.id][traceFirst ? 'on' : 'off'].push(runLoop(bin, c.cg, c.kind));
        if (agent) await stopAgent(agent);
      }
    }
  } finally {
    cgroups.remove();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const results = cases.map((c) => {
    const { off, on } = samples[c.id];
    const diffs = off.map((o, i) => on[i] - o);
    return {
      case: c.id,
      label: c.label,
      untracedNsPerCall: median(off),
      tracedNsPerCall: median(on),
      addedNsPerCall: median(diffs),
      addedSpread: [Math.min(...diffs), Math.max(...diffs)],
      ratio: median(on) / median(off),
    };
  });
  console.log(`per-syscall cost, ${ROUNDS} rounds x ${CALLS} write+read pairs, traced vs untraced side by side`);
  console.log('| case | untraced ns/call | traced ns/call | added ns/call (median, min..max) | ratio |');
  console.log('|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.label} | ${r.untracedNsPerCall.toFixed(0)} | ${r.tracedNsPerCall.toFixed(0)} | ${r.addedNsPerCall.toFixed(0)} (${r.addedSpread[0].toFixed(0)}..${r.addedSpread[1].toFixed(0)}) | ${r.ratio.toFixed(3)} |`);
  }
  saveResults('syscallCost', { rounds: ROUNDS, calls: CALLS, results });
}

main().catch((e) => {
  console.error(e.message ?? e);
  process.exitCode = 1;
});
