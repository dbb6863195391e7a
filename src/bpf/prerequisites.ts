/**
 * What the kernel and the machine must offer before anything is loaded, each
 * with a message that says what to do. Used by `gearbox run` (fails fast) and
 * by `gearbox doctor` (prints them all).
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

export class PrerequisiteError extends Error {
  constructor(readonly failed: Check[]) {
    super(failed.map((c) => `${c.name}: ${c.detail}${c.fix ? ` (fix: ${c.fix})` : ''}`).join('; '));
  }
}

const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;
const CAP_PERFMON = 38;
const CAP_BPF = 39;

function effectiveCaps(): bigint {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  const m = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
  return m ? BigInt(`0x${m[1]}`) : 0n;
}

function hasCap(caps: bigint, cap: number): boolean {
  return (caps & (1n << BigInt(cap))) !== 0n;
}

/**
 * What the kernel checks is the effective capability set, not the user id:
 * root in a container whose capabilities were dropped cannot load BPF
 * either, and is refused here the same way.
 */
export function checkPrivileges(): Check {
  const caps = effectiveCaps();
  const ok = hasCap(caps, CAP_SYS_ADMIN) || (hasCap(caps, CAP_BPF) && hasCap(caps, CAP_PERFMON) && hasCap(caps, CAP_NET_ADMIN));
  return {
    name: 'privileges',
    ok,
    detail: ok
      ? 'root or CAP_BPF+CAP_PERFMON+CAP_NET_ADMIN'
      : `${process.getuid?.() === 0 ? 'root, but' : 'not root and'} missing CAP_BPF, CAP_PERFMON or CAP_NET_ADMIN`,
    fix: ok ? undefined : 'run as root (sudo gearbox …) or grant cap_bpf,cap_perfmon,cap_net_admin',
  };
}

export function checkKernelVersion(): Check {
  const release = fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const [maj, min] = release.split('.').map((x) => parseInt(x, 10));
  // 5.10: TCP header options from BPF; 6.2: bpf_rdonly_cast (typed kernel reads in tracepoints).
  const ok = maj > 6 || (maj === 6 && min >= 2);
  return {
    name: 'kernel',
    ok,
    detail: `${release}${ok ? '' : ' is older than 6.2 (Gearbox needs TCP header options from BPF, 5.10, and bpf_rdonly_cast, 6.2)'}`,
    fix: ok ? undefined : 'use a kernel >= 6.2',
  };
}

export function checkBtf(): Check {
  const ok = fs.existsSync('/sys/kernel/btf/vmlinux');
  return {
    name: 'BTF',
    ok,
    detail: ok ? '/sys/kernel/btf/vmlinux' : 'the kernel exposes no BTF at /sys/kernel/btf/vmlinux',
    fix: ok ? undefined : 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y',
  };
}

/** Mount points of a filesystem type, from /proc/self/mounts. */
export function mountsOf(fstype: string): string[] {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[2] === fstype)
    .map((f) => f[1]);
}

export function cgroup2Root(): string | undefined {
  const mounts = mountsOf('cgroup2');
  return mounts.find((m) => m === '/sys/fs/cgroup') ?? mounts.find((m) => m === '/sys/fs/cgroup/unified') ?? mounts[0];
}

export function checkCgroup2(): Check {
  const root = cgroup2Root();
  return {
    name: 'cgroup v2',
    ok: root !== undefined,
    detail: root ? `mounted at ${root}` : 'no cgroup2 filesystem is mounted',
    fix: root ? undefined : 'mount -t cgroup2 none /sys/fs/cgroup/unified',
  };
}

/** The cgroup path the agent will scope to: must be a directory on a cgroup2 mount. */
export function checkCgroupPath(cgroupPath: string): Check {
  const root = cgroup2Root();
  const abs = path.resolve(cgroupPath);
  if (!root) return { name: 'cgroup path', ok: false, detail: 'no cgroup2 mount', fix: 'mount cgroup v2 first' };
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) {
    return { name: 'cgroup path', ok: false, detail: `${abs} does not exist`, fix: `create it (mkdir ${abs}) or pass an existing cgroup v2 directory` };
  }
  const rel = path.relative(root, abs);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    return { name: 'cgroup path', ok: false, detail: `${abs} is not under the cgroup v2 mount ${root}`, fix: `pass a directory under ${root}` };
  }
  return { name: 'cgroup path', ok: true, detail: abs };
}

function tracefsMounted(): boolean {
  return mountsOf('tracefs').length > 0 || fs.existsSync('/sys/kernel/tracing/events/syscalls');
}

/** libbpf reads tracepoint ids from tracefs; mount it when we may. */
export function ensureTracefs(): Check {
  if (!tracefsMounted() && process.getuid?.() === 0) {
    try {
      execFileSync('mount', ['-t', 'tracefs', 'tracefs', '/sys/kernel/tracing'], { stdio: 'ignore' });
    } catch {
      /* reported below */
    }
  }
  const ok = tracefsMounted();
  return {
    name: 'tracefs',
    ok,
    detail: ok ? '/sys/kernel/tracing' : 'tracefs is not mounted',
    fix: ok ? undefined : 'mount -t tracefs tracefs /sys/kernel/tracing',
  };
}

export function checkLibbpf(): Check {
  const candidates = ['/usr/lib/x86_64-linux-gnu/libbpf.so.1', '/usr/lib/aarch64-linux-gnu/libbpf.so.1', '/usr/lib64/libbpf.so.1', '/usr/lib/libbpf.so.1'];
  const found = candidates.find((p) => fs.existsSync(p));
  let ok = found !== undefined;
  if (!ok) {
    try {
      ok = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes('libbpf.so.1');
    } catch {
      ok = false;
    }
  }
  return {
    name: 'libbpf',
    ok,
    detail: ok ? (found ?? 'libbpf.so.1 (ldconfig)') : 'libbpf.so.1 not found',
    fix: ok ? undefined : 'apt-get install libbpf1',
  };
}

export function checkBpffs(): Check {
  const [mount] = mountsOf('bpf');
  const ok = mount !== undefined;
  return {
    name: 'bpffs',
    ok,
    detail: ok ? mount : 'no bpf filesystem is mounted (needed only to pin maps; Gearbox uses links)',
    fix: ok ? undefined : 'mount -t bpf bpf /sys/fs/bpf',
  };
}

/** The executable `cmd` on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir, cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** clang and bpftool are needed only to build the BPF object from source. */
export function checkBuildTools(objectPresent: boolean): Check {
  const clang = which('clang');
  const bpftool = which('bpftool') ?? (fs.existsSync('/usr/sbin/bpftool') ? '/usr/sbin/bpftool' : undefined);
  const ok = objectPresent || (clang !== undefined && bpftool !== undefined);
  return {
    name: 'build tools',
    ok,
    detail:
      clang && bpftool
        ? `${clang}, ${bpftool}`
        : objectPresent
          ? 'not installed (not needed: the BPF object is built)'
          : 'clang or bpftool missing and the BPF object is not built',
    fix: ok ? undefined : 'apt-get install clang llvm libbpf-dev bpftool, then npm run build',
  };
}

export function checkObject(objectPath: string): Check {
  const ok = fs.existsSync(objectPath);
  return { name: 'BPF object', ok, detail: ok ? objectPath : `${objectPath} is missing`, fix: ok ? undefined : 'npm run build' };
}

/** Every prerequisite, for `gearbox doctor`. Never throws. */
export function allChecks(objectPath: string): Check[] {
  const safe = (f: () => Check, name: string): Check => {
    try {
      return f();
    } catch (e) {
      return { name, ok: false, detail: (e as Error).message };
    }
  };
  const object = safe(() => checkObject(objectPath), 'BPF object');
  return [
    safe(checkPrivileges, 'privileges'),
    safe(checkKernelVersion, 'kernel'),
    safe(checkBtf, 'BTF'),
    safe(checkCgroup2, 'cgroup v2'),
    safe(checkBpffs, 'bpffs'),
    safe(
      () => ({
        name: 'tracefs',
        ok: tracefsMounted(),
        detail: tracefsMounted() ? '/sys/kernel/tracing' : 'tracefs is not mounted',
        fix: tracefsMounted() ? undefined : 'mount -t tracefs tracefs /sys/kernel/tracing',
      }),
      'tracefs',
    ),
    safe(checkLibbpf, 'libbpf'),
    object,
    safe(() => checkBuildTools(object.ok), 'build tools'),
  ];
}

/** Everything `gearbox run` needs; throws PrerequisiteError listing every failure. */
export function requireRunPrerequisites(cgroupPath: string): Check[] {
  const checks = [checkPrivileges(), checkKernelVersion(), checkBtf(), checkCgroup2(), checkCgroupPath(cgroupPath), checkLibbpf()];
  if (checks[0].ok) checks.push(ensureTracefs());
  const failed = checks.filter((c) => !c.ok);
  if (failed.length > 0) throw new PrerequisiteError(failed);
  return checks;
}
