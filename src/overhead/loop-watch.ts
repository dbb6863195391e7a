/**
 * How long the agent's own periodic work holds its only JavaScript thread,
 * and how long the ring buffer waits unread meanwhile. Every timer task and
 * every scrape is timed; and while a backlog is left in the ring buffer
 * (the drain slice ran out of time, not out of records), the time until the
 * next slice starts is how long records sat unread because of other work:
 * the measure that matters, since the kernel drops events once the ring is
 * full. Both go to the stats line (longest so far) and to any observer
 * (the metrics endpoint's histograms).
 */
export interface TaskTiming {
  count: number;
  totalMs: number;
  maxMs: number;
}

export type LoopObserver = (what: string, seconds: number) => void;

/** The name a backlog wait is observed under (beside the tasks'). */
export const BACKLOG_WAIT = 'backlog-wait';

export class LoopWatch {
  private readonly timings = new Map<string, TaskTiming>();
  private backlogSince?: number;
  private readonly observers: LoopObserver[] = [];

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Runs `fn` as task `task`, timed. */
  time<T>(task: string, fn: () => T): T {
    const t0 = this.now();
    try {
      return fn();
    } finally {
      this.note(task, this.now() - t0);
    }
  }

  /** Records `ms` spent on `task` (for work that is not one synchronous call). */
  note(task: string, ms: number): void {
    let t = this.timings.get(task);
    if (!t) this.timings.set(task, (t = { count: 0, totalMs: 0, maxMs: 0 }));
    t.count++;
    t.totalMs += ms;
    if (ms > t.maxMs) t.maxMs = ms;
    for (const o of this.observers) o(task, ms / 1000);
  }

  /** A drain slice ended; `backlogLeft`: records are still queued. */
  sliceEnded(backlogLeft: boolean): void {
    this.backlogSince = backlogLeft ? this.now() : undefined;
  }

  /** A drain slice starts: the wait since a slice that left a backlog is noted. */
  sliceStarting(): void {
    if (this.backlogSince === undefined) return;
    this.note(BACKLOG_WAIT, this.now() - this.backlogSince);
    this.backlogSince = undefined;
  }

  observe(o: LoopObserver): void {
    this.observers.push(o);
  }

  /** Count, total and longest of each task so far, in ms (rounded to µs). */
  snapshot(): Record<string, TaskTiming> {
    const out: Record<string, TaskTiming> = {};
    for (const [k, t] of this.timings) out[k] = { count: t.count, totalMs: round3(t.totalMs), maxMs: round3(t.maxMs) };
    return out;
  }
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;
