/**
 * Opens, configures, loads and attaches bpf/.output/gearbox.bpf.o. Every
 * attachment is a BPF link owned by this process, so a crashed or killed
 * agent leaves nothing attached. sockops is attached to the scope cgroup only.
 */
import fs from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { CFG, COUNTER_NAMES, RODATA, STRUCTS } from '../events/layout';
import { kernelTickNs } from './kernel-tick';
import { libbpf, type Ptr } from './libbpf';
import { withSignalsHeld } from './signals-held';
import { cgroup2Root } from './prerequisites';
import type { PeerPrefix } from './trusted-peers';
import { RingBufferReader } from './ring-buffer';
import type { Logger } from '../log';
import { hookSetOf, type HookChoice, type HookSet } from './hooks';
import { MAP_COUNT_SECTION, MapCounter, type MapOccupancy } from './map-counts';
import { captureLibbpfLog, clearLibbpfLines, programsThatFailed, recentLibbpfLines } from './libbpf-log';
import { netNamespacesOf, runIteratorInEachNamespace } from './existing-connections';

export { netNamespacesOf } from './existing-connections';

export interface KernelTracerOptions {
  objectPath: string;
  /** cgroup v2 directory to trace (and to attach sockops to). */
  cgroupPath: string;
  /** Trace only tasks under cgroupPath (false: every task on the host). */
  filterCgroup: boolean;
  /** Process names (comm) never traced. */
  excludeComms: string[];
  /** Networks whose propagated context is believed (undefined: every peer). */
  trustPeers?: PeerPrefix[];
  idleMs: number;
  /** The kernel's tick in ns, for timing pauses (default: from the kernel config; 0: time them with the exact clock). */
  tickNs?: number;
  /** Taken off the kernel's CLOCK_TAI stamps of events (WallClock.baseNs), so that they are small. */
  stampBaseNs: bigint;
  /** Probability that a root span is sampled, 0..1. */
  sampleRatio: number;
  ringBufferBytes: number;
  hooks: HookChoice;
  log: Logger;
}

/** Maps whose entries come and go with connections, threads and processes. */
export const STATE_MAPS = ['conn_map', 'flow_context_map', 'peer_context_map', 'connect_ctx_map', 'thread_state_map', 'pending_map', 'seen_process_map'];

export class KernelTracerError extends Error {}

/** The kernel refused to load or attach a program of the requested hook set (what `--hooks auto` falls back on). */
export class HookSetRefusedError extends KernelTracerError {}

/** Where the compiled object lives, for a checkout and for an installed package. */
export function defaultObjectPath(): string {
  return path.resolve(__dirname, '..', '..', '..', 'bpf', '.output', 'gearbox.bpf.o');
}

/** net.ipv4.ip_local_port_range of the agent's namespace (Linux default 32768-60999). */
function ephemeralPortRange(): [number, number] {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo && hi < 65536) return [lo, hi];
  } catch {
    /* default below */
  }
  return [32768, 60999];
}

export class KernelTracer {
  private obj: Ptr | null = null;
  private links: Ptr[] = [];
  private cgroupFd = -1;
  private reader?: RingBufferReader;
  private countersFd = -1;
  private rootSamplingFd = -1;
  private rootCapFd = -1;
  private mapCounter?: MapCounter;
  private readonly ncpu: number;
  /** The hook set in use once started. */
  hooks?: HookSet;

  constructor(private readonly opts: KernelTracerOptions) {
    captureLibbpfLog(opts.log);
    this.ncpu = libbpf().libbpf_num_possible_cpus() as number;
  }

  /** Opens, configures and loads the object, then attaches every program. */
  start(): void {
    const { hooks, objectPath, log } = this.opts;
    if (!fs.existsSync(objectPath)) {
      throw new KernelTracerError(`BPF object ${objectPath} not found: run \`npm run build\` first`);
    }
    if (hooks !== 'auto') return this.startWith(hooks);
    try {
      this.startWith('raw');
    } catch (e) {
      if (!(e instanceof HookSetRefusedError)) throw e; // anything else would fail the same way again
      log.warn({ reason: e.message.split('\n')[0] }, 'raw syscall hooks refused: using per-syscall tracepoints');
      this.startWith('per-syscall');
    }
  }

  private startWith(hooks: HookSet): void {
    const lib = libbpf();
    const { objectPath, log } = this.opts;
    clearLibbpfLines();
    this.obj = lib.bpf_object__open_file(objectPath, null) as Ptr | null;
    if (!this.obj) throw new KernelTracerError(`cannot open ${objectPath} (errno ${koffi.errno()}): ${recentLibbpfLines().slice(-5).join(' | ')}`);
    for (const p of this.programs()) {
      const set = hookSetOf(lib.bpf_program__section_name(p) as string);
      if (set && set !== hooks) lib.bpf_program__set_autoload(p, false);
    }
    this.configure();
    if ((withSignalsHeld(() => lib.bpf_object__load(this.obj)) as number) !== 0) {
      const errno = koffi.errno();
      const detail = recentLibbpfLines().slice(-25).join('\n');
      const hookSetFailed = programsThatFailed(recentLibbpfLines()).some((name) => this.hookSetOfProgram(name) === hooks);
      this.stop();
      const Refusal = hookSetFailed ? HookSetRefusedError : KernelTracerError;
      throw new Refusal(`the kernel refused the BPF programs (${hooks} hooks, errno ${errno}):\n${detail}`);
    }
    try {
      this.cgroupFd = fs.openSync(this.opts.cgroupPath, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      if (this.opts.filterCgroup) this.setScopeCgroup();
      this.setExcludedComms();
      this.setTrustedPeers();
      this.rootSamplingFd = lib.bpf_map__fd(this.map('root_sampling')) as number;
      this.rootCapFd = lib.bpf_map__fd(this.map('root_cap')) as number;
      this.setRootSampling(this.opts.sampleRatio);
      this.attachAll();
      this.attachMapCounter();
      this.enableExistingConnections();
      const events = this.map('events');
      this.reader = new RingBufferReader(lib.bpf_map__fd(events) as number, lib.bpf_map__max_entries(events) as number);
      this.countersFd = lib.bpf_map__fd(this.map('counters')) as number;
    } catch (e) {
      this.stop();
      throw e;
    }
    this.hooks = hooks;
    log.debug({ links: this.links.length, hooks }, 'BPF programs attached');
  }

  get ring(): RingBufferReader {
    if (!this.reader) throw new Error('KernelTracer not started');
    return this.reader;
  }

  /**
   * Probability, 0..1, that a new trace (a root span on this host) is
   * sampled; takes effect for the next root span. Downstream hosts follow
   * the decision carried in the option.
   */
  setRootSampling(ratio: number): void {
    const threshold = Buffer.alloc(8);
    threshold.writeBigUInt64LE(BigInt(Math.round(Math.min(1, Math.max(0, ratio)) * 2 ** 32)));
    setOnlyEntry(this.rootSamplingFd, threshold, 'the root sampling ratio');
  }

  /**
   * At most `perSecond` new sampled traces a second on this host, in bursts
   * of at most `burst` (0: no cap); on top of the ratio.
   */
  setRootCap(perSecond: number, burst: number): void {
    const { size, fields } = STRUCTS.gb_root_cap;
    const value = Buffer.alloc(size);
    value.writeBigUInt64LE(BigInt(Math.max(0, Math.round(perSecond))), fields.per_second.offset);
    value.writeBigUInt64LE(BigInt(Math.max(1, Math.round(burst))), fields.burst.offset);
    setOnlyEntry(this.rootCapFd, value, 'the cap on new traces');
  }

  /** Sums the per-CPU counters map. */
  counters(): Record<string, number> {
    const lib = libbpf();
    const out: Record<string, number> = {};
    if (this.countersFd < 0) return out;
    const key = Buffer.alloc(4);
    const val = Buffer.alloc(8 * this.ncpu);
    COUNTER_NAMES.forEach((name, idx) => {
      key.writeUInt32LE(idx, 0);
      let sum = 0;
      if ((lib.bpf_map_lookup_elem(this.countersFd, key, val) as number) === 0) {
        for (let c = 0; c < this.ncpu; c++) sum += Number(val.readBigUInt64LE(c * 8));
      }
      out[name] = sum;
    });
    return out;
  }

  /** Detaches everything and frees the object. Safe to call twice. */
  stop(): void {
    const lib = libbpf();
    this.reader?.close();
    this.reader = undefined;
    for (const link of this.links) lib.bpf_link__destroy(link);
    this.links = [];
    if (this.obj) lib.bpf_object__close(this.obj);
    this.obj = null;
    this.countersFd = -1;
    this.rootSamplingFd = -1;
    this.rootCapFd = -1;
    this.mapCounter = undefined;
    if (this.cgroupFd >= 0) fs.closeSync(this.cgroupFd);
    this.cgroupFd = -1;
  }

  /**
   * Runs the TCP socket iterator once in every network namespace the traced
   * processes live in: connections that were open before the agent get the
   * header-option callbacks new connections get from sockops. An iterator
   * sees the sockets of the namespace it is created in, so the agent's main
   * thread enters each namespace in turn (setns) and comes back.
   * Best effort: where this fails, new connections are still traced.
   */
  private enableExistingConnections(): void {
    const lib = libbpf();
    const prog = [...this.programs()].find((p) => (lib.bpf_program__section_name(p) as string) === 'iter/tcp');
    if (!prog) return;
    const link = lib.bpf_program__attach(prog) as Ptr | null;
    if (!link) {
      this.opts.log.warn({ errno: koffi.errno() }, 'cannot iterate existing TCP connections; only new ones carry context');
      return;
    }
    try {
      runIteratorInEachNamespace(lib.bpf_link__fd(link) as number, netNamespacesOf(this.opts.filterCgroup ? this.opts.cgroupPath : undefined));
    } finally {
      lib.bpf_link__destroy(link);
    }
  }

  /** The object's programs, in order. */
  private *programs(): Generator<Ptr> {
    const lib = libbpf();
    for (let p = lib.bpf_object__next_program(this.obj, null) as Ptr | null; p; p = lib.bpf_object__next_program(this.obj, p) as Ptr | null) yield p;
  }

  /** The hook set of the program called `name`, by its section. */
  private hookSetOfProgram(name: string): HookSet | undefined {
    const lib = libbpf();
    const p = [...this.programs()].find((q) => (lib.bpf_program__name(q) as string) === name);
    return p ? hookSetOf(lib.bpf_program__section_name(p) as string) : undefined;
  }

  /**
   * Entries in each map that holds per-connection, per-thread or per-process
   * state, beside its bound (max_entries): what a soak or a leak test
   * watches. As the kernel counts them (MapCounter): the same cost at any
   * occupancy.
   */
  mapOccupancy(): Record<string, MapOccupancy> {
    return this.mapCounter?.read() ?? {};
  }

  /** Attaches the map-count iterator (run on every mapOccupancy()). */
  private attachMapCounter(): void {
    const lib = libbpf();
    const prog = [...this.programs()].find((p) => (lib.bpf_program__section_name(p) as string) === MAP_COUNT_SECTION);
    if (!prog) throw new KernelTracerError(`the BPF object has no ${MAP_COUNT_SECTION} program`);
    const link = lib.bpf_program__attach(prog) as Ptr | null;
    if (!link) throw new KernelTracerError(`cannot attach the map-count iterator (errno ${koffi.errno()}): ${recentLibbpfLines().slice(-3).join(' | ')}`);
    this.links.push(link);
    const maps = STATE_MAPS.map((name) => {
      const m = this.map(name);
      return { name, fd: lib.bpf_map__fd(m) as number, max: lib.bpf_map__max_entries(m) as number };
    });
    this.mapCounter = new MapCounter(lib.bpf_link__fd(link) as number, maps);
    const unknown = Object.entries(this.mapCounter.read()).filter(([, m]) => m.entries < 0);
    if (unknown.length)
      this.opts.log.warn(
        { maps: unknown.map(([name]) => name) },
        'this kernel does not count map entries (Linux 6.6 and later do): map occupancy is reported as -1',
      );
  }

  private map(name: string): Ptr {
    const m = libbpf().bpf_object__find_map_by_name(this.obj, name) as Ptr | null;
    if (!m) throw new KernelTracerError(`map ${name} missing from the BPF object`);
    return m;
  }

  private configure(): void {
    const lib = libbpf();
    let rodata: Ptr | null = null;
    for (let m = lib.bpf_object__next_map(this.obj, null) as Ptr | null; m; m = lib.bpf_object__next_map(this.obj, m) as Ptr | null) {
      if ((lib.bpf_map__name(m) as string).endsWith('.rodata')) rodata = m;
    }
    if (!rodata) throw new KernelTracerError('the BPF object has no .rodata');
    const size = [0];
    const ptr = lib.bpf_map__initial_value(rodata, size) as Ptr | null;
    if (!ptr) throw new KernelTracerError('cannot map the .rodata initial value');
    const view = new DataView(koffi.view(ptr, size[0]) as ArrayBuffer);
    const base = RODATA.gb_cfg.offset;
    if (base + STRUCTS.gb_config.size > size[0]) throw new KernelTracerError('.rodata is smaller than gb_config');
    const setU64 = (off: number, v: bigint) => view.setBigUint64(base + off, v, true);
    view.setUint32(base + CFG.agent_tgid.offset, process.pid, true);
    view.setUint32(base + CFG.filter_cgroup.offset, this.opts.filterCgroup ? 1 : 0, true);
    setU64(CFG.idle_ns.offset, BigInt(Math.round(this.opts.idleMs * 1e6)));
    setU64(CFG.ns_per_tick.offset, BigInt(this.opts.tickNs ?? kernelTickNs()));
    setU64(CFG.stamp_base_ns.offset, this.opts.stampBaseNs);
    setU64(CFG.ringbuf_wakeup_bytes.offset, BigInt(Math.max(4096, Math.floor(this.opts.ringBufferBytes / 32))));
    // The scope's cgroup v2 id is its directory's inode; its level, the depth below the root.
    setU64(CFG.scope_cgroup_id.offset, fs.statSync(this.opts.cgroupPath, { bigint: true }).ino);
    const root = cgroup2Root() ?? '/sys/fs/cgroup';
    const rel = path.relative(root, path.resolve(this.opts.cgroupPath));
    view.setUint32(base + CFG.scope_cgroup_level.offset, rel === '' ? 0 : rel.split(path.sep).length, true);
    view.setUint32(base + CFG.exclude_comms.offset, this.opts.excludeComms.length, true);
    view.setUint32(base + CFG.trust_peers.offset, this.opts.trustPeers ? 1 : 0, true);
    const [lo, hi] = ephemeralPortRange();
    view.setUint16(base + CFG.ephemeral_lo.offset, lo, true);
    view.setUint16(base + CFG.ephemeral_hi.offset, hi, true);
    const rb = this.map('events');
    if ((lib.bpf_map__set_max_entries(rb, this.opts.ringBufferBytes) as number) !== 0) {
      throw new KernelTracerError(`invalid ring buffer size ${this.opts.ringBufferBytes}`);
    }
  }

  private setScopeCgroup(): void {
    const lib = libbpf();
    const key = Buffer.alloc(4);
    const val = Buffer.alloc(4);
    val.writeUInt32LE(this.cgroupFd, 0);
    if ((lib.bpf_map_update_elem(lib.bpf_map__fd(this.map('scope_cgroup')), key, val, 0n) as number) !== 0) {
      throw new KernelTracerError(`cannot scope tracing to ${this.opts.cgroupPath} (errno ${koffi.errno()})`);
    }
  }

  private setExcludedComms(): void {
    this.fillSet(
      'excluded_comm_map',
      'process names to exclude',
      this.opts.excludeComms.map((name) => {
        const key = Buffer.alloc(16);
        key.write(name.slice(0, 15), 'utf8');
        return { key, refusal: `cannot exclude process name ${name}` };
      }),
    );
  }

  private setTrustedPeers(): void {
    if (!this.opts.trustPeers) return;
    this.fillSet(
      'trusted_peer_map',
      'trusted networks',
      this.opts.trustPeers.map((p) => {
        const key = Buffer.alloc(STRUCTS.gb_peer_prefix.size);
        key.writeUInt32LE(p.prefixlen, STRUCTS.gb_peer_prefix.fields.prefixlen.offset);
        p.addr.copy(key, STRUCTS.gb_peer_prefix.fields.addr.offset);
        return { key, refusal: `cannot trust ${p.text}` };
      }),
    );
  }

  /**
   * Puts each key into the set-like map `name` (value 1); a refused key, or
   * one beyond the map's max_entries (a preallocated hash map would take a
   * few more), is an error.
   */
  private fillSet(name: string, what: string, entries: { key: Buffer; refusal: string }[]): void {
    const lib = libbpf();
    const map = this.map(name);
    const fd = lib.bpf_map__fd(map) as number;
    const max = lib.bpf_map__max_entries(map) as number;
    const one = Buffer.from([1]);
    for (const [i, e] of entries.entries()) {
      if (i >= max) throw new KernelTracerError(`${e.refusal}: at most ${max} ${what}`);
      if ((lib.bpf_map_update_elem(fd, e.key, one, 0n) as number) !== 0) throw new KernelTracerError(`${e.refusal} (errno ${koffi.errno()})`);
    }
  }

  private attachAll(): void {
    const lib = libbpf();
    for (const p of this.programs()) {
      const name = lib.bpf_program__name(p) as string;
      const section = lib.bpf_program__section_name(p) as string;
      if (section.startsWith('iter/')) continue; // run once, see enableExistingConnections
      if (!lib.bpf_program__autoload(p)) continue; // the other hook set
      const link = section === 'sockops' ? (lib.bpf_program__attach_cgroup(p, this.cgroupFd) as Ptr | null) : (lib.bpf_program__attach(p) as Ptr | null);
      if (!link) {
        const Refusal = hookSetOf(section) ? HookSetRefusedError : KernelTracerError;
        throw new Refusal(`cannot attach ${name} (${section}) (errno ${koffi.errno()}): ${recentLibbpfLines().slice(-3).join(' | ')}`);
      }
      this.links.push(link);
    }
  }
}

/** Writes the one entry of array map `fd` (a setting the agent changes while it runs, named `what`). */
function setOnlyEntry(fd: number, value: Buffer, what: string): void {
  if (fd < 0) throw new KernelTracerError(`${what} set before the BPF object was loaded`);
  if ((libbpf().bpf_map_update_elem(fd, Buffer.alloc(4), value, 0n) as number) !== 0) {
    throw new KernelTracerError(`cannot set ${what} (errno ${koffi.errno()})`);
  }
}
