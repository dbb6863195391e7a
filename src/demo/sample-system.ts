/**
 * The demo's embedded default: four namespace hosts, each with its own child
 * cgroup and its own Gearbox agent, running a small chain of real services:
 * a load generator (h1) -> Node.js HTTP frontend (h2) -> Python threading
 * HTTP backend (h3) -> redis-server (h4).
 */
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { Lab, type Host } from '../lab/namespace-lab';
import { Agent } from '../agent/agent';
import type { Logger } from '../log';

export const SERVICES_DIR = path.resolve(__dirname, '..', '..', '..', 'examples', 'services');

/**
 * Starts the sample chain on hosts h2..h4 of `lab` (h1 is for the client):
 * Node.js frontend (h2:8080) -> Python backend (h3:8080) -> redis-server
 * (h4:6379), each with OTEL_SERVICE_NAME set; resolves when all listen.
 */
export async function startSampleChain(lab: Lab): Promise<void> {
  const [, h2, h3, h4] = lab.hosts;
  const redis = lab.spawnIn(h4, 'redis', 'redis-server', ['--port', '6379', '--bind', h4.ip, '--save', '', '--appendonly', 'no', '--protected-mode', 'no']);
  const backend = lab.spawnIn(h3, 'backend', 'python3', ['-u', path.join(SERVICES_DIR, 'redis-backed-service.py')], {
    OTEL_SERVICE_NAME: 'backend',
    PORT: '8080',
    REDIS_HOST: h4.ip,
    REDIS_PORT: '6379',
  });
  const frontend = lab.spawnIn(h2, 'frontend', process.execPath, [path.join(SERVICES_DIR, 'http-forwarder.js')], {
    OTEL_SERVICE_NAME: 'frontend',
    PORT: '8080',
    DOWNSTREAM: `http://${h3.ip}:8080`,
  });
  await Promise.all([
    Lab.waitFor(redis, /Ready to accept connections/, 10_000, 'redis-server'),
    Lab.waitFor(backend, /ready on/, 10_000, 'backend (python3)'),
    Lab.waitFor(frontend, /ready on/, 10_000, 'frontend (node)'),
  ]);
}

export interface SampleSystemOptions {
  requests: number; // 0: until stopped
  delayMs: number;
  exporterFor: (host: Host) => SpanExporter;
  log: Logger;
  logDir: string;
}

export class SampleSystem {
  readonly lab: Lab;
  readonly agents: Agent[] = [];
  private client?: ChildProcess;

  constructor(private readonly opts: SampleSystemOptions) {
    this.lab = new Lab(opts.logDir);
  }

  async start(): Promise<void> {
    const hosts = this.lab.create(4);
    for (const h of hosts) {
      const agent = new Agent({
        cgroupPath: h.cgroup,
        filterCgroup: true,
        idleMs: 1000,
        sampleRatio: 1,
        ringBufferBytes: 4 * 1024 * 1024,
        pollMs: 50,
        statsIntervalMs: 0,
        serviceNameFrom: 'env',
        resourceAttributes: { 'host.name': h.name },
        exporter: this.opts.exporterFor(h),
        batch: { scheduledDelayMillis: 300 },
        log: this.opts.log.child({ host: h.name }),
      });
      agent.start();
      this.agents.push(agent);
    }
    await startSampleChain(this.lab);
  }

  /** Runs the load generator; resolves with its JSON summary when it ends. */
  runLoad(): Promise<{ ok: number; requests: number; failures: string[] }> {
    const [h1, h2] = this.lab.hosts;
    this.client = this.lab.spawnIn(h1, 'loadgen', process.execPath, [path.join(SERVICES_DIR, 'load-client.js')], {
      OTEL_SERVICE_NAME: 'loadgen',
      TARGET: `http://${h2.ip}:8080`,
      N: String(this.opts.requests),
      MODE: 'keepalive',
      DELAY_MS: String(this.opts.delayMs),
    });
    let out = '';
    this.client.stdout?.on('data', (d) => (out += d));
    return new Promise((resolve) =>
      this.client?.once('exit', () => {
        try {
          resolve(JSON.parse(out.trim().split('\n').pop() ?? ''));
        } catch {
          resolve({ ok: 0, requests: 0, failures: [`load generator failed: ${this.lab.logOf('loadgen').slice(-500)}`] });
        }
      }),
    );
  }

  stopLoad(): void {
    this.client?.kill('SIGTERM');
  }

  async stop(): Promise<void> {
    this.stopLoad();
    await Promise.all(this.agents.map((a) => a.stop()));
    await this.lab.destroy();
  }
}
