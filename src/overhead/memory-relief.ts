/**
 * Gives memory back after a spike. Under load V8's heap (its young
 * generation up to 2 x 16 MiB, its old generation) and glibc's heap grow;
 * once the load is over V8 collects and shrinks only when its own heuristics
 * get round to it, so the agent's RSS could stay tens of MiB above its idle
 * level for minutes. Once the agent has been quiet for a few seconds (few
 * events read) while its RSS is well above the lowest it has been, this
 * runs a full collection and asks glibc to return its free pages
 * (malloc_trim): a few ms, at a time when the ring buffer has little to
 * hold. V8 shrinks its young generation only at a collection that sees a
 * low but non-zero allocation rate since the one before, so a relief is
 * tried up to `attempts` times, `gapMs` apart, while the agent stays quiet.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

export interface MemoryReliefOptions {
  /** Events a second below which the agent counts as quiet. */
  quietEventsPerSecond: number;
  /** How long it must have been quiet. */
  quietMs: number;
  /** RSS above the lowest seen by this factor counts as grown. */
  grownFactor: number;
  /** Between two reliefs. */
  gapMs: number;
  /** Reliefs per quiet spell at most. */
  attempts: number;
}

export const DEFAULT_MEMORY_RELIEF: MemoryReliefOptions = { quietEventsPerSecond: 500, quietMs: 5000, grownFactor: 1.1, gapMs: 10_000, attempts: 3 };

/** V8's gc() (the --expose-gc function), or undefined where the flag cannot be set. */
export function exposedGc(): (() => void) | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

export class MemoryRelief {
  private readonly opts: MemoryReliefOptions;
  private lowestRss = Infinity;
  private quietSince?: number;
  private lastRelief = -Infinity;
  private attemptsThisSpell = 0;
  private lastAt?: number;
  private lastEvents = 0;
  reliefs = 0;

  constructor(
    private readonly release: () => void,
    private readonly rss: () => number = () => process.memoryUsage.rss(),
    opts: Partial<MemoryReliefOptions> = {},
  ) {
    this.opts = { ...DEFAULT_MEMORY_RELIEF, ...opts };
  }

  /**
   * Called about once a second with the events read so far; releases
   * memory when the agent is quiet and has grown. True when it did.
   */
  check(nowMs: number, eventsSoFar: number): boolean {
    const o = this.opts;
    const elapsed = this.lastAt === undefined ? 0 : nowMs - this.lastAt;
    const rate = elapsed > 0 ? ((eventsSoFar - this.lastEvents) * 1000) / elapsed : 0;
    this.lastAt = nowMs;
    this.lastEvents = eventsSoFar;
    if (rate >= o.quietEventsPerSecond) {
      this.quietSince = undefined;
      this.attemptsThisSpell = 0;
      return false;
    }
    const rss = this.rss();
    this.quietSince ??= nowMs;
    if (rss < this.lowestRss) this.lowestRss = rss;
    if (nowMs - this.quietSince < o.quietMs || nowMs - this.lastRelief < o.gapMs) return false;
    if (rss <= this.lowestRss * o.grownFactor) return false;
    if (this.attemptsThisSpell >= o.attempts) {
      // What the reliefs could not give back (pages V8 or glibc keep, the
      // ring buffer's pages once touched) does not call for more.
      this.lowestRss = rss;
      return false;
    }
    this.attemptsThisSpell++;
    this.lastRelief = nowMs;
    this.reliefs++;
    this.release();
    return true;
  }
}
