/**
 * A lab of "hosts" for the demo and the end-to-end tests: network namespaces joined by veth to
 * a bridge in a switch namespace of their own, each with its own child
 * cgroup. Processes are put into the host's cgroup before they exec into its
 * namespace. Everything the lab creates is removed by destroy(), which also
 * runs on process exit so a failing test leaves nothing behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';

export interface Host {
  name: string;
  ns: string;
  ip: string;
  cgroup: string;
}

export const CGROUP2_ROOT = '/sys/fs/cgroup/unified';

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Fails loudly (never skips) when the machine cannot run real-BPF tests. */
export function requireRootLab(): void {
  if (process.getuid?.() !== 0) throw new Error('end-to-end tests need root (BPF, network namespaces, cgroups): run them as root');
  if (!fs.existsSync(path.join(CGROUP2_ROOT, 'cgroup.procs'))) throw new Error(`cgroup v2 is not mounted at ${CGROUP2_ROOT}`);
  if (!fs.existsSync('/sys/kernel/btf/vmlinux')) throw new Error('the kernel has no BTF (/sys/kernel/btf/vmlinux)');
}

export class Lab {
  readonly id = `gbx${crypto.randomBytes(2).toString('hex')}`;
  readonly hosts: Host[] = [];
  readonly cgroupRoot: string;
  private readonly children: ChildProcess[] = [];
  private readonly switchNs: string;
  private destroyed = false;
  private readonly onExit = () => this.destroySync();

  constructor(readonly logDir: string) {
    this.cgroupRoot = path.join(CGROUP2_ROOT, `gearbox-test-${this.id}`);
    this.switchNs = `${this.id}-sw`;
    fs.rmSync(logDir, { recursive: true, force: true }); // nothing stale from an earlier run
    fs.mkdirSync(logDir, { recursive: true });
    process.on('exit', this.onExit);
  }

  /** Creates `count` hosts h1..hN at 10.231.0.1..N. */
  create(count: number): Host[] {
    fs.mkdirSync(this.cgroupRoot);
    sh('ip', ['netns', 'add', this.switchNs]);
    sh('ip', ['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    sh('ip', ['-n', this.switchNs, 'link', 'set', 'br0', 'up']);
    for (let i = 1; i <= count; i++) {
      const name = `h${i}`;
      const ns = `${this.id}-${name}`;
      const ip = `10.231.0.${i}`;
      const cgroup = path.join(this.cgroupRoot, name);
      fs.mkdirSync(cgroup);
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', this.switchNs]);
      sh('ip', ['-n', this.switchNs, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
      sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      this.hosts.push({ name, ns, ip, cgroup });
    }
    return this.hosts;
  }

  /** Starts `cmd` inside `host`: in its cgroup first, then in its namespace. */
  spawnIn(host: Host, label: string, cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    const script = 'cg=$1; ns=$2; shift 2; echo $$ > "$cg/cgroup.procs" && exec ip netns exec "$ns" "$@"';
    return this.track(label, spawn('sh', ['-c', script, 'sh', host.cgroup, host.ns, cmd, ...args], { env: { ...process.env, ...env } }));
  }

  /** Starts a process in the root namespace (e.g. an agent). */
  spawnRoot(label: string, cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    return this.track(label, spawn(cmd, args, { env: { ...process.env, ...env } }));
  }

  logOf(label: string): string {
    try {
      return fs.readFileSync(path.join(this.logDir, `${label}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  private track(label: string, child: ChildProcess): ChildProcess {
    const out = fs.createWriteStream(path.join(this.logDir, `${label}.log`));
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    this.children.push(child);
    return child;
  }

  /**
   * Resolves with the output so far when `pattern` appears in it, rejects on
   * exit or timeout. It sees only output written after it is called: wait
   * for several children at once, not one after the other.
   */
  static waitFor(child: ChildProcess, pattern: RegExp, timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output so far:\n${seen.slice(-2000)}`)), timeoutMs);
      const onData = (d: Buffer) => {
        seen += d.toString();
        if (pattern.test(seen)) done();
      };
      const onExit = (code: number | null) => done(new Error(`${what}: process exited (${code}) before ready; output:\n${seen.slice(-2000)}`));
      const done = (err?: Error) => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        if (err) reject(err);
        else resolve(seen);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
    });
  }

  /** Stops one child with `signal` and waits for it. */
  static async stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(t);
    return code;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await Promise.all(this.children.map((c) => Lab.stop(c, 'SIGTERM', 3000)));
    this.destroySync();
  }

  /** Synchronous cleanup: kills what is left in the lab's cgroups, removes namespaces and cgroups. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    process.off('exit', this.onExit);
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    for (const h of this.hosts) {
      try {
        fs.writeFileSync(path.join(h.cgroup, 'cgroup.kill'), '1');
      } catch {
        /* empty or gone */
      }
    }
    for (const ns of [...this.hosts.map((h) => h.ns), this.switchNs]) {
      try {
        sh('ip', ['netns', 'del', ns]);
      } catch {
        /* not created */
      }
    }
    const deadline = Date.now() + 5000;
    for (const dir of [...this.hosts.map((h) => h.cgroup), this.cgroupRoot]) {
      for (;;) {
        try {
          if (fs.existsSync(dir)) fs.rmdirSync(dir);
          break;
        } catch {
          if (Date.now() > deadline) break;
          execFileSync('sleep', ['0.05']);
        }
      }
    }
  }
}
