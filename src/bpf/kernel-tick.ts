/**
 * The kernel's tick length in ns (1e9 / CONFIG_HZ), which the BPF programs
 * use to time pauses between messages with the tick count instead of a
 * clock-source read. Read from the kernel's config, where libbpf looks for
 * it too: /boot/config-$(uname -r), else /proc/config.gz. 0 when neither
 * exists or neither says: the programs then read the exact clock.
 */
import fs from 'node:fs';
import os from 'node:os';
import zlib from 'node:zlib';

export function kernelTickNs(files = [`/boot/config-${os.release()}`, '/proc/config.gz']): number {
  for (const file of files) {
    let text: string;
    try {
      const raw = fs.readFileSync(file);
      text = (raw[0] === 0x1f && raw[1] === 0x8b ? zlib.gunzipSync(raw) : raw).toString('latin1');
    } catch {
      continue;
    }
    const hz = Number(/^CONFIG_HZ=(\d+)$/m.exec(text)?.[1]);
    if (hz >= 24 && hz <= 10_000) return Math.round(1e9 / hz);
  }
  return 0;
}
