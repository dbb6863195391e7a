/**
 * What the agent's export path loads: the OTLP trace parts of the
 * OpenTelemetry packages, not their metrics and logs serializers (which pull
 * in @opentelemetry/sdk-metrics and api-logs: memory for code never run).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';

test('the span pipeline and its exporter load no metrics or logs packages', () => {
  const pipeline = path.resolve(__dirname, '..', '..', 'src', 'export', 'span-pipeline.js');
  const script = `
    const { createSpanPipeline } = require(${JSON.stringify(pipeline)});
    const p = createSpanPipeline({ warn() {}, info() {}, error() {}, debug() {} });
    const mods = Object.keys(require.cache);
    console.log(JSON.stringify({ total: mods.length, unwanted: mods.filter((m) => /@opentelemetry\\/(sdk-metrics|api-logs)\\//.test(m)) }));
    p.shutdown().then(() => process.exit(0));
  `;
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim().split('\n').pop()!);
  console.log(`span pipeline with its OTLP/gRPC exporter: ${out.total} modules loaded, ${out.unwanted.length} of them from sdk-metrics or api-logs`);
  assert.deepEqual(out.unwanted, []);
});
