/**
 * Fills a running agent's state maps to their bounds, from outside: the LRU
 * hash maps among the agent's open BPF maps (/proc/PID/fdinfo gives each
 * one's type, sizes, bound and id) get max_entries made-up keys. The keys
 * are marked so that they cannot be a real connection, thread or process
 * (0xee bytes around a counter; thread and process ids above pid_max), so
 * the agent's tracing carries on beside them (LRU maps evict them as needed).
 */
import fs from 'node:fs';
import koffi from 'koffi';

const BPF_MAP_TYPE_LRU_HASH = 9;

export interface AgentMap {
  id: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

/** The LRU hash maps the process `pid` holds open. */
export function agentLruMaps(pid: number): AgentMap[] {
  const maps = new Map<number, AgentMap>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    let info: string;
    try {
      info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    if (field('map_type') !== BPF_MAP_TYPE_LRU_HASH) continue;
    maps.set(field('map_id'), { id: field('map_id'), keySize: field('key_size'), valueSize: field('value_size'), maxEntries: field('max_entries') });
  }
  return [...maps.values()];
}

let lib:
  { getFd: (id: number) => number; update: (fd: number, key: Buffer, value: Buffer, flags: bigint) => number; close: (fd: number) => number } | undefined;

function bind() {
  if (lib) return lib;
  const bpf = koffi.load('libbpf.so.1');
  const libc = koffi.load('libc.so.6');
  lib = {
    getFd: bpf.func('int bpf_map_get_fd_by_id(uint32_t id)'),
    update: bpf.func('int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)'),
    close: libc.func('int close(int fd)'),
  };
  return lib;
}

/** Puts max_entries made-up entries into the map; returns how many the kernel took. */
export function fillMap(m: AgentMap): number {
  const { getFd, update, close } = bind();
  const fd = getFd(m.id);
  if (fd < 0) throw new Error(`cannot open BPF map ${m.id} (errno ${koffi.errno()})`);
  const key = Buffer.alloc(m.keySize, 0xee);
  const value = Buffer.alloc(m.valueSize);
  let taken = 0;
  try {
    for (let i = 0; i < m.maxEntries; i++) {
      // Above any pid_max (2^22): no real thread or process has these ids.
      key.writeUInt32LE((0x4000_0000 + i) >>> 0, 0);
      if (update(fd, key, value, 0n) === 0) taken++;
    }
  } finally {
    close(fd);
  }
  return taken;
}
