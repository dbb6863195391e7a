/**
 * Opens, configures, loads and attaches bpf/.output/gearbox.bpf.o. Every
 * attachment is a BPF link owned by this process, so a crashed or killed
 * agent leaves nothing attached. sockops is attached to the scope cgroup only.
 */
import fs from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { CFG, COUNTER_NAMES, RODATA, STRUCTS } from '../events/layout';
import { libbpf, type Ptr } from './libbpf';
import { RingBufferReader } from './ring-buffer';
import type { Logger } from '../log';

export interface KernelTracerOptions {
  objectPath: string;
  /** cgroup v2 directory to trace (and to attach sockops to). */
  cgroupPath: string;
  /** Trace only tasks under cgroupPath (false: every task on the host). */
  filterCgroup: boolean;
  idleMs: number;
  /** Probability that a root span is sampled, 0..1. */
  sampleRatio: number;
  ringBufferBytes: number;
  log: Logger;
}

export class KernelTracerError extends Error {}

/** Where the compiled object lives, for a checkout and for an installed package. */
export function defaultObjectPath(): string {
  return path.resolve(__dirname, '..', '..', '..', 'bpf', '.output', 'gearbox.bpf.o');
}

let printCallback: unknown;
const libbpfLines: string[] = [];

/** Routes libbpf's messages into a buffer (shown on failure) and the logger. */
function captureLibbpfLog(log: Logger): void {
  if (printCallback) return;
  const lib = libbpf();
  const buf = Buffer.alloc(4096);
  printCallback = koffi.register((level: number, fmt: string, args: Ptr) => {
    try {
      const n = lib.vsnprintf(buf, buf.length, fmt, args) as number;
      const line = buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1))).toString('utf8').trimEnd();
      libbpfLines.push(line);
      if (libbpfLines.length > 400) libbpfLines.splice(0, libbpfLines.length - 400);
      if (level === 0) log.warn({ libbpf: line }, 'libbpf');
      else log.trace({ libbpf: line }, 'libbpf');
    } catch {
      /* never throw into C */
    }
    return 0;
  }, koffi.pointer(lib.printFn));
  lib.libbpf_set_print(printCallback);
}

export class KernelTracer {
  private obj: Ptr | null = null;
  private links: Ptr[] = [];
  private cgroupFd = -1;
  private reader?: RingBufferReader;
  private countersFd = -1;
  private readonly ncpu: number;

  constructor(private readonly opts: KernelTracerOptions) {
    captureLibbpfLog(opts.log);
    this.ncpu = libbpf().libbpf_num_possible_cpus() as number;
  }

  /** Opens, configures and loads the object, then attaches every program. */
  start(): void {
    const lib = libbpf();
    const { objectPath, log } = this.opts;
    if (!fs.existsSync(objectPath)) {
      throw new KernelTracerError(`BPF object ${objectPath} not found: run \`npm run build\` first`);
    }
    libbpfLines.length = 0;
    this.obj = lib.bpf_object__open_file(objectPath, null) as Ptr | null;
    if (!this.obj) throw new KernelTracerError(`cannot open ${objectPath} (errno ${koffi.errno()}): ${libbpfLines.slice(-5).join(' | ')}`);
    this.configure();
    if ((lib.bpf_object__load(this.obj) as number) !== 0) {
      const detail = libbpfLines.slice(-25).join('\n');
      this.stop();
      throw new KernelTracerError(`the kernel refused the BPF programs (errno ${koffi.errno()}):\n${detail}`);
    }
    try {
      this.cgroupFd = fs.openSync(this.opts.cgroupPath, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      if (this.opts.filterCgroup) this.setScopeCgroup();
      this.attachAll();
      const events = this.map('events');
      this.reader = new RingBufferReader(lib.bpf_map__fd(events) as number, lib.bpf_map__max_entries(events) as number);
      this.countersFd = lib.bpf_map__fd(this.map('counters')) as number;
    } catch (e) {
      this.stop();
      throw e;
    }
    log.debug({ links: this.links.length }, 'BPF programs attached');
  }

  get ring(): RingBufferReader {
    if (!this.reader) throw new Error('KernelTracer not started');
    return this.reader;
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
    if (this.cgroupFd >= 0) fs.closeSync(this.cgroupFd);
    this.cgroupFd = -1;
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
    const ratio = Math.min(1, Math.max(0, this.opts.sampleRatio));
    setU64(CFG.sample_threshold.offset, BigInt(Math.round(ratio * 2 ** 32)));
    setU64(CFG.ringbuf_wakeup_bytes.offset, BigInt(Math.max(4096, Math.floor(this.opts.ringBufferBytes / 32))));
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

  private attachAll(): void {
    const lib = libbpf();
    for (let p = lib.bpf_object__next_program(this.obj, null) as Ptr | null; p; p = lib.bpf_object__next_program(this.obj, p) as Ptr | null) {
      const name = lib.bpf_program__name(p) as string;
      const section = lib.bpf_program__section_name(p) as string;
      const link =
        section === 'sockops'
          ? (lib.bpf_program__attach_cgroup(p, this.cgroupFd) as Ptr | null)
          : (lib.bpf_program__attach(p) as Ptr | null);
      if (!link) {
        throw new KernelTracerError(`cannot attach ${name} (${section}) (errno ${koffi.errno()}): ${libbpfLines.slice(-3).join(' | ')}`);
      }
      this.links.push(link);
    }
  }
}
