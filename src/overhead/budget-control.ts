/**
 * The control loop that keeps the agent within its CPU budget (--max-cpu):
 * once a second, sooner while spans are being dropped, it reads the agent's
 * CPU, its drops and the kernel's count of new traces, and moves the
 * kernel's root sampling ratio (CpuBudget) and its cap on new sampled
 * traces (RootRateCap). The policies are in those two modules; this is
 * their wiring to the kernel and the log.
 */
import { CpuBudget } from './cpu-budget';
import { RootRateCap } from './root-rate-cap';
import { runDelayMicros } from './run-delay';
import type { Logger } from '../log';

/** What the loop reads and sets. */
export interface BudgetInputs {
  /** Spans dropped at the export queue so far. */
  spansDropped(): number;
  /** Events the kernel could not hand over so far (as reported). */
  eventsLost(): number;
  /** The kernel's counters (roots_sampled, roots_unsampled). */
  kernelCounters(): Record<string, number>;
  setRootSampling(ratio: number): void;
  setRootCap(perSecond: number, burst: number): void;
}

export class BudgetControl {
  readonly budget: CpuBudget;
  readonly rootCap: RootRateCap;
  private lastShedLog = 0;
  private readAt = 0;
  private droppedAtReading = 0;

  constructor(
    opts: { maxCpuCores: number; sampleRatio: number },
    private readonly io: BudgetInputs,
    private readonly log: Logger,
  ) {
    this.budget = new CpuBudget({ budgetCores: opts.maxCpuCores, ceiling: opts.sampleRatio });
    this.rootCap = new RootRateCap({ budgetCores: this.budget.enabled ? this.budget.budgetCores : 0 });
  }

  /** Once a second; sooner when spans are being dropped (every 200 ms of overload is spans lost from traces already sampled). */
  due(nowMs: number): boolean {
    if (!this.budget.enabled) return false;
    const since = nowMs - this.readAt;
    return since >= 1000 || (since >= 200 && this.io.spansDropped() > this.droppedAtReading);
  }

  /** Samples fewer new traces while the agent is over its CPU budget, more once it is not (CpuBudget). */
  keep(nowMs: number): void {
    if (!this.budget.enabled) return;
    const cpu = process.cpuUsage();
    this.readAt = nowMs;
    this.droppedAtReading = this.io.spansDropped();
    const dropped = this.droppedAtReading + this.io.eventsLost();
    const before = this.budget.ratio;
    const cpuMicros = cpu.user + cpu.system;
    const k = this.io.kernelCounters();
    const roots = { sampled: k.roots_sampled ?? 0, decided: (k.roots_sampled ?? 0) + (k.roots_unsampled ?? 0) };
    this.keepRootCap(nowMs, cpuMicros, roots.sampled);
    const d = this.budget.update({ atMs: nowMs, cpuMicros, dropped, waitMicros: runDelayMicros(), roots });
    if (!d) return;
    this.io.setRootSampling(d.ratio);
    const fields = {
      ratio: Number(d.ratio.toPrecision(3)),
      configured: this.budget.ceiling,
      agentCpuCores: Number(d.cpuCores.toFixed(3)),
      maxCpuCores: this.budget.budgetCores,
      dropped: d.dropped,
    };
    if (d.ratio >= this.budget.ceiling) {
      this.log.info(fields, 'within the CPU budget again: sampling new traces at the configured ratio');
    } else if (d.ratio < before && nowMs - this.lastShedLog >= 10_000) {
      this.lastShedLog = nowMs;
      this.log.warn(fields, 'over the CPU budget: sampling fewer new traces (whole traces are kept or dropped; raise --max-cpu to keep more)');
    } else {
      this.log.debug(fields, d.ratio < before ? 'sampling fewer new traces' : 'sampling more new traces');
    }
  }

  /** Moves the kernel's cap on new sampled traces with the measured cost of one (RootRateCap). */
  private keepRootCap(nowMs: number, cpuMicros: number, rootsSampled: number): void {
    const next = this.rootCap.observe({ atMs: nowMs, cpuMicros, traces: rootsSampled });
    if (next === undefined) return;
    this.io.setRootCap(next, this.rootCap.burst);
    this.log.debug({ maxNewTracesPerSecond: next, agentCpuMicrosPerTrace: Math.round(this.rootCap.microsPerTrace) }, 'cap on new traces moved');
  }
}
