/**
 * Keeps the agent within a CPU budget by head sampling in the kernel.
 *
 * About once a second (sooner while it drops spans) the agent reports its
 * own CPU time (every thread) and how many spans it dropped at a full export
 * queue or events the kernel could not hand over. The ratio of new traces
 * sampled at their root is cut in proportion to the overshoot when, over the
 * last window (5 s), the agent used more than the budget, or when it dropped
 * anything while busy (then at least by half). Busy is: over the budget, its
 * JavaScript thread about full, or that thread starved (it spent a quarter
 * of the interval waiting for a CPU: the machine is saturated, or the agent
 * runs at idle priority and gets only what nobody else wants). Drops while
 * the agent is not busy are the exporter's doing (down or slow) and cut
 * nothing. A cut is of the share of new traces actually sampled when the
 * kernel's cap on new traces kept it below the ratio. Once there is room
 * again the ratio climbs back, at most doubling per second, to the
 * configured ratio; after a cut for drops only 10 s later (the room it
 * measured had been there before, and did not hold). After each change the
 * agent still spends a while on spans sampled before it (they are exported a
 * batch delay later), so the reading after a change starts the next window
 * instead of ending one: each decision measures the ratio it is about.
 *
 * Traces are kept or dropped whole: the decision is taken where a trace
 * starts and every downstream host follows it (the option's ExID). What this
 * cannot shed is work for traces other hosts started and sampled.
 */

export interface CpuBudgetOptions {
  /** Cores the agent may use on average, e.g. 0.5; 0 turns the budget off. */
  budgetCores: number;
  /** The configured sampling ratio (OTEL_TRACES_SAMPLER_ARG): never exceeded. */
  ceiling: number;
  /** Lowest ratio shedding goes to. */
  floor?: number;
  /** How long the agent must be over the budget before a cut for CPU. */
  windowMs?: number;
}

/** Cumulative readings: CPU time used, and spans or events dropped so far. */
export interface BudgetReading {
  atMs: number;
  cpuMicros: number;
  dropped: number;
  /** Time the JavaScript thread was ready to run but waited for a CPU (schedstat), if known. */
  waitMicros?: number;
  /** New traces the kernel decided on so far, and how many of them it sampled, if known. */
  roots?: { sampled: number; decided: number };
}

export interface BudgetDecision {
  ratio: number;
  /** The agent's CPU over what the decision measured (the window, or the last interval), in cores. */
  cpuCores: number;
  /** Spans or events dropped in the last interval. */
  dropped: number;
}

export const DEFAULT_FLOOR = 1e-4;
export const DEFAULT_WINDOW_MS = 5000;
/** About what the agent's one JavaScript thread can use, with its helpers. */
const BUSY_CORES = 0.8;
/** Share of an interval the JavaScript thread waited for a CPU that counts as starved. */
const STARVED_SHARE = 0.25;
/** After a cut for drops, how long the ratio stays down before it may climb. */
export const DROP_HOLD_MS = 10_000;

export class CpuBudget {
  /** The ratio in force. */
  ratio: number;
  readonly budgetCores: number;
  readonly ceiling: number;
  private readonly floor: number;
  private readonly windowMs: number;
  private readonly readings: BudgetReading[] = [];
  /** The next reading starts a window (the last one changed the ratio). */
  private settling = false;
  /** No raise before this time: the last cut was for drops (capacity was overestimated once already). */
  private holdUntilMs = -Infinity;

  constructor(opts: CpuBudgetOptions) {
    if (!(opts.budgetCores >= 0)) throw new RangeError(`CPU budget must be >= 0 cores, got ${opts.budgetCores}`);
    this.budgetCores = opts.budgetCores;
    this.ceiling = Math.min(1, Math.max(0, opts.ceiling));
    this.floor = Math.min(this.ceiling, opts.floor ?? DEFAULT_FLOOR);
    this.windowMs = opts.windowMs ?? DEFAULT_WINDOW_MS;
    this.ratio = this.ceiling;
  }

  get enabled(): boolean {
    return this.budgetCores > 0 && this.ceiling > 0;
  }

  /**
   * Takes a reading; returns the new ratio and why when it changed, else
   * undefined. A cut for CPU needs a whole window over the budget (a burst
   * the queues absorb is not a reason to shed); a drop while busy cuts at
   * once (the agent is behind now); a raise needs a second with room.
   */
  update(r: BudgetReading): BudgetDecision | undefined {
    if (!this.enabled) return undefined;
    if (this.settling) {
      this.settling = false;
      this.readings.length = 0;
    }
    const prev = this.readings[this.readings.length - 1];
    this.readings.push(r);
    // Keep the newest reading at least a window old as the window's start
    // (readings come about once a second, not exactly).
    while (this.readings.length > 2 && r.atMs - this.readings[1].atMs >= 0.9 * this.windowMs) this.readings.shift();
    if (!prev || r.atMs - prev.atMs <= 0) return undefined;
    const lastCores = coresBetween(prev, r);
    const droppedNow = r.dropped - prev.dropped;
    // Drops while the agent is busy (over its budget, its one JavaScript
    // thread about full, or that thread starved of CPU) mean it is behind
    // now. Drops while it is not are the exporter's (down or slow: the queue
    // fills whatever the ratio) and no reason to trace less.
    const starved =
      r.waitMicros !== undefined && prev.waitMicros !== undefined && (r.waitMicros - prev.waitMicros) / 1000 > STARVED_SHARE * (r.atMs - prev.atMs);
    if (droppedNow > 0 && (starved || lastCores > Math.min(this.budgetCores, BUSY_CORES))) {
      // What was dropped was not paid for: the work asked for was more than
      // the CPU measured, so the cut is at least by half.
      const factor = 0.5 * Math.min(1, (0.9 * this.budgetCores) / Math.max(lastCores, 1e-6));
      this.holdUntilMs = r.atMs + DROP_HOLD_MS;
      return this.change(this.cut(factor, effectiveRatio(prev, r)), lastCores, droppedNow);
    }
    const first = this.readings[0];
    if (r.atMs - first.atMs >= 0.9 * this.windowMs) {
      const cores = coresBetween(first, r);
      if (cores > this.budgetCores) return this.change(this.cut((0.9 * this.budgetCores) / cores, effectiveRatio(first, r)), cores, 0);
    }
    if (this.ratio < this.ceiling && r.atMs >= this.holdUntilMs && r.atMs - prev.atMs >= 900 && lastCores < 0.7 * this.budgetCores) {
      const factor = (0.8 * this.budgetCores) / Math.max(lastCores, 1e-6);
      return this.change(Math.min(this.ceiling, this.ratio * Math.min(2, factor)), lastCores, 0);
    }
    return undefined;
  }

  /**
   * A cut by `factor` of what was sampled: of the ratio in force, or of the
   * share of new traces actually sampled when that was lower (the kernel's
   * cap on new traces refused the rest; a cut of a ratio above that share
   * would change nothing).
   */
  private cut(factor: number, effective: number | undefined): number {
    const base = effective !== undefined ? Math.min(this.ratio, effective) : this.ratio;
    return Math.max(this.floor, base * Math.min(0.9, Math.max(0.02, factor)));
  }

  private change(next: number, cpuCores: number, dropped: number): BudgetDecision | undefined {
    if (next === this.ratio) return undefined;
    this.ratio = next;
    // The reading after a change starts the next window (see above).
    this.settling = true;
    return { ratio: next, cpuCores, dropped };
  }
}

/** Share of the new traces decided between two readings that were sampled; undefined without counts. */
function effectiveRatio(a: BudgetReading, b: BudgetReading): number | undefined {
  if (!a.roots || !b.roots) return undefined;
  const decided = b.roots.decided - a.roots.decided;
  return decided > 0 ? (b.roots.sampled - a.roots.sampled) / decided : undefined;
}

function coresBetween(a: BudgetReading, b: BudgetReading): number {
  return (b.cpuMicros - a.cpuMicros) / 1000 / (b.atMs - a.atMs);
}
