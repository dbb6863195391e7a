/**
 * The agent: kernel events -> decoder -> correlator -> spans -> OTLP.
 * One Agent per host (per cgroup scope).
 */
import fs from 'node:fs';
import { KernelTracer, defaultObjectPath } from '../bpf/kernel-tracer';
import type { HookChoice } from '../bpf/hooks';
import { requireRunPrerequisites } from '../bpf/prerequisites';
import type { PeerPrefix } from '../bpf/trusted-peers';
import { ScopeLock } from '../bpf/scope-lock';
import { drainFor } from '../bpf/ring-buffer';
import { EventView } from '../events/decoder';
import { Flag } from '../events/layout';
import { EventRecorder } from '../events/replay';
import { Correlator, type Exchange } from '../trace/correlator';
import { WallClock, taiClock } from '../events/clock';
import { ProcessResources, type ServiceNameSource } from '../resources/process-resources';
import { createSpanPipeline, type SpanPipeline } from '../export/span-pipeline';
import type { BufferConfig, SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { Logger } from '../log';
import type { AgentMetrics } from './metrics';
import { BudgetControl } from '../overhead/budget-control';
import { setCpuPriority, type CpuPriority } from '../overhead/cpu-priority';
import { LoopWatch } from '../overhead/loop-watch';
import { MemoryRelief, exposedGc } from '../overhead/memory-relief';
import { libbpf } from '../bpf/libbpf';

/**
 * The longest the agent reads the ring buffer before its event loop may
 * turn. A full ring (8 MiB) can hold a second or more of the agent's work:
 * read in one go, it would stall exports, the stats and the metrics endpoint
 * that long.
 */
const DRAIN_SLICE_MS = 20;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface AgentOptions {
  cgroupPath: string;
  filterCgroup: boolean;
  /** Process names (comm) never traced. */
  excludeComms?: string[];
  /** Networks whose propagated context is believed (undefined: every peer). */
  trustPeers?: PeerPrefix[];
  idleMs: number;
  /** Probability that a new trace is sampled (the configured ratio). */
  sampleRatio: number;
  /** Cores the agent may use on average before it samples fewer new traces (0: no limit). */
  maxCpuCores?: number;
  /** Scheduling of the agent's threads once attached (idle: SCHED_IDLE). */
  cpuPriority?: CpuPriority;
  ringBufferBytes: number;
  /** How syscalls are hooked (default auto: raw, else per-syscall). */
  hooks?: HookChoice;
  pollMs: number;
  statsIntervalMs: number;
  /** Serve the agent's metrics for Prometheus on this port (undefined: not at all). */
  metricsPort?: number;
  metricsHost?: string;
  recordFile?: string;
  serviceNameFrom: ServiceNameSource;
  resourceAttributes: Record<string, string>;
  exporter?: SpanExporter;
  /** Batch settings; default: the OTEL_BSP_* variables. */
  batch?: BufferConfig;
  objectPath?: string;
  log: Logger;
}

export class Agent {
  private readonly tracer: KernelTracer;
  private readonly correlator: Correlator;
  /** Converts the kernel's stamps; its base is the one the kernel takes off them. */
  private readonly clock = WallClock.startingNow(taiClock());
  private readonly resources: ProcessResources;
  private readonly pipeline: SpanPipeline;
  private recorder?: EventRecorder;
  private readonly scopeLock: ScopeLock;
  private stopping = false;
  private loopDone?: Promise<void>;
  private statsTimer?: NodeJS.Timeout;
  private metrics?: AgentMetrics;
  /** Times the periodic work and the ring buffer's waits behind it. */
  private readonly watch = new LoopWatch();
  /** Gives memory back once a spike is over. */
  private readonly relief: MemoryRelief;
  decodeErrors = 0;
  /** Ring-buffer records read (decoded or not): with the kernel's events_lost, all it produced. */
  records = 0;
  private lostReported = 0;
  private readonly control: BudgetControl;
  /** Resolves when the agent cannot go on (its cgroup scope was removed): the caller stops it. */
  readonly scopeGone: Promise<void>;
  private markScopeGone: () => void = () => {};

  constructor(private readonly opts: AgentOptions) {
    requireRunPrerequisites(opts.cgroupPath);
    this.tracer = new KernelTracer({
      objectPath: opts.objectPath ?? defaultObjectPath(),
      cgroupPath: opts.cgroupPath,
      filterCgroup: opts.filterCgroup,
      excludeComms: opts.excludeComms ?? [],
      trustPeers: opts.trustPeers,
      idleMs: opts.idleMs,
      stampBaseNs: this.clock.baseNs,
      sampleRatio: opts.sampleRatio,
      ringBufferBytes: opts.ringBufferBytes,
      hooks: opts.hooks ?? 'auto',
      log: opts.log,
    });
    this.scopeLock = new ScopeLock(opts.cgroupPath);
    this.resources = new ProcessResources(opts.resourceAttributes, opts.serviceNameFrom);
    this.pipeline = createSpanPipeline(opts.log, opts.exporter, opts.batch);
    this.control = new BudgetControl(
      { maxCpuCores: opts.maxCpuCores ?? 0, sampleRatio: opts.sampleRatio },
      {
        spansDropped: () => this.pipeline.stats.spansDropped,
        eventsLost: () => this.lostReported,
        kernelCounters: () => this.tracer.counters(),
        setRootSampling: (ratio) => this.tracer.setRootSampling(ratio),
        setRootCap: (perSecond, burst) => this.tracer.setRootCap(perSecond, burst),
      },
      opts.log,
    );
    this.correlator = new Correlator((ex) => this.export(ex), { idleNs: opts.idleMs * 1e6 });
    this.scopeGone = new Promise((resolve) => (this.markScopeGone = resolve));
    const gc = exposedGc();
    this.relief = new MemoryRelief(() =>
      this.watch.time('memory-relief', () => {
        gc?.();
        libbpf().malloc_trim(0);
      }),
    );
  }

  /** Starts the Prometheus endpoint, if asked for; resolves with its port. */
  async serveMetrics(): Promise<number | undefined> {
    if (this.opts.metricsPort === undefined) return undefined;
    // Loaded only when asked for: prom-client costs the agent's memory otherwise.
    const { AgentMetrics } = await import('./metrics');
    this.metrics = new AgentMetrics(() => this.stats(), this.watch);
    const port = await this.metrics.listen(this.opts.metricsPort, this.opts.metricsHost ?? '0.0.0.0');
    this.opts.log.info({ port, path: '/metrics' }, 'metrics endpoint');
    return port;
  }

  start(): void {
    this.scopeLock.acquire();
    try {
      this.tracer.start();
      this.tracer.setRootCap(this.control.rootCap.perSecond, this.control.rootCap.burst);
      // After loading: the verifier's work is not left to idle time.
      if (this.opts.cpuPriority === 'idle') setCpuPriority('idle');
    } catch (e) {
      this.tracer.stop();
      this.scopeLock.release();
      throw e;
    }
    if (this.opts.recordFile) this.recorder = new EventRecorder(this.opts.recordFile);
    this.opts.log.info(
      {
        cgroup: this.opts.cgroupPath,
        scoped: this.opts.filterCgroup,
        hooks: this.tracer.hooks,
        sampleRatio: this.control.budget.ceiling,
        maxCpuCores: this.control.budget.budgetCores || undefined,
        maxNewTracesPerSecond: this.control.rootCap.perSecond || undefined,
        cpuPriority: this.opts.cpuPriority ?? 'normal',
      },
      'attached',
    );
    this.control.keep(Date.now()); // the first reading: a second from now the agent can tell
    this.loopDone = this.loop();
    if (this.opts.statsIntervalMs > 0) {
      this.statsTimer = setInterval(() => this.watch.time('stats-line', () => this.opts.log.info(this.stats(), 'stats')), this.opts.statsIntervalMs);
      this.statsTimer.unref();
    }
  }

  stats() {
    return this.watch.time('stats', () => this.snapshot());
  }

  private snapshot() {
    return {
      kernel: this.tracer.counters(),
      correlator: { ...this.correlator.stats },
      export: { ...this.pipeline.stats, queued: this.pipeline.queued(), maxQueueSize: this.pipeline.maxQueueSize },
      records: this.records,
      decodeErrors: this.decodeErrors,
      maps: this.tracer.mapOccupancy(),
      sampling: {
        ratio: this.control.budget.ratio,
        configured: this.control.budget.ceiling,
        maxCpuCores: this.control.budget.budgetCores,
        maxNewTracesPerSecond: this.control.rootCap.perSecond,
      },
      loop: this.watch.snapshot(),
    };
  }

  /** Logs a warning when the kernel could not hand over events (at most once a second). */
  private reportLoss(): void {
    const lost = this.tracer.counters().events_lost ?? 0;
    if (lost > this.lostReported) {
      this.opts.log.warn(
        { lost: lost - this.lostReported, totalLost: lost, ringBufferBytes: this.opts.ringBufferBytes },
        'events lost: ring buffer full (raise --ringbuf-bytes or sample)',
      );
      this.lostReported = lost;
    }
  }

  private checkLossAndScope(): void {
    this.reportLoss();
    // A removed cgroup can hold no process: nothing is left to trace.
    if (this.opts.filterCgroup && !fs.existsSync(this.opts.cgroupPath)) {
      this.opts.log.error({ cgroup: this.opts.cgroupPath }, 'cgroup removed: stopping');
      this.markScopeGone();
    }
  }

  /** Drains what is left, exports every pending span, detaches. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.statsTimer) clearInterval(this.statsTimer);
    await this.metrics?.close();
    await this.loopDone;
    this.drain();
    this.correlator.flush();
    this.reportLoss();
    const final = this.stats();
    this.tracer.stop();
    this.scopeLock.release();
    this.recorder?.close();
    try {
      await this.pipeline.shutdown();
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'exporter shutdown failed');
    }
    this.opts.log.info({ ...final, export: { ...this.pipeline.stats } }, 'detached');
  }

  private clockWarned = false;

  /** The wall clock stepped back past the stamps' base: the kernel stamps 0 until it is there again. */
  private warnIfClockBeforeBase(): void {
    if (this.clockWarned) return;
    const nowNs = this.clock.nowEventNs();
    if (nowNs >= 0) return;
    this.clockWarned = true;
    this.opts.log.warn(
      { steppedBackS: Math.round(-nowNs / 1e9) },
      'the wall clock was stepped back more than an hour before the agent started: events are stamped at its start until the clock is past it again; restart the agent',
    );
  }

  private async loop(): Promise<void> {
    let calibrated = Date.now();
    let lossChecked = Date.now();
    let more = false;
    while (!this.stopping) {
      // With records still queued, only let the event loop turn (exports,
      // timers, the metrics endpoint) before reading on.
      if (more) await yieldToEventLoop();
      else await this.tracer.ring.wait(this.opts.pollMs);
      if (this.stopping) break;
      this.watch.sliceStarting();
      more = drainFor(this.tracer.ring, this.onRecord, DRAIN_SLICE_MS);
      this.watch.sliceEnded(more);
      // With a backlog left, nothing is known to have stayed quiet past the
      // events read, and the next read's own sweeps emit what has settled.
      const tickNs = more ? this.correlator.readUpToNs : this.clock.nowEventNs();
      this.watch.time('sweep', () => this.correlator.sweep(tickNs));
      if (!more) this.correlator.emitSettled(tickNs);
      const now = Date.now();
      if (now - calibrated > 10_000) {
        this.watch.time('calibrate', () => this.clock.calibrate());
        calibrated = now;
        this.warnIfClockBeforeBase();
      }
      if (this.control.due(now)) this.watch.time('budget', () => this.control.keep(now));
      if (now - lossChecked >= 1000) {
        lossChecked = now;
        this.watch.time('loss-check', () => this.checkLossAndScope());
        this.relief.check(now, this.records);
      }
    }
  }

  /** Everything queued (when stopping). */
  private drain(): void {
    this.tracer.ring.drain(this.onRecord);
  }

  /** Every record is decoded into this one object (see EventView). */
  private readonly event = new EventView();

  private readonly onRecord = (bytes: Buffer, view: DataView, off: number, len: number): void => {
    this.records++;
    this.recorder?.write(bytes.subarray(off, off + len));
    let ev;
    try {
      ev = this.event.load(bytes, view, off, len);
    } catch {
      this.decodeErrors++;
      return;
    }
    if (ev.proc) return this.resources.learn(ev.pid, { comm: ev.comm ?? '', env: ev.proc.env, args: ev.proc.args });
    if (ev.flags & Flag.GB_F_MSG_START) this.resources.observe(ev.pid, ev.comm);
    this.correlator.push(ev);
  };

  private export(ex: Exchange): void {
    const resource = this.resources.get(ex.request.pid);
    this.pipeline.submitExchange(ex, resource, this.clock);
  }
}
