/**
 * Converts kernel timestamps (CLOCK_MONOTONIC, ns) to wall-clock OTel HrTime.
 * The offset is read with clock_gettime bracketed by two monotonic reads,
 * the tightest of several brackets (one the thread was preempted in could be
 * off by as long as the preemption), so agents on one machine agree to well
 * under a microsecond; it is re-read periodically to follow wall-clock
 * adjustments.
 */
import type { HrTime } from '@opentelemetry/api';

export interface ClockSource {
  monotonicNs(): bigint;
  realtimeNs(): bigint;
}

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;

/** clock_gettime through libc (exact), for the live agent. */
export function libcClock(): ClockSource {
  // Loaded lazily so unit tests with a fake clock need no native code.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { libbpf } = require('../bpf/libbpf') as typeof import('../bpf/libbpf');
  const lib = libbpf();
  const ts = [0n, 0n];
  const read = (clk: number) => {
    lib.clock_gettime(clk, ts);
    return BigInt(ts[0]) * 1_000_000_000n + BigInt(ts[1]);
  };
  return { monotonicNs: () => read(CLOCK_MONOTONIC), realtimeNs: () => read(CLOCK_REALTIME) };
}

/** Node's own clocks (hrtime is CLOCK_MONOTONIC; Date is ms-precise). */
export function nodeClock(): ClockSource {
  return { monotonicNs: () => process.hrtime.bigint(), realtimeNs: () => BigInt(Date.now()) * 1_000_000n };
}

export class WallClock {
  private offsetNs = 0n;
  /** offsetNs as whole seconds and the nanoseconds left (0 to 1e9 - 1): toHrTime adds numbers, no BigInt per call. */
  private offsetS = 0;
  private offsetRestNs = 0;

  constructor(private readonly source: ClockSource) {
    this.calibrate();
  }

  /** Brackets read per calibration; the tightest one sets the offset. */
  static readonly BRACKETS = 16;

  calibrate(): void {
    let best = -1n;
    for (let i = 0; i < WallClock.BRACKETS; i++) {
      const a = this.source.monotonicNs();
      const r = this.source.realtimeNs();
      const b = this.source.monotonicNs();
      if (best < 0n || b - a < best) {
        best = b - a;
        this.offsetNs = r - (a + b) / 2n;
      }
    }
    let seconds = this.offsetNs / 1_000_000_000n; // truncated towards zero
    if (seconds * 1_000_000_000n > this.offsetNs) seconds -= 1n;
    this.offsetS = Number(seconds);
    this.offsetRestNs = Number(this.offsetNs - seconds * 1_000_000_000n);
  }

  nowMonotonicNs(): number {
    return Number(this.source.monotonicNs());
  }

  /** The wall-clock time of a monotonic timestamp (exact for timestamps below 2^53 ns, ~104 days of uptime). */
  toHrTime(monotonicNs: number): HrTime {
    const m = Math.round(monotonicNs);
    let s = Math.floor(m / 1e9);
    let ns = m - s * 1e9; // exact: both are integers below 2^53
    if (ns < 0) {
      s -= 1; // the division rounded up
      ns += 1e9;
    }
    s += this.offsetS;
    ns += this.offsetRestNs;
    if (ns >= 1e9) {
      s += 1;
      ns -= 1e9;
    }
    return [s, ns];
  }
}

export function hrDuration(start: HrTime, end: HrTime): HrTime {
  let s = end[0] - start[0];
  let n = end[1] - start[1];
  if (n < 0) {
    s -= 1;
    n += 1_000_000_000;
  }
  if (s < 0) return [0, 0];
  return [s, n];
}
