/**
 * The agent's own metrics on a Prometheus endpoint (prom-client): events
 * received and lost, options written, received and rejected (by reason),
 * traces started (sampled or not) and the sampling ratio in force,
 * spans exported, dropped and failed, export errors, incomplete spans, the
 * export queue, kernel map occupancy, the process's CPU and memory, and how
 * long the agent's periodic work and scrapes took, with how long the ring
 * buffer waited unread behind them (LoopWatch).
 * Values come from the same counters the agent logs (one snapshot per scrape).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { BACKLOG_WAIT, type LoopWatch, type TaskTiming } from '../overhead/loop-watch';

/** What the agent reports (Agent.stats()). */
export interface AgentStatsSnapshot {
  kernel: Record<string, number>;
  correlator: { incompleteExchanges: number; exchanges: number };
  export: { spansExported: number; spansDropped: number; spansFailed: number; exportErrors: number; queued: number; maxQueueSize: number };
  records: number;
  decodeErrors: number;
  maps: Record<string, { entries: number; max: number }>;
  sampling: { ratio: number; configured: number; maxCpuCores: number };
  loop: Record<string, TaskTiming>;
}

/** Seconds: a few ms is the bound the agent keeps to; the rest shows how far a task strays. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

const REJECT_REASONS: Record<string, string> = {
  opt_bad_len: 'bad_length',
  opt_bad_exid: 'unknown_exid',
  opt_zero_id: 'zero_id',
  opt_bad_segment: 'bad_segment',
  opt_untrusted: 'untrusted_peer',
};

export class AgentMetrics {
  readonly registry = new Registry();
  private server?: http.Server;
  private snapshot?: { at: number; stats: AgentStatsSnapshot };

  constructor(
    private readonly stats: () => AgentStatsSnapshot,
    private readonly watch: LoopWatch,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: 'gearbox_' });
    const tasks = new Histogram({
      name: 'gearbox_agent_task_duration_seconds',
      help: "time the agent's periodic work (stats, scrapes, ticks, budget) held its only JavaScript thread, by task",
      labelNames: ['task'],
      buckets: DURATION_BUCKETS,
      registers: [this.registry],
    });
    const backlogWait = new Histogram({
      name: 'gearbox_ring_backlog_wait_seconds',
      help: 'time records queued in the ring buffer waited unread while the agent did other work between two reads of a backlog',
      buckets: DURATION_BUCKETS,
      registers: [this.registry],
    });
    watch.observe((what, seconds) => (what === BACKLOG_WAIT ? backlogWait.observe(seconds) : tasks.observe({ task: what }, seconds)));
    const s = () => this.current();
    const counter = (name: string, help: string, value: (x: AgentStatsSnapshot) => number) =>
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.reset();
          this.inc(value(s()));
        },
      });
    counter('gearbox_events_received_total', 'kernel events read from the ring buffer', (x) => x.records);
    counter('gearbox_events_lost_total', 'kernel events the ring buffer had no room for', (x) => x.kernel.events_lost ?? 0);
    counter('gearbox_events_decode_errors_total', 'records that were not well-formed events', (x) => x.decodeErrors);
    counter('gearbox_options_written_total', 'trace-context TCP options written on outgoing segments', (x) => x.kernel.opt_written ?? 0);
    counter('gearbox_options_received_total', 'valid trace-context TCP options received', (x) => x.kernel.opt_received ?? 0);
    counter('gearbox_spans_exported_total', 'spans the exporter delivered', (x) => x.export.spansExported);
    counter('gearbox_spans_dropped_total', 'spans dropped because the export queue was full', (x) => x.export.spansDropped);
    counter('gearbox_spans_failed_total', 'spans in exports that failed', (x) => x.export.spansFailed);
    counter('gearbox_export_errors_total', 'exports that failed', (x) => x.export.exportErrors);
    counter('gearbox_spans_incomplete_total', 'spans exported incomplete because some of their events were lost', (x) => x.correlator.incompleteExchanges);
    counter(
      'gearbox_contexts_expired_total',
      'contexts a thread inherited at its creation, refused as a parent because their request had been answered',
      (x) => x.kernel.ctx_expired ?? 0,
    );
    new Counter({
      name: 'gearbox_options_rejected_total',
      help: 'trace-context TCP options ignored, by reason',
      labelNames: ['reason'],
      registers: [this.registry],
      collect() {
        this.reset();
        const k = s().kernel;
        for (const [counterName, reason] of Object.entries(REJECT_REASONS)) this.inc({ reason }, k[counterName] ?? 0);
      },
    });
    new Counter({
      name: 'gearbox_traces_started_total',
      help: 'new traces (root spans) on this host, by whether they were sampled',
      labelNames: ['sampled'],
      registers: [this.registry],
      collect() {
        this.reset();
        const k = s().kernel;
        this.inc({ sampled: 'true' }, k.roots_sampled ?? 0);
        this.inc({ sampled: 'false' }, k.roots_unsampled ?? 0);
      },
    });
    new Gauge({
      name: 'gearbox_root_sampling_ratio',
      help: 'probability that a new trace is sampled now: the configured ratio, or less while the agent is over its CPU budget (--max-cpu)',
      registers: [this.registry],
      collect() {
        this.set(s().sampling.ratio);
      },
    });
    new Gauge({
      name: 'gearbox_export_queue_spans',
      help: 'spans waiting in the export queue',
      registers: [this.registry],
      collect() {
        this.set(s().export.queued);
      },
    });
    new Gauge({
      name: 'gearbox_export_queue_capacity_spans',
      help: 'bound of the export queue',
      registers: [this.registry],
      collect() {
        this.set(s().export.maxQueueSize);
      },
    });
    new Gauge({
      name: 'gearbox_map_entries',
      help: 'entries in the kernel maps that hold per-connection, per-thread and per-process state',
      labelNames: ['map'],
      registers: [this.registry],
      collect() {
        for (const [map, m] of Object.entries(s().maps)) if (m.entries >= 0) this.set({ map }, m.entries);
      },
    });
    new Gauge({
      name: 'gearbox_map_capacity',
      help: 'max_entries of those maps',
      labelNames: ['map'],
      registers: [this.registry],
      collect() {
        for (const [map, m] of Object.entries(s().maps)) this.set({ map }, m.max);
      },
    });
  }

  /** One stats snapshot serves every metric of a scrape. */
  private current(): AgentStatsSnapshot {
    const now = Date.now();
    if (!this.snapshot || now - this.snapshot.at > 200) this.snapshot = { at: now, stats: this.stats() };
    return this.snapshot.stats;
  }

  /** Serves GET /metrics on host:port; resolves with the bound port. */
  async listen(port: number, host: string): Promise<number> {
    this.server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404).end('try /metrics\n');
        return;
      }
      const t0 = performance.now();
      this.registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body))
        .catch((e: Error) => res.writeHead(500).end(`${e.message}\n`))
        .finally(() => this.watch.note('scrape', performance.now() - t0));
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    this.server.unref();
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}
