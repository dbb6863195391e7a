/**
 * Short runs of the fidelity scenarios (npm run fidelity runs the long ones):
 * each scenario on four namespace hosts with one agent per host, scored
 * against the services' own ground truth. Floors that cannot pass by accident.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { requireRootLab } from '../support/lab';
import { OtlpReceiver } from '../support/otlp-receiver';
import { runScenario, markdownTable, type RunResult } from '../../fidelity/harness';
import { SCENARIOS } from '../../fidelity/scenarios';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const REQUESTS = 60;
/** scenario id -> [concurrencies, floor in % exact] */
const FLOORS: Record<string, [number[], number]> = {
  'threads-new-conn': [[4, 16], 99],
  'threads-keepalive-pool': [[4], 99],
  'nginx-upstream-keepalive': [[4], 99],
  'event-loop-keepalive': [[8], 95],
  'event-loop-small-pool': [[8], 95],
  'long-responses': [[4], 99],
  'pipelined-requests': [[4], 99],
  // The first request on each connection opened before the agent is in flight
  // (its read already blocked) when tracing starts: at c=4 there are 4 client
  // connections and at most 4 pooled ones, so at most 8 of 60 may miss a span.
  'preexisting-connections': [[4], (100 * (REQUESTS - 8)) / REQUESTS],
  'fanout-threads': [[4], 99],
  'fanout-event-loop': [[4], 99],
};

describe('trace fidelity against ground truth (short runs)', () => {
  let receiver: OtlpReceiver;
  const all: RunResult[] = [];

  before(async () => {
    requireRootLab();
    receiver = new OtlpReceiver();
    await receiver.start();
  });

  after(async () => {
    await receiver?.stop();
  });

  for (const s of SCENARIOS.filter((x) => FLOORS[x.id])) {
    const [concurrencies, floor] = FLOORS[s.id];
    test(`${s.title}: >= ${floor.toFixed(1)} % exact, no merged traces`, async (t) => {
      const results = await runScenario(s, receiver, {
        concurrencies,
        requests: REQUESTS,
        logRoot: path.join(ROOT, 'test-logs', 'fidelity-ci'),
        log: (l) => t.diagnostic(l),
      });
      all.push(...results);
      for (const r of results) {
        assert.equal(r.requests, REQUESTS, `ground truth holds ${r.requests} client requests, expected ${REQUESTS}`);
        assert.equal(r.failedRequests, 0, 'some requests failed: the services or the lab are broken');
        assert.ok(r.percentExact >= floor, `c=${r.concurrency}: ${r.percentExact.toFixed(1)} % exact < ${floor} %: ${r.examples.join(' | ')}`);
        assert.equal(r.mergedTraces, 0, `c=${r.concurrency}: ${r.mergedTraces} merged traces`);
      }
    });
  }

  test('summary table', (t) => {
    t.diagnostic(`\n${markdownTable(all)}`);
    assert.ok(all.length >= Object.values(FLOORS).reduce((a, [c]) => a + c.length, 0));
  });
});
