/** The CPU budget's controller against a simulated agent whose cost lags its sampling ratio. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DROP_HOLD_MS, CpuBudget } from '../../src/overhead/cpu-budget';

/**
 * An agent whose CPU in second t is `baseCores` plus `costAtFull(t)` times the
 * ratio in force one second earlier (spans are exported a batch delay after
 * their requests). Readings once a second, as the agent takes them.
 */
function simulate(budget: CpuBudget, seconds: number, costAtFull: (t: number) => number, baseCores = 0.01) {
  let cpuMicros = 0;
  let prevRatio = budget.ratio;
  const cores: number[] = [];
  const ratios: number[] = [];
  for (let t = 1; t <= seconds; t++) {
    const used = baseCores + costAtFull(t) * prevRatio;
    cores.push(used);
    cpuMicros += used * 1e6;
    prevRatio = budget.ratio;
    budget.update({ atMs: t * 1000, cpuMicros, dropped: 0 });
    ratios.push(budget.ratio);
  }
  return { cores, ratios };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test('overloaded: the agent settles within its budget and the ratio stays steady', (t) => {
  const b = new CpuBudget({ budgetCores: 0.25, ceiling: 1 });
  const { cores, ratios } = simulate(b, 60, () => 1.2);
  const settled = cores.slice(20);
  const worst = Math.max(...settled);
  t.diagnostic(
    `1.2 cores of work at ratio 1, budget 0.25: ratio ${ratios[59].toFixed(3)}, mean ${mean(settled).toFixed(3)} cores, worst second ${worst.toFixed(3)} (seconds 21-60)`,
  );
  assert.ok(mean(settled) <= 0.25, `mean ${mean(settled)} cores over the budget`);
  assert.ok(mean(settled) >= 0.15, `mean ${mean(settled)} cores: shed far more than needed`);
  assert.ok(worst <= 0.3, `a second at ${worst} cores`);
  const late = ratios.slice(20);
  assert.ok(Math.max(...late) / Math.min(...late) <= 2, `ratio swings ${Math.min(...late)}..${Math.max(...late)}`);
});

test('the load goes away: the ratio climbs back to the configured one', (t) => {
  const b = new CpuBudget({ budgetCores: 0.25, ceiling: 0.5 });
  const { ratios } = simulate(b, 90, (t) => (t <= 30 ? 5 : 0.05));
  assert.ok(ratios[29] < 0.1, `ratio ${ratios[29]} under 5 cores of work`);
  const back = ratios.findIndex((r, i) => i >= 30 && r === 0.5);
  t.diagnostic(`ratio ${ratios[29].toFixed(4)} after 30 s overloaded; back to 0.5 after ${back - 29} s`);
  assert.ok(back > 0 && back - 29 <= 40, `not back at the ceiling (${ratios[89]})`);
  assert.ok(
    ratios.every((r) => r <= 0.5),
    'the configured ratio was exceeded',
  );
});

test('a cut for CPU needs a whole window over the budget, and the reading after a change only starts one; a burst is absorbed; a budget of 0 never sheds; the floor holds', () => {
  const b = new CpuBudget({ budgetCores: 0.1, ceiling: 1, windowMs: 3000 });
  let cpu = 0;
  const at = (ms: number, cores: number) => b.update({ atMs: ms, cpuMicros: (cpu += cores * 1e6), dropped: 0 });
  assert.equal(at(0, 0), undefined);
  assert.equal(at(1000, 1), undefined);
  assert.equal(at(2000, 1), undefined);
  const d = at(3000, 1);
  assert.ok(d && d.ratio < 1 && Math.abs(d.cpuCores - 1) < 1e-9, JSON.stringify(d));
  // Still a core in the next second (spans sampled before the cut): not held against the new ratio.
  assert.equal(at(4000, 1), undefined);
  assert.equal(at(5000, 0.5), undefined);
  assert.equal(at(6000, 0.5), undefined);
  const again = at(7000, 0.5);
  assert.ok(again && again.ratio < d.ratio && Math.abs(again.cpuCores - 0.5) < 1e-9, JSON.stringify(again));

  const bursty = new CpuBudget({ budgetCores: 0.2, ceiling: 1, windowMs: 3000 });
  let c2 = 0;
  const decisions = [0, 0.05, 0.45, 0.05, 0.05, 0.05].map((cores, i) => bursty.update({ atMs: i * 1000, cpuMicros: (c2 += cores * 1e6), dropped: 0 }));
  assert.deepEqual(decisions, new Array(6).fill(undefined), 'one second at 0.45 cores in a window averaging under 0.2');
  const off = new CpuBudget({ budgetCores: 0, ceiling: 1 });
  assert.equal(off.enabled, false);
  assert.deepEqual(simulate(off, 20, () => 10).ratios, new Array(20).fill(1));

  const floored = new CpuBudget({ budgetCores: 0.05, ceiling: 1, floor: 0.001 });
  simulate(floored, 120, () => 0, 0.2); // the agent's own base cost alone is over budget
  assert.equal(floored.ratio, 0.001);
});

test('drops while busy cut at once: by half under budget, and by half the proportional cut over it; drops while idle (the exporter down) cut nothing', () => {
  const b = new CpuBudget({ budgetCores: 2, ceiling: 1 });
  b.update({ atMs: 0, cpuMicros: 0, dropped: 0 });
  b.update({ atMs: 1000, cpuMicros: 900_000, dropped: 0 });
  const d = b.update({ atMs: 2000, cpuMicros: 1_800_000, dropped: 7 }); // its JavaScript thread full, under a budget of 2
  assert.deepEqual(d && { ratio: d.ratio, dropped: d.dropped }, { ratio: 0.5, dropped: 7 });

  const outage = new CpuBudget({ budgetCores: 0.2, ceiling: 1 });
  let cpu = 0;
  for (let t = 0; t <= 60; t++) assert.equal(outage.update({ atMs: t * 1000, cpuMicros: (cpu += 30_000), dropped: t * 1000 }), undefined);
  assert.equal(outage.ratio, 1, 'a minute of drops at 0.03 cores: the exporter, not the agent');

  const busy = new CpuBudget({ budgetCores: 0.2, ceiling: 1 });
  busy.update({ atMs: 0, cpuMicros: 0, dropped: 0 });
  const first = busy.update({ atMs: 1000, cpuMicros: 900_000, dropped: 30_000 }); // one second in, behind
  assert.ok(first && Math.abs(first.ratio - 0.1) < 1e-9, JSON.stringify(first));
});

test('drops while the JavaScript thread is starved of CPU (it waited for a core a quarter of the time or more) cut, though the agent used little', () => {
  const starved = new CpuBudget({ budgetCores: 0.2, ceiling: 1 });
  starved.update({ atMs: 0, cpuMicros: 0, dropped: 0, waitMicros: 0 });
  const d = starved.update({ atMs: 1000, cpuMicros: 50_000, dropped: 500, waitMicros: 600_000 }); // 0.05 cores, 600 ms waiting
  assert.ok(d && d.ratio <= 0.5, `cut at least by half: ${JSON.stringify(d)}`);
  console.log(`starved: 0.05 cores, 60 % of the second waiting for a CPU, 500 dropped: ratio 1 -> ${d!.ratio}`);
  // After a cut for drops the ratio holds for DROP_HOLD_MS, though there is room.
  let cpu = 50_000;
  let raisedAt = -1;
  for (let t = 2; t <= 15 && raisedAt < 0; t++) {
    const u = starved.update({ atMs: t * 1000, cpuMicros: (cpu += 20_000), dropped: 500, waitMicros: 600_000 });
    if (u && u.ratio > d!.ratio) raisedAt = t * 1000;
  }
  assert.ok(raisedAt >= 1000 + DROP_HOLD_MS, `raised at ${raisedAt} ms, cut at 1000 ms`);

  const waiting = new CpuBudget({ budgetCores: 0.2, ceiling: 1 });
  waiting.update({ atMs: 0, cpuMicros: 0, dropped: 0, waitMicros: 0 });
  assert.equal(waiting.update({ atMs: 1000, cpuMicros: 50_000, dropped: 500, waitMicros: 100_000 }), undefined, '10 % waiting: not starved, the exporter');
  assert.equal(waiting.update({ atMs: 2000, cpuMicros: 100_000, dropped: 900, waitMicros: undefined }), undefined, 'no scheduler statistics: not starved');
  assert.equal(waiting.ratio, 1);
});

test('a cut is of the share of new traces actually sampled when the cap kept it below the ratio', () => {
  const b = new CpuBudget({ budgetCores: 0.2, ceiling: 1 });
  b.update({ atMs: 0, cpuMicros: 0, dropped: 0, roots: { sampled: 0, decided: 0 } });
  // ratio 1 in force, but the cap let through 2,000 of 50,000 new traces (4 %); the agent fell behind
  const d = b.update({ atMs: 1000, cpuMicros: 300_000, dropped: 800, roots: { sampled: 2_000, decided: 50_000 } });
  assert.ok(d && d.ratio <= 0.02 + 1e-12, `cut from 4 %, not from 1: ${JSON.stringify(d)}`);
  console.log(`ratio 1, 4 % sampled under the cap, drops at 0.3 cores: ratio -> ${d!.ratio.toPrecision(3)}`);

  const uncapped = new CpuBudget({ budgetCores: 0.2, ceiling: 0.5 });
  uncapped.update({ atMs: 0, cpuMicros: 0, dropped: 0, roots: { sampled: 0, decided: 0 } });
  const u = uncapped.update({ atMs: 1000, cpuMicros: 300_000, dropped: 800, roots: { sampled: 5_100, decided: 10_000 } });
  assert.ok(u && Math.abs(u.ratio - 0.5 * 0.5 * (0.18 / 0.3)) < 1e-9, `share above the ratio: cut from the ratio: ${JSON.stringify(u)}`);
});
