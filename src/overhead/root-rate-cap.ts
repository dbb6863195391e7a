/**
 * A cap on new sampled traces per second, from the CPU budget and what a
 * trace costs the agent.
 *
 * The ratio (CpuBudget) follows the agent's measured CPU, so it lags: in the
 * first second of a sudden overload the agent takes more work than it can do,
 * and what it cannot do is spans dropped at the export queue or events lost at
 * the ring buffer, that is, broken traces. The kernel enforces this cap at
 * once, as a token bucket (root_cap): at most the traces a second the budget
 * pays for (times `headroom`, 1 by default), in bursts of at most a quarter
 * second's worth (so that a short burst at low load is not cut). It is a
 * safety net above the ratio, which still does the fine control.
 *
 * What a trace costs is the agent's CPU over the new traces sampled in a
 * window of 5 s (export comes in batches, so one second is too noisy: at
 * ~1,000 requests a second a one-second estimate was off by 2x and the cap
 * shed 5 % of them), counted only when the agent was busy enough over it
 * (half its budget) for its fixed costs (timers, stats) not to count; until
 * then an assumed cost is used.
 */

export interface RootRateCapOptions {
  /** The CPU budget, in cores; 0 means no cap. */
  budgetCores: number;
  /** Agent CPU per new sampled trace assumed before one is measured. */
  assumedMicrosPerTrace?: number;
  /** The cap is this many times what the budget pays for (default 1: more would let the agent sit above its budget). */
  headroom?: number;
}

/** Cumulative readings: CPU time used, and new traces sampled, so far. */
export interface CapReading {
  atMs: number;
  cpuMicros: number;
  traces: number;
}

export const DEFAULT_ASSUMED_MICROS_PER_TRACE = 100;
export const DEFAULT_HEADROOM = 1;
/** Fewest new traces in a window for a measured cost to count. */
const MIN_TRACES = 250;
export const COST_WINDOW_MS = 5000;
const BURST_SECONDS = 0.25;
const MIN_BURST = 64;

export class RootRateCap {
  /** The cap in force, new sampled traces per second (0: none). */
  perSecond: number;
  /** The cost the cap is computed from, µs of agent CPU per new sampled trace. */
  microsPerTrace: number;
  private readonly budgetCores: number;
  private readonly headroom: number;
  /** The window being summed: CPU (µs), new traces, milliseconds. */
  private window = { cpuMicros: 0, traces: 0, ms: 0 };
  private last?: CapReading;

  constructor(opts: RootRateCapOptions) {
    this.budgetCores = opts.budgetCores;
    this.headroom = opts.headroom ?? DEFAULT_HEADROOM;
    this.microsPerTrace = opts.assumedMicrosPerTrace ?? DEFAULT_ASSUMED_MICROS_PER_TRACE;
    this.perSecond = this.capFor(this.microsPerTrace);
  }

  /**
   * Takes a reading; once a window is full, returns the new cap when it
   * moved by more than a fifth, else undefined.
   */
  observe(r: CapReading): number | undefined {
    const prev = this.last;
    this.last = r;
    if (this.budgetCores <= 0 || !prev || r.atMs <= prev.atMs) return undefined;
    const w = this.window;
    w.cpuMicros += r.cpuMicros - prev.cpuMicros;
    w.traces += r.traces - prev.traces;
    w.ms += r.atMs - prev.atMs;
    if (w.ms < COST_WINDOW_MS) return undefined;
    this.window = { cpuMicros: 0, traces: 0, ms: 0 };
    const cores = w.cpuMicros / 1000 / w.ms;
    if (w.traces < MIN_TRACES || cores < 0.5 * this.budgetCores) return undefined;
    this.microsPerTrace = 0.5 * this.microsPerTrace + 0.5 * (w.cpuMicros / w.traces);
    const next = this.capFor(this.microsPerTrace);
    if (Math.abs(next - this.perSecond) <= 0.2 * this.perSecond) return undefined;
    this.perSecond = next;
    return next;
  }

  /** Most new traces sampled at once (the bucket's size). */
  get burst(): number {
    return Math.max(MIN_BURST, Math.round(this.perSecond * BURST_SECONDS));
  }

  private capFor(microsPerTrace: number): number {
    if (this.budgetCores <= 0) return 0;
    return Math.max(1, Math.round((this.headroom * this.budgetCores * 1e6) / Math.max(1, microsPerTrace)));
  }
}
