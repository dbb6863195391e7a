/**
 * What the side-by-side benchmarks share: a Gearbox agent started and stopped
 * around a measurement, child cgroups to put workloads in, medians, and the
 * one results file every benchmark adds its section to.
 */
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { which } from '../src/bpf/prerequisites';

export { cpuSeconds, minorFaults, rssMiB } from '../test/support/process-watch';

export const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const CG_ROOT = '/sys/fs/cgroup/unified';

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (BPF, cgroups)');
}

/** Commands a benchmark runs, found on PATH, or a clear error naming the package. */
export function requireCommands(...commands: string[]): void {
  const missing = commands.filter((c) => which(c) === undefined);
  if (missing.length)
    throw new Error(
      `the benchmark needs ${missing.join(', ')}: run scripts/setup.sh (or apt-get install ${missing.map((c) => (c === 'nginx' ? 'nginx-light' : c)).join(' ')})`,
    );
}

/**
 * Starts argv[0] with the rest as arguments in `cgroup` (the shell moves
 * itself there, then execs): stdout and stderr piped unless `stdio` says
 * otherwise.
 */
export function spawnInCgroup(cgroup: string, argv: string[], stdio: StdioOptions = ['ignore', 'pipe', 'pipe']): ChildProcess {
  return spawn('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', 'sh', cgroup, ...argv], { stdio });
}

/** bench/syscall-loop.c, compiled into `dir`; the binary's path. */
export function buildSyscallLoop(dir: string): string {
  const bin = path.join(dir, 'syscall-loop');
  execFileSync('clang', ['-O2', '-o', bin, path.join(ROOT, 'bench', 'syscall-loop.c')]);
  return bin;
}

/** A child cgroup tree for one benchmark run, removed by `remove()`. */
export class BenchCgroups {
  readonly base = path.join(CG_ROOT, `gearbox-bench-${crypto.randomBytes(2).toString('hex')}`);
  private readonly made: string[] = [];

  make(name: string): string {
    const dir = path.join(this.base, name);
    fs.mkdirSync(dir, { recursive: true });
    this.made.push(dir);
    return dir;
  }

  remove(): void {
    for (const d of [...this.made.reverse(), this.base]) {
      try {
        if (fs.existsSync(path.join(d, 'cgroup.kill'))) fs.writeFileSync(path.join(d, 'cgroup.kill'), '1');
      } catch {
        /* already empty */
      }
    }
    for (const d of [...this.made, this.base]) {
      for (let i = 0; i < 50; i++) {
        try {
          fs.rmdirSync(d);
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // processes still exiting
        }
      }
    }
  }
}

export interface RunningAgent {
  proc: ChildProcess;
  log: string[];
}

/** Agents this benchmark started: stopped whatever way the benchmark ends. */
const running = new Set<ChildProcess>();
const killAll = () => {
  for (const p of running) if (p.exitCode === null) p.kill('SIGTERM');
};
process.once('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

/** Starts `gearbox run` on `cgroup` and resolves once its programs are attached. */
export async function startAgent(cgroup: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunningAgent> {
  // BENCH_AGENT_NODE_FLAGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the agent.
  const nodeFlags = (process.env.BENCH_AGENT_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  // BENCH_AGENT_WRAP, e.g. "chrt -i 0" or "nice -n 19", runs the agent under another command.
  const [cmd, ...wrapArgs] = [...(process.env.BENCH_AGENT_WRAP ?? '').split(' ').filter(Boolean), process.execPath];
  const proc = spawn(cmd, [...wrapArgs, ...nodeFlags, CLI, 'run', '--cgroup', cgroup, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GEARBOX_LOG_LEVEL: 'info', ...env }, // the bench reads its log lines
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const log: string[] = [];
  // BENCH_AGENT_LOG=FILE appends every agent's log there.
  if (process.env.BENCH_AGENT_LOG) proc.stdout?.pipe(fs.createWriteStream(process.env.BENCH_AGENT_LOG, { flags: 'a' }));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => {
      proc.kill('SIGTERM');
      reject(new Error(`agent did not log "attached" within 20 s (is GEARBOX_LOG_LEVEL above info?): ${out}`));
    }, 20_000);
    proc.stdout?.on('data', (d) => {
      out += d;
      for (const line of String(d).split('\n')) if (line) log.push(line);
      if (out.includes('"msg":"attached"')) {
        clearTimeout(t);
        resolve();
      }
    });
    proc.stderr?.on('data', (d) => (out += d));
    proc.once('exit', (c) => {
      clearTimeout(t);
      reject(new Error(`agent exited ${c}: ${out}`));
    });
  });
  return { proc, log };
}

/**
 * Kernel time of the BPF programs a process holds, per program name, from
 * `bpftool prog show` (run_time_ns and run_cnt are counted only while the
 * sysctl kernel.bpf_stats_enabled is 1; see withBpfStats).
 */
export function bpfProgramTimes(pid: number): Map<string, { ns: number; runs: number }> {
  const ids = heldProgramIds(pid);
  const out = execFileSync('bpftool', ['-j', 'prog', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const times = new Map<string, { ns: number; runs: number }>();
  for (const p of JSON.parse(out) as { id: number; name?: string; run_time_ns?: number; run_cnt?: number }[]) {
    if (!ids.has(p.id)) continue;
    const name = p.name ?? String(p.id);
    const t = times.get(name) ?? { ns: 0, runs: 0 };
    t.ns += p.run_time_ns ?? 0;
    t.runs += p.run_cnt ?? 0;
    times.set(name, t);
  }
  return times;
}

/** Ids of the BPF programs process `pid` holds a descriptor of (/proc/PID/fdinfo: "prog_id:"). */
function heldProgramIds(pid: number): Set<number> {
  const ids = new Set<number>();
  const dir = `/proc/${pid}/fdinfo`;
  for (const fd of fs.readdirSync(dir)) {
    let info: string;
    try {
      info = fs.readFileSync(path.join(dir, fd), 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    const m = /^prog_id:\s+(\d+)/m.exec(info);
    if (m) ids.add(Number(m[1]));
  }
  return ids;
}

/** Turns the kernel's BPF run-time statistics on until the returned function is called (it restores the old value). */
export function withBpfStats(): () => void {
  const file = '/proc/sys/kernel/bpf_stats_enabled';
  const before = fs.readFileSync(file, 'utf8').trim();
  fs.writeFileSync(file, '1');
  return () => fs.writeFileSync(file, before);
}

export async function stopAgent(agent: RunningAgent): Promise<void> {
  if (agent.proc.exitCode !== null) return;
  agent.proc.kill('SIGTERM');
  await new Promise((r) => agent.proc.once('exit', r));
}

/**
 * Adds (replaces) one benchmark's section of bench/results.json. A run of
 * only some regimes (`partial`) replaces only theirs and keeps the others'
 * (each regime's entry says when it was measured).
 */
export function saveResults(section: string, value: unknown, partial = false): void {
  const file = path.join(ROOT, 'bench', 'results.json');
  const prev = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
  const kept = partial ? (prev[section] ?? {}) : {};
  fs.writeFileSync(
    file,
    JSON.stringify({ ...prev, [section]: { ...kept, date: new Date().toISOString(), commit: headCommit(), ...(value as object) } }, null, 2) + '\n',
  );
}

/** The checked-out commit (with "+changes" when the tree differs), for results; undefined outside a git checkout. */
function headCommit(): string | undefined {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return dirty ? `${sha}+changes` : sha;
  } catch {
    return undefined;
  }
}

/** The count-only OTLP receiver (bench/otlp-sink.ts) in a child process. */
export class OtlpSink {
  private constructor(
    private readonly proc: ChildProcess,
    readonly endpoint: string,
    private readonly lines: AsyncIterator<string>,
  ) {}

  static async start(): Promise<OtlpSink> {
    const proc = spawn(process.execPath, [path.join(__dirname, 'otlp-sink.js')], { stdio: ['pipe', 'pipe', 'inherit'] });
    const rl = (await import('node:readline')).createInterface({ input: proc.stdout! });
    const lines = rl[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error('the OTLP sink did not start');
    return new OtlpSink(proc, first.value, lines);
  }

  /** Spans received so far. */
  async count(): Promise<number> {
    this.proc.stdin!.write('count\n');
    const r = await this.lines.next();
    return Number(r.value);
  }

  async stop(): Promise<void> {
    this.proc.stdin!.end();
    await new Promise((r) => this.proc.once('exit', r));
  }
}
