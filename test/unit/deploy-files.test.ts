/** The deployment files parse and hold what they promise. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');

test('Kubernetes: namespace, config, collector service and a DaemonSet with the mounts and capabilities the agent needs', () => {
  const docs = parseAllDocuments(read('deploy/kubernetes/gearbox.yaml')).map((d) => {
    assert.equal(d.errors.length, 0, String(d.errors[0]));
    return d.toJS();
  });
  const kinds = docs.map((d) => d.kind);
  assert.deepEqual(kinds, ['Namespace', 'ConfigMap', 'Service', 'DaemonSet']);
  const ds = docs[3];
  const pod = ds.spec.template.spec;
  assert.equal(pod.hostPID, true);
  const mounts = pod.containers[0].volumeMounts.map((m: { mountPath: string }) => m.mountPath).sort();
  assert.deepEqual(mounts, ['/sys/fs/bpf', '/sys/fs/cgroup', '/sys/kernel/btf', '/sys/kernel/tracing']);
  const caps = pod.containers[0].securityContext.capabilities.add;
  for (const c of ['BPF', 'PERFMON', 'NET_ADMIN']) assert.ok(caps.includes(c), `missing capability ${c}`);
  assert.deepEqual(pod.containers[0].args, ['run']);
  assert.equal(docs[1].data.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://otel-collector.gearbox.svc:4317');
  assert.equal(docs[2].spec.ports[0].port, 4317);
  // The agent's own metrics: served on the port Prometheus is told to scrape.
  assert.equal(docs[1].data.GEARBOX_METRICS_PORT, '9464');
  assert.equal(pod.containers[0].ports[0].containerPort, 9464);
  assert.equal(ds.spec.template.metadata.annotations['prometheus.io/port'], '9464');
});

test('Collector: OTLP in, Jaeger and a vendor out, with memory_limiter, batch and retries', () => {
  const c = parse(read('otel-config/collector.yaml'));
  assert.deepEqual(c.service.pipelines.traces.receivers, ['otlp']);
  assert.deepEqual(c.service.pipelines.traces.processors, ['memory_limiter', 'batch']);
  assert.deepEqual(c.service.pipelines.traces.exporters, ['otlp/jaeger', 'otlphttp/vendor']);
  assert.ok(c.exporters['otlphttp/vendor'].headers['api-key']);
  for (const e of Object.values(c.exporters) as { retry_on_failure: { enabled: boolean } }[]) assert.equal(e.retry_on_failure.enabled, true);
});

test('Jaeger compose: Jaeger v2 with OTLP 4317/4318 and the UI on 16686', () => {
  const c = parse(read('docker-compose.jaeger.yml'));
  assert.match(c.services.jaeger.image, /^jaegertracing\/jaeger:/);
  assert.deepEqual(
    c.services.jaeger.ports.map((p: string) => p.split(':')[0]),
    ['4317', '4318', '16686'],
  );
});
