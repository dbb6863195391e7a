/**
 * Entries in the agent's state maps, as the kernel counts them: one run of
 * the map-count iterator (bpf/map_counts.bpf.c), whose cost grows with the
 * number of BPF maps on the host, not with their entries. Walking a map key
 * by key costs a syscall per entry on the agent's only JavaScript thread
 * (seconds for full maps), during which the ring buffer is not drained.
 */
import koffi from 'koffi';
import { STRUCTS } from '../events/layout';
import { libbpf } from './libbpf';

export interface MapOccupancy {
  /** Entries now; -1 where the kernel cannot count them (before Linux 6.6). */
  entries: number;
  max: number;
}

/** `id` follows `type` at the start of struct bpf_map_info (include/uapi/linux/bpf.h, a stable ABI). */
const MAP_INFO_ID_OFFSET = 4;
/** Room for the whole struct bpf_map_info of any kernel; the kernel writes what it has and the size. */
const MAP_INFO_BYTES = 256;

/** The kernel id of the map open as `fd`. */
export function mapId(fd: number): number {
  const info = Buffer.alloc(MAP_INFO_BYTES);
  const len = [MAP_INFO_BYTES];
  if ((libbpf().bpf_obj_get_info_by_fd(fd, info, len) as number) !== 0) throw new Error(`cannot read the id of BPF map fd ${fd} (errno ${koffi.errno()})`);
  return info.readUInt32LE(MAP_INFO_ID_OFFSET);
}

/** Parses the iterator's output: entries by map id. */
export function parseMapCounts(out: Buffer): Map<number, number> {
  const { size, fields } = STRUCTS.gb_map_count;
  const counts = new Map<number, number>();
  for (let off = 0; off + size <= out.length; off += size) {
    counts.set(out.readUInt32LE(off + fields.map_id.offset), Number(out.readBigInt64LE(off + fields.entries.offset)));
  }
  return counts;
}

export class MapCounter {
  private readonly buf = Buffer.alloc(64 * 1024);
  private out = Buffer.alloc(64 * 1024);

  /**
   * @param linkFd the attached gb_map_counts iterator's link
   * @param maps the maps to report, by name: their fds and bounds
   */
  constructor(
    private readonly linkFd: number,
    private readonly maps: { name: string; fd: number; max: number }[],
  ) {}

  private readonly ids = new Map<string, number>();

  /** Entries of each map, by name (read whole in one iterator run). */
  read(): Record<string, MapOccupancy> {
    const counts = parseMapCounts(this.run());
    const result: Record<string, MapOccupancy> = {};
    for (const m of this.maps) {
      let id = this.ids.get(m.name);
      if (id === undefined) this.ids.set(m.name, (id = mapId(m.fd)));
      result[m.name] = { entries: counts.get(id) ?? -1, max: m.max };
    }
    return result;
  }

  /** One run of the iterator: a record per hash map on the host. */
  private run(): Buffer {
    const lib = libbpf();
    const fd = lib.bpf_iter_create(this.linkFd) as number;
    if (fd < 0) throw new Error(`cannot run the map-count iterator (errno ${koffi.errno()})`);
    let used = 0;
    try {
      for (;;) {
        const n = lib.read(fd, this.buf, this.buf.length) as number;
        if (n < 0) throw new Error(`cannot read the map-count iterator (errno ${koffi.errno()})`);
        if (n === 0) break;
        if (used + n > this.out.length) {
          const bigger = Buffer.alloc(2 * (used + n));
          this.out.copy(bigger, 0, 0, used);
          this.out = bigger;
        }
        this.buf.copy(this.out, used, 0, n);
        used += n;
      }
    } finally {
      lib.close(fd);
    }
    return this.out.subarray(0, used);
  }
}

/** The map-count iterator program, for KernelTracer to attach (its section). */
export const MAP_COUNT_SECTION = 'iter/bpf_map';
