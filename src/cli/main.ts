#!/usr/bin/env node
/** `gearbox` command line. */
import os from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { log } from '../log';
import { cgroup2Root, PrerequisiteError } from '../bpf/prerequisites';
import { resourceAttributesFromEnv, sampleRatioFromEnv } from './config';
import { ConfigFileError, loadConfigFile } from './config-file';
import { parseTrustPeers, type PeerPrefix } from '../bpf/trusted-peers';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ServiceNameSource } from '../resources/process-resources';
import { HOOK_CHOICES, type HookChoice } from '../bpf/hooks';
import { CPU_PRIORITIES, type CpuPriority } from '../overhead/cpu-priority';

function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

function nonNegativeInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

function nonNegativeNumber(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number >= 0`);
    return n;
  };
}

/** The agent's default CPU budget: a tenth of the machine's `cpus`. */
function defaultMaxCpu(cpus: number): number {
  return Math.round(cpus * 10) / 100;
}

function commList(v: string): string[] {
  const names = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) if (Buffer.byteLength(n) > 15) throw new InvalidArgumentError(`process name "${n}" is longer than 15 bytes (a comm never is)`);
  return names;
}

/**
 * Fills options still at their defaults from the --config file, validated by
 * each option's own parser. Returns the merged option values.
 */
function applyConfigFile(cmd: Command): Record<string, unknown> {
  const file = cmd.getOptionValue('config') as string | undefined;
  if (file) {
    const known = cmd.options.map((opt) => opt.attributeName()).filter((k) => k !== 'config');
    for (const [key, value] of Object.entries(loadConfigFile(file, known))) {
      const source = cmd.getOptionValueSource(key);
      if (source !== undefined && source !== 'default') continue; // command line and environment win
      const opt = cmd.options.find((x) => x.attributeName() === key);
      let v: unknown = value;
      try {
        // parseArg also checks choices (commander installs it for .choices()).
        if (opt?.parseArg && typeof value !== 'boolean') v = opt.parseArg(String(value), undefined);
      } catch (e) {
        throw new ConfigFileError(`config file ${file}: ${key}: ${(e as Error).message}`);
      }
      cmd.setOptionValueWithSource(key, v, 'config');
    }
  }
  return cmd.opts();
}

export function buildCli(): Command {
  const cpus = os.availableParallelism();
  const program = new Command('gearbox').description('Zero-code distributed tracing: eBPF -> OpenTelemetry spans over OTLP gRPC').version('0.1.0');

  program
    .command('run')
    .description('trace the processes of a cgroup v2 subtree until SIGINT/SIGTERM, exporting spans over OTLP gRPC')
    .addOption(new Option('--config <file>', 'YAML or JSON file with any of these options (long names as keys)').env('GEARBOX_CONFIG'))
    .addOption(new Option('--cgroup <path>', 'cgroup v2 directory to trace (default: the whole host)').env('GEARBOX_CGROUP'))
    .addOption(
      new Option('--exclude-comm <names>', 'comma-separated process names (comm) never to trace; repeatable')
        .env('GEARBOX_EXCLUDE_COMM')
        .argParser((v, earlier: string[] | undefined) => [...(earlier ?? []), ...commList(v)]),
    )
    .addOption(
      new Option('--trust-peers <cidrs>', 'accept propagated context only from these networks, e.g. 10.0.0.0/8,fd00::/8; repeatable (default: from every peer)')
        .env('GEARBOX_TRUST_PEERS')
        .argParser((v, earlier: ReturnType<typeof parseTrustPeers> | undefined) => {
          try {
            return [...(earlier ?? []), ...parseTrustPeers(v)];
          } catch (e) {
            throw new InvalidArgumentError((e as Error).message);
          }
        }),
    )
    .addOption(
      new Option('--service-name-from <source>', 'service.name from the process environment (OTEL_SERVICE_NAME), its process name, or its cgroup')
        .choices(['env', 'comm', 'cgroup'])
        .default('env')
        .env('GEARBOX_SERVICE_NAME_FROM'),
    )
    .addOption(new Option('--console', 'also print each trace as a tree on stdout').env('GEARBOX_CONSOLE'))
    .addOption(new Option('--no-export', 'do not export over OTLP (with --console: only print)'))
    .addOption(
      new Option(
        '--otlp-encoder <which>',
        "what encodes spans for OTLP: gearbox (the agent's own encoder) or opentelemetry (the OpenTelemetry exporter's serializer: the same bytes, more CPU)",
      )
        .choices(['gearbox', 'opentelemetry'])
        .default('gearbox')
        .env('GEARBOX_OTLP_ENCODER'),
    )
    .addOption(
      new Option(
        '--otlp-transport <which>',
        "how requests reach the endpoint: auto (plaintext endpoints over Node's HTTP/2 client without a copy, TLS and unix sockets over @grpc/grpc-js) or grpc-js (always @grpc/grpc-js: its proxies, DNS re-resolution and load balancing)",
      )
        .choices(['auto', 'grpc-js'])
        .default('auto')
        .env('GEARBOX_OTLP_TRANSPORT'),
    )
    .addOption(
      new Option('--idle-ms <n>', 'a message ends after this long without data').default(2000).env('GEARBOX_IDLE_MS').argParser(positiveInt('--idle-ms')),
    )
    .addOption(
      new Option('--ringbuf-bytes <n>', 'ring buffer size, a power of two')
        .default(8 * 1024 * 1024)
        .env('GEARBOX_RINGBUF_BYTES')
        .argParser(positiveInt('--ringbuf-bytes')),
    )
    .addOption(
      new Option(
        '--hooks <set>',
        'how syscalls are hooked: raw (one program on raw_syscalls sys_enter/sys_exit), per-syscall (syscalls:sys_*_NAME tracepoints), or auto (raw, else per-syscall)',
      )
        .choices(HOOK_CHOICES)
        .default('auto')
        .env('GEARBOX_HOOKS'),
    )
    .addOption(
      new Option(
        '--max-cpu <cores>',
        'CPU the agent may use on average, in cores; above it, fewer new traces are sampled (whole traces), and more again once there is room; new traces are also capped in the kernel at what the budget pays for, so a sudden load is held at once (0: no limit)',
      )
        .default(defaultMaxCpu(cpus), `a tenth of this machine's ${cpus} CPUs`)
        .env('GEARBOX_MAX_CPU')
        .argParser(nonNegativeNumber('--max-cpu')),
    )
    .addOption(
      new Option(
        '--cpu-priority <p>',
        "the agent's threads: normal, or idle (SCHED_IDLE: they run only when no other task wants the CPU; spares the services' tail latency, but on a saturated machine the agent falls behind)",
      )
        .choices(CPU_PRIORITIES)
        .default('normal')
        .env('GEARBOX_CPU_PRIORITY'),
    )
    .addOption(
      new Option('--poll-ms <n>', 'longest wait before draining the ring buffer').default(100).env('GEARBOX_POLL_MS').argParser(positiveInt('--poll-ms')),
    )
    .addOption(
      new Option('--stats-interval-ms <n>', 'log counters this often (0: never)')
        .default(30000)
        .env('GEARBOX_STATS_INTERVAL_MS')
        .argParser(nonNegativeInt('--stats-interval-ms')),
    )
    .addOption(new Option('--record <file>', 'also write the raw kernel events to this file (for replay)').env('GEARBOX_RECORD'))
    .addOption(
      new Option('--metrics-port <n>', "serve the agent's own metrics for Prometheus on this port, at /metrics (0: any free port)")
        .env('GEARBOX_METRICS_PORT')
        .argParser(nonNegativeInt('--metrics-port')),
    )
    .addOption(new Option('--metrics-host <addr>', 'address the metrics endpoint listens on').default('0.0.0.0').env('GEARBOX_METRICS_HOST'))
    .addOption(
      new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info').env('GEARBOX_LOG_LEVEL'),
    )
    .addHelpText(
      'after',
      `
Every option can also be set with its GEARBOX_* variable (shown above) or in
the --config file. Standard OpenTelemetry variables:
  OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  (default http://localhost:4317)
  OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _INSECURE, _CERTIFICATE
  OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT
  OTEL_TRACES_SAMPLER (always_on | always_off | traceidratio | parentbased_*), OTEL_TRACES_SAMPLER_ARG
  OTEL_RESOURCE_ATTRIBUTES   added to every traced process's resource`,
    )
    .action(async function (this: Command) {
      let o: Record<string, unknown>;
      try {
        o = applyConfigFile(this);
      } catch (e) {
        log.fatal((e as Error).message);
        process.exitCode = 1;
        return;
      }
      log.level = String(o.logLevel);
      const root = cgroup2Root();
      const cgroupPath = (o.cgroup as string | undefined) ?? root ?? '/sys/fs/cgroup';
      const { Agent } = await import('../agent/agent');
      const exporters: SpanExporter[] = [];
      if (o.console) {
        const { TraceTreePrinter } = await import('../export/trace-tree-printer');
        exporters.push(new TraceTreePrinter());
      }
      if (o.export !== false) {
        if (o.otlpEncoder === 'opentelemetry') {
          const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-grpc');
          exporters.push(new OTLPTraceExporter());
        } else {
          const { OtlpGrpcSpanExporter } = await import('../otlp/otlp-grpc-exporter');
          exporters.push(new OtlpGrpcSpanExporter({}, o.otlpTransport as 'auto' | 'grpc-js'));
        }
      }
      let agent;
      try {
        const { FanOutExporter } = await import('../export/trace-tree-printer');
        agent = new Agent({
          cgroupPath,
          filterCgroup: o.cgroup !== undefined,
          excludeComms: (o.excludeComm as string[] | undefined) ?? [],
          trustPeers: o.trustPeers as PeerPrefix[] | undefined,
          idleMs: o.idleMs as number,
          sampleRatio: sampleRatioFromEnv(),
          maxCpuCores: o.maxCpu as number,
          cpuPriority: o.cpuPriority as CpuPriority,
          ringBufferBytes: o.ringbufBytes as number,
          hooks: o.hooks as HookChoice,
          pollMs: o.pollMs as number,
          statsIntervalMs: o.statsIntervalMs as number,
          recordFile: o.record as string | undefined,
          metricsPort: o.metricsPort as number | undefined,
          metricsHost: o.metricsHost as string,
          serviceNameFrom: o.serviceNameFrom as ServiceNameSource,
          resourceAttributes: resourceAttributesFromEnv(),
          exporter: exporters.length === 1 ? exporters[0] : new FanOutExporter(exporters),
          log,
        });
        await agent.serveMetrics(); // first: a port in use fails before anything is attached
        agent.start();
      } catch (e) {
        const msg = e instanceof PrerequisiteError ? `cannot start: ${e.message}` : (e as Error).message;
        log.fatal(msg);
        process.exitCode = 1;
        return;
      }
      const gone = await new Promise<boolean>((resolve) => {
        const onSignal = (sig: string) => {
          log.info({ signal: sig }, 'stopping');
          resolve(false);
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        void agent.scopeGone.then(() => resolve(true));
      });
      await agent.stop();
      if (gone) process.exit(1); // the signal handlers still wait: leave with the error
    });
  program
    .command('doctor')
    .description('check every prerequisite (privileges, kernel, BTF, cgroup v2, bpffs, tracefs, libbpf, BPF object, build tools)')
    .action(async () => {
      const { allChecks } = await import('../bpf/prerequisites');
      const { defaultObjectPath } = await import('../bpf/kernel-tracer');
      const checks = allChecks(defaultObjectPath());
      const w = Math.max(...checks.map((c) => c.name.length));
      for (const c of checks) {
        process.stdout.write(`${c.ok ? ' ok ' : 'FAIL'}  ${c.name.padEnd(w)}  ${c.detail}\n`);
        if (!c.ok && c.fix) process.stdout.write(`      ${' '.repeat(w)}  fix: ${c.fix}\n`);
      }
      const failed = checks.filter((c) => !c.ok && c.name !== 'bpffs');
      process.stdout.write(failed.length ? `\n${failed.length} requirement(s) missing\n` : '\nready\n');
      process.exitCode = failed.length ? 1 : 0;
    });

  program
    .command('demo')
    .description('run a sample microservice chain on four namespace hosts, trace it, and print each trace as a tree')
    .addOption(new Option('--requests <n>', 'requests to send (0: until Ctrl-C)').default(20).argParser((v) => Number(v)))
    .addOption(new Option('--delay-ms <n>', 'pause between requests').default(300).argParser((v) => Number(v)))
    .action(async (o) => {
      const { runDemo } = await import('./demo');
      process.exitCode = await runDemo({ requests: o.requests, delayMs: o.delayMs, log: log.child({}, { level: process.env.GEARBOX_LOG_LEVEL ?? 'warn' }) });
    });
  return program;
}

if (require.main === module) {
  buildCli()
    .parseAsync(process.argv)
    .catch((e: Error) => {
      log.fatal(e.message);
      process.exitCode = 1;
    });
}
