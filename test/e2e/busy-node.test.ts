/**
 * A busy node (test/support/busy-node.ts), short: thousands of idle
 * keep-alive connections held through nginx while new connections and
 * kept-alive requests arrive at a steady rate, /metrics scraped throughout.
 * No event may be lost; no scrape, stats line or other periodic work of the
 * agent may hold its thread (and so the ring buffer) for long; its RSS must
 * come back near its idle level once the load is over. Then the agent's
 * state maps are filled to their bounds: a scrape and a stats line still
 * cost what they cost with empty maps. `npm run soak` runs it at full length.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Lab, requireRootLab, type Host } from '../support/lab';
import { OtlpReceiver } from '../support/otlp-receiver';
import { runBusyNode, scrape, type BusyNodeResult } from '../support/busy-node';
import { agentLruMaps, fillMap } from '../support/map-filler';
import { sleep } from '../support/process-watch';
import type { TaskTiming } from '../../src/overhead/loop-watch';

const ROOT = path.resolve(__dirname, '..', '..', '..');
/** The bound on a scrape and a stats line (the target). */
const SCRAPE_MS = 50;
/** The bound on any periodic task, and on the ring buffer's wait behind other work. */
const TASK_MS = 20;

let lab: Lab;
let server: Host;
let client: Host;
const receiver = new OtlpReceiver(false);
let result: BusyNodeResult;

before(async () => {
  requireRootLab();
  await receiver.start();
  lab = new Lab(path.join(ROOT, 'test-logs', 'busy-node'));
  [server, client] = lab.create(2);
});
after(async () => {
  if (result) await Lab.stop(result.agent.proc);
  await lab?.destroy();
  await receiver.stop();
});

const fmt = (loop: Record<string, TaskTiming>) =>
  Object.entries(loop)
    .map(([k, t]) => `${k} ${t.count}x max ${t.maxMs.toFixed(2)} ms`)
    .join(', ');

test('churn through nginx with thousands of idle connections and scrapes: nothing lost, no stall, memory comes back', async (t) => {
  result = await runBusyNode({
    lab,
    server,
    client,
    otlpEndpoint: receiver.endpoint,
    idleConnections: 3000,
    newConnectionsPerSecond: 300,
    requestsPerSecond: 2000,
    loadSeconds: 12,
    scrapeEveryMs: 250,
    settleSeconds: 20,
    progress: (l) => t.diagnostic(l),
  });
  const r = result;
  t.diagnostic(
    `requests: ${r.requests.newConnections} on new connections, ${r.requests.keptAlive} kept alive, ${r.requests.errors} errors; ${r.idleHeld} idle held`,
  );
  t.diagnostic(
    `scrapes: ${r.scrapes.count}, median ${r.scrapes.medianMs.toFixed(1)} ms, max ${r.scrapes.maxMs.toFixed(1)} ms (client side), ${r.scrapes.failed} failed`,
  );
  t.diagnostic(`agent: ${fmt(r.loop)}`);
  t.diagnostic(
    `events sent ${r.kernel.events_sent}, lost ${r.kernel.events_lost}; spans exported ${r.export.spansExported}, dropped ${r.export.spansDropped}; RSS idle ${r.rssMiB.idle.toFixed(1)}, peak ${r.rssMiB.peak.toFixed(1)}, after ${r.rssMiB.after.toFixed(1)} MiB`,
  );

  assert.equal(r.idleHeld, 3000, 'the idle connections were all held');
  assert.ok(r.requests.newConnections > 1000 && r.requests.keptAlive > 5000, 'the load ran');
  assert.equal(r.kernel.events_lost, 0, 'no event lost');
  assert.equal(r.export.exportErrors, 0);
  assert.equal(r.scrapes.failed, 0);
  assert.ok(r.scrapes.count >= 30, 'scraped throughout');
  assert.ok(r.loop.scrape?.maxMs <= SCRAPE_MS, `a scrape took ${r.loop.scrape?.maxMs} ms in the agent`);
  assert.ok(r.loop['stats-line']?.maxMs <= SCRAPE_MS, `a stats line took ${r.loop['stats-line']?.maxMs} ms`);
  for (const [task, timing] of Object.entries(r.loop)) {
    if (task === 'memory-relief' || task === 'scrape' || task === 'stats-line') continue; // relief runs only when quiet; scrape and stats line are bounded above
    assert.ok(timing.maxMs <= TASK_MS, `${task} held the agent's thread for ${timing.maxMs} ms`);
  }
  assert.ok(r.rssMiB.after <= r.rssMiB.idle * 1.2, `RSS ${r.rssMiB.after.toFixed(1)} MiB after the load, idle ${r.rssMiB.idle.toFixed(1)} MiB`);
});

test('with every state map full (65,536 entries), a scrape and a stats line cost what they do with empty maps', async (t) => {
  assert.ok(result, 'the churn test ran first');
  const { proc, log, metricsPort } = result.agent;
  const maps = agentLruMaps(proc.pid!);
  assert.equal(maps.length, 7, `the agent's state maps: ${JSON.stringify(maps)}`);
  const emptyMs: number[] = [];
  for (let i = 0; i < 5; i++) emptyMs.push(await scrape(metricsPort));
  for (const m of maps) fillMap(m);
  const fullMs: number[] = [];
  for (let i = 0; i < 10; i++) fullMs.push(await scrape(metricsPort));
  const since = log().length;
  await sleep(2500);
  const stats = log()
    .slice(since)
    .split('\n')
    .filter((l) => l.includes('"msg":"stats"'))
    .map((l) => JSON.parse(l) as { maps: Record<string, { entries: number; max: number }>; loop: Record<string, TaskTiming> });
  assert.ok(stats.length > 0, 'stats lines were logged');
  const last = stats[stats.length - 1];
  const occupancy = Object.entries(last.maps).map(([k, m]) => `${k} ${m.entries}/${m.max}`);
  t.diagnostic(`maps: ${occupancy.join(', ')}`);
  t.diagnostic(`scrape (client side) empty ${Math.max(...emptyMs).toFixed(1)} ms max, full ${Math.max(...fullMs).toFixed(1)} ms max; agent: ${fmt(last.loop)}`);
  for (const [name, m] of Object.entries(last.maps)) assert.ok(m.entries >= 0.9 * m.max, `${name}: ${m.entries} of ${m.max} counted`);
  assert.ok(Math.max(...fullMs) <= SCRAPE_MS, `scrapes with full maps: ${fullMs.map((x) => x.toFixed(1)).join(', ')} ms`);
  assert.ok(last.loop.stats.maxMs <= SCRAPE_MS, `a stats snapshot took ${last.loop.stats.maxMs} ms`);
});
