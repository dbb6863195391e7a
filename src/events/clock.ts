/**
 * Converts the kernel's event timestamps to wall-clock OTel HrTime.
 *
 * The kernel stamps events with CLOCK_TAI less a base the agent sets at
 * load (bpf/config.bpf.h, stamp_clock): the wall clock plus the kernel's TAI
 * offset, so a step of the wall clock (NTP, a hypervisor's correction) is in
 * the stamps from the instant it happens, and realtime - TAI is a whole
 * number of seconds (0 or 37). The offset is read with clock_gettime
 * bracketed by two reads of the event clock, the tightest of several
 * brackets, and for CLOCK_TAI rounded to its whole second: exact, so every
 * agent on a machine gives one instant the same time, whenever each
 * calibrated. It is re-read periodically (leap seconds).
 */
import type { HrTime } from '@opentelemetry/api';

export interface ClockSource {
  /** The clock the kernel stamps events with, before the base is taken off (ns). */
  eventNs(): bigint;
  realtimeNs(): bigint;
  /** realtime - eventNs is a whole number of seconds (CLOCK_TAI): the measured offset is rounded to it. */
  readonly wholeSecondOffset: boolean;
}

const CLOCK_REALTIME = 0;
const CLOCK_TAI = 11;

/** CLOCK_TAI and CLOCK_REALTIME through libc (exact), for the live agent: the clock of bpf_ktime_get_tai_ns. */
export function taiClock(): ClockSource {
  // Loaded lazily so unit tests with a fake clock need no native code.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { libbpf } = require('../bpf/libbpf') as typeof import('../bpf/libbpf');
  const lib = libbpf();
  const ts = [0n, 0n];
  const read = (clk: number) => {
    if ((lib.clock_gettime(clk, ts) as number) !== 0) throw new Error(`clock_gettime(${clk}) failed`);
    return BigInt(ts[0]) * 1_000_000_000n + BigInt(ts[1]);
  };
  return { eventNs: () => read(CLOCK_TAI), realtimeNs: () => read(CLOCK_REALTIME), wholeSecondOffset: true };
}

/** Node's own clocks (hrtime is CLOCK_MONOTONIC; Date is ms-precise), for replaying recorded events. */
export function nodeClock(): ClockSource {
  return { eventNs: () => process.hrtime.bigint(), realtimeNs: () => BigInt(Date.now()) * 1_000_000n, wholeSecondOffset: false };
}

/** How far before the agent's start the stamps' base lies: the wall clock may be stepped back this far (then stamps are 0). */
export const STAMP_BASE_MARGIN_NS = 3_600_000_000_000n;

export class WallClock {
  private offsetNs = 0n;
  /** offsetNs as whole seconds and the nanoseconds left (0 to 1e9 - 1): toHrTime adds numbers, no BigInt per call. */
  private offsetS = 0;
  private offsetRestNs = 0;

  /**
   * `baseNs`: what the kernel takes off its stamps (gb_config.stamp_base_ns);
   * 0 for a clock whose reads are the stamps.
   */
  constructor(
    private readonly source: ClockSource,
    readonly baseNs = 0n,
  ) {
    this.calibrate();
  }

  /** A clock whose stamps start STAMP_BASE_MARGIN_NS before now: small, exact as numbers, and never below 0 for a clock stepped back by less. */
  static startingNow(source: ClockSource): WallClock {
    return new WallClock(source, source.eventNs() - STAMP_BASE_MARGIN_NS);
  }

  /** Brackets read per calibration; the tightest one sets the offset. */
  static readonly BRACKETS = 16;

  calibrate(): void {
    let best = -1n;
    let measured = 0n;
    for (let i = 0; i < WallClock.BRACKETS; i++) {
      const a = this.source.eventNs();
      const r = this.source.realtimeNs();
      const b = this.source.eventNs();
      if (best < 0n || b - a < best) {
        best = b - a;
        measured = r - (a + b) / 2n;
      }
    }
    if (this.source.wholeSecondOffset) measured = roundToSecond(measured);
    this.offsetNs = measured + this.baseNs;
    let seconds = this.offsetNs / 1_000_000_000n; // truncated towards zero
    if (seconds * 1_000_000_000n > this.offsetNs) seconds -= 1n;
    this.offsetS = Number(seconds);
    this.offsetRestNs = Number(this.offsetNs - seconds * 1_000_000_000n);
  }

  /** Now on the clock of the kernel's stamps (below 0: the wall clock was stepped back past the base). */
  nowEventNs(): number {
    return Number(this.source.eventNs() - this.baseNs);
  }

  /** The wall-clock time of a kernel timestamp (exact below 2^53 ns: ~104 days after the base). */
  toHrTime(stampNs: number): HrTime {
    const m = Math.round(stampNs);
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

/** The nearest whole second (halves away from zero). */
function roundToSecond(ns: bigint): bigint {
  const half = ns < 0n ? -500_000_000n : 500_000_000n;
  return ((ns + half) / 1_000_000_000n) * 1_000_000_000n;
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
