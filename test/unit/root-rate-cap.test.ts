import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ASSUMED_MICROS_PER_TRACE, RootRateCap } from '../../src/overhead/root-rate-cap';

/** A cap fed interval by interval (it takes cumulative readings, as the agent reads them). */
function capWith(opts: ConstructorParameters<typeof RootRateCap>[0]) {
  const cap = new RootRateCap(opts);
  const read = cap.observe.bind(cap);
  const total = { atMs: 0, cpuMicros: 0, traces: 0 };
  read({ ...total });
  /** One interval's agent CPU (µs), new sampled traces and length (ms). */
  const observe = (cpuMicros: number, traces: number, intervalMs: number) => {
    total.atMs += intervalMs;
    total.cpuMicros += cpuMicros;
    total.traces += traces;
    return read({ ...total });
  };
  return Object.assign(cap, { observe });
}

test('before any measurement the cap is what the budget pays for at the assumed cost; no budget, no cap', () => {
  const cap = capWith({ budgetCores: 0.2 });
  // 0.2 cores = 200,000 µs a second; at 100 µs a trace 2,000 traces.
  assert.equal(DEFAULT_ASSUMED_MICROS_PER_TRACE, 100);
  assert.equal(cap.perSecond, 2000);
  assert.equal(new RootRateCap({ budgetCores: 0.2, headroom: 1.5 }).perSecond, 3000);
  assert.equal(cap.burst, 500, 'bursts of a quarter second');
  assert.equal(new RootRateCap({ budgetCores: 0.01 }).burst, 64, 'and never fewer than 64 at once');
  const none = capWith({ budgetCores: 0 });
  assert.equal(none.perSecond, 0);
  assert.equal(none.observe(1e6, 10_000, 1000), undefined, 'no budget: never a cap');
  assert.equal(none.perSecond, 0);
});

test('a busy agent measures its cost per trace over 5-s windows, and the cap follows it (smoothed)', (t) => {
  const cap = capWith({ budgetCores: 0.2 });
  // The agent at 0.25 cores for 5,000 new traces a second: 50 µs a trace.
  const caps: number[] = [];
  for (let i = 0; i < 4; i++) assert.equal(cap.observe(250_000, 5000, 1000), undefined, 'nothing before a whole window');
  for (let i = 0; i < 40; i++) {
    const next = cap.observe(250_000, 5000, 1000);
    if (next !== undefined) caps.push(next);
  }
  t.diagnostic(`caps ${caps.join(', ')}; cost ${cap.microsPerTrace.toFixed(1)} µs`);
  assert.ok(Math.abs(cap.microsPerTrace - 50) < 1, 'the measured cost converges on 50 µs');
  assert.ok(Math.abs(cap.perSecond - 4000) <= 0.2 * 4000, `the cap converges on 0.2 cores / 50 µs = 4,000 (is ${cap.perSecond})`);
  assert.ok(caps.length >= 1 && caps.length <= 4, 'the cap moves only when it changes by more than a fifth');
});

test('an idle or lightly loaded agent measures nothing: its fixed costs would make traces look dear', () => {
  const cap = capWith({ budgetCores: 0.2 });
  // 0.02 cores for 20 traces a second: 1,000 µs a trace if believed.
  for (let i = 0; i < 5; i++) assert.equal(cap.observe(20_000, 20, 1000), undefined);
  // 0.05 cores (a quarter of the budget) for 500 traces a second: still not busy.
  for (let i = 0; i < 10; i++) assert.equal(cap.observe(50_000, 500, 1000), undefined);
  // Busy, but too few traces to tell.
  for (let i = 0; i < 10; i++) assert.equal(cap.observe(300_000, 10, 1000), undefined);
  assert.equal(cap.perSecond, 2000, 'the assumed cost stands');
});

test('dearer traces lower the cap', () => {
  const cap = capWith({ budgetCores: 0.5 });
  for (let i = 0; i < 50; i++) cap.observe(600_000, 1000, 1000); // 600 µs a trace
  assert.ok(Math.abs(cap.perSecond - 833) <= 0.2 * 833, `0.5 cores / 600 µs = 833 (is ${cap.perSecond})`);
  assert.ok(cap.perSecond >= 1);
});

test('one noisy second does not move the cap: the window averages it out', () => {
  const cap = capWith({ budgetCores: 0.2 });
  // ~1,000 traces a second at ~100 µs each, one second with an export burst
  // (three times the CPU): the window's cost is 140 µs, not 300.
  const seconds = [100_000, 100_000, 300_000, 100_000, 100_000];
  let moved: number | undefined;
  for (const cpu of seconds) moved = cap.observe(cpu, 1000, 1000) ?? moved;
  assert.ok(cap.microsPerTrace < 125, `smoothed cost ${cap.microsPerTrace} µs`);
  assert.ok(cap.perSecond >= 1600, `the cap (${cap.perSecond}/s) stays well above the 1,000 a second offered`);
  void moved;
});
