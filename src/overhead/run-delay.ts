/**
 * How long the calling thread has waited, ready to run, for a CPU since it
 * started: the second field of /proc/thread-self/schedstat (run_delay, in
 * ns). The CPU budget tells a starved agent (it would work if it could get a
 * CPU) from one whose exporter is slow. Undefined where the kernel does not
 * keep scheduler statistics (no CONFIG_SCHED_INFO).
 */
import fs from 'node:fs';

export function runDelayMicros(file = '/proc/thread-self/schedstat'): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const ns = Number(text.split(' ')[1]);
  return Number.isFinite(ns) ? ns / 1000 : undefined;
}
