/**
 * libbpf's messages: routed to the logger, and the last few kept, to be
 * shown when a load or an attach fails.
 */
import koffi from 'koffi';
import { libbpf, type Ptr } from './libbpf';
import type { Logger } from '../log';

let printCallback: unknown;
const libbpfLines: string[] = [];

/** Routes libbpf's messages into a buffer (shown on failure) and the logger. */
export function captureLibbpfLog(log: Logger): void {
  if (printCallback) return;
  const lib = libbpf();
  const buf = Buffer.alloc(4096);
  printCallback = koffi.register((level: number, fmt: string, args: Ptr) => {
    try {
      const n = lib.vsnprintf(buf, buf.length, fmt, args) as number;
      const line = buf
        .subarray(0, Math.max(0, Math.min(n, buf.length - 1)))
        .toString('utf8')
        .trimEnd();
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

/** The lines libbpf printed since the last clear (the last 400). */
export function recentLibbpfLines(): string[] {
  return libbpfLines;
}

export function clearLibbpfLines(): void {
  libbpfLines.length = 0;
}

/** Names of the programs libbpf reported it could not load (its "prog 'NAME': failed to load" lines). */
export function programsThatFailed(lines: string[]): string[] {
  return lines.flatMap((l) => [...l.matchAll(/prog '([^']+)': failed to load/g)].map((m) => m[1]));
}
