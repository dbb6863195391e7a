/**
 * The metrics endpoint exposes the periodic work's timings and the ring
 * buffer's backlog wait as histograms, and leaves out map occupancy the
 * kernel cannot count (-1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMetrics, type AgentStatsSnapshot } from '../../src/agent/metrics';
import { LoopWatch } from '../../src/overhead/loop-watch';

function snapshot(): AgentStatsSnapshot {
  return {
    kernel: { events_lost: 0 },
    correlator: { incompleteExchanges: 0, exchanges: 0 },
    export: { spansExported: 0, spansDropped: 0, spansFailed: 0, exportErrors: 0, queued: 0, maxQueueSize: 8192 },
    records: 0,
    decodeErrors: 0,
    maps: { conn_map: { entries: 12, max: 65536 }, pending_map: { entries: -1, max: 65536 } },
    sampling: { ratio: 1, configured: 1, maxCpuCores: 0 },
    loop: {},
  };
}

test('task durations and backlog waits reach /metrics as histograms; uncountable maps are left out', async () => {
  let now = 0;
  const watch = new LoopWatch(() => now);
  const metrics = new AgentMetrics(snapshot, watch);
  watch.time('stats', () => (now += 3));
  watch.sliceEnded(true);
  now += 30;
  watch.sliceStarting();
  const port = await metrics.listen(0, '127.0.0.1');
  try {
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(body, /^gearbox_agent_task_duration_seconds_bucket\{le="0\.005",task="stats"\} 1$/m);
    assert.match(body, /^gearbox_agent_task_duration_seconds_bucket\{le="0\.002",task="stats"\} 0$/m);
    assert.match(body, /^gearbox_ring_backlog_wait_seconds_bucket\{le="0\.05"\} 1$/m);
    assert.match(body, /^gearbox_ring_backlog_wait_seconds_bucket\{le="0\.02"\} 0$/m);
    assert.match(body, /^gearbox_map_entries\{map="conn_map"\} 12$/m);
    assert.match(body, /^gearbox_contexts_expired_total 0$/m);
    assert.doesNotMatch(body, /^gearbox_map_entries\{map="pending_map"\}/m);
    const second = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(second, /^gearbox_agent_task_duration_seconds_count\{task="scrape"\} 1$/m, 'the first scrape was timed');
  } finally {
    await metrics.close();
  }
});
