#!/usr/bin/env node
/** `gearbox` command line. */
import { Command, InvalidArgumentError, Option } from 'commander';
import { log } from '../log';
import { cgroup2Root, PrerequisiteError } from '../bpf/prerequisites';
import { resourceAttributesFromEnv, sampleRatioFromEnv } from './config';

function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return n;
  };
}

export function buildCli(): Command {
  const program = new Command('gearbox')
    .description('Zero-code distributed tracing: eBPF -> OpenTelemetry spans over OTLP gRPC')
    .version('0.1.0');

  program
    .command('run')
    .description('trace the processes of a cgroup v2 subtree until SIGINT/SIGTERM, exporting spans over OTLP gRPC')
    .addOption(new Option('--cgroup <path>', 'cgroup v2 directory to trace (default: the whole host)').env('GEARBOX_CGROUP'))
    .addOption(new Option('--idle-ms <n>', 'a message ends after this long without data').default(2000).argParser(positiveInt('--idle-ms')))
    .addOption(new Option('--ringbuf-bytes <n>', 'ring buffer size, a power of two').default(8 * 1024 * 1024).argParser(positiveInt('--ringbuf-bytes')))
    .addOption(new Option('--poll-ms <n>', 'longest wait before draining the ring buffer').default(100).argParser(positiveInt('--poll-ms')))
    .addOption(new Option('--stats-interval-ms <n>', 'log counters this often (0: never)').default(30000).argParser((v) => Number(v)))
    .addOption(new Option('--service-name-from <source>', 'service.name from the process environment or its executable').choices(['env', 'comm']).default('env'))
    .addOption(new Option('--record <file>', 'also write the raw kernel events to this file (for replay)'))
    .addHelpText(
      'after',
      `
Environment:
  OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  (default http://localhost:4317)
  OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _INSECURE, _CERTIFICATE
  OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT
  OTEL_TRACES_SAMPLER (always_on | always_off | traceidratio | parentbased_*), OTEL_TRACES_SAMPLER_ARG
  OTEL_RESOURCE_ATTRIBUTES   added to every traced process's resource
  GEARBOX_LOG_LEVEL          pino level (default info)`,
    )
    .action(async (o) => {
      const root = cgroup2Root();
      const cgroupPath: string = o.cgroup ?? root ?? '/sys/fs/cgroup';
      const { Agent } = await import('../agent');
      let agent;
      try {
        agent = new Agent({
          cgroupPath,
          filterCgroup: o.cgroup !== undefined,
          idleMs: o.idleMs,
          sampleRatio: sampleRatioFromEnv(),
          ringBufferBytes: o.ringbufBytes,
          pollMs: o.pollMs,
          statsIntervalMs: o.statsIntervalMs,
          recordFile: o.record,
          serviceNameFrom: o.serviceNameFrom,
          resourceAttributes: resourceAttributesFromEnv(),
          log,
        });
        agent.start();
      } catch (e) {
        const msg = e instanceof PrerequisiteError ? `cannot start: ${e.message}` : (e as Error).message;
        log.fatal(msg);
        process.exitCode = 1;
        return;
      }
      await new Promise<void>((resolve) => {
        const onSignal = (sig: string) => {
          log.info({ signal: sig }, 'stopping');
          resolve();
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
      });
      await agent.stop();
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
