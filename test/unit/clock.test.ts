/** Kernel monotonic time to wall time: the offset comes from the tightest clock_gettime bracket. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WallClock, type ClockSource } from '../../src/export/clock';
import { seededRandom } from '../support/seeded-random';

const WALL_MINUS_MONO = 1_700_000_000_000_000_000n;

/**
 * A clock whose reads take `gapNs[i]` between the two monotonic reads of
 * bracket i, with the real-time read landing at the start of the gap (the
 * thread preempted right after it): a bracket's midpoint is off by gap/2.
 */
function preemptedClock(gapNs: bigint[]): ClockSource & { reads: number } {
  let mono = 5_000_000_000n;
  let bracket = 0;
  let step = 0;
  const src = {
    reads: 0,
    monotonicNs: () => {
      src.reads++;
      const t = mono;
      if (step === 2) {
        mono += 10n;
        step = 0;
        bracket++;
      } else step = 1;
      return t;
    },
    realtimeNs: () => {
      src.reads++;
      const r = mono + WALL_MINUS_MONO; // read right at the start...
      mono += gapNs[bracket % gapNs.length] ?? 100n; // ...then the thread waits
      step = 2;
      return r;
    },
  };
  return src;
}

test('the offset comes from the tightest of the brackets, not a preempted one', () => {
  // Bracket 0 preempted for 40 µs (midpoint off by 20 µs); bracket 5 is tight (100 ns: off by 50 ns).
  const gaps = Array.from({ length: WallClock.BRACKETS }, (_, i) => (i === 0 ? 40_000n : i === 5 ? 100n : 5_000n));
  const src = preemptedClock(gaps);
  const clock = new WallClock(src);
  assert.equal(src.reads, 3 * WallClock.BRACKETS);
  const [s, ns] = clock.toHrTime(0);
  const offset = BigInt(s) * 1_000_000_000n + BigInt(ns);
  const error = offset - WALL_MINUS_MONO;
  assert.ok(error >= -50n && error <= 50n, `offset off by ${error} ns (a single preempted bracket would be off by 20,000)`);
});

test('toHrTime is the exact sum of the timestamp and the offset, at second boundaries and large timestamps too', () => {
  const reference = (offset: bigint, mono: number): [number, number] => {
    const wall = BigInt(mono) + offset;
    return [Number(wall / 1_000_000_000n), Number(wall % 1_000_000_000n)];
  };
  let checked = 0;
  for (const offset of [1_700_000_000_123_456_789n, 1_700_000_000_999_999_999n, 1_700_000_000_000_000_000n, 12_345n]) {
    const clock = new WallClock({ monotonicNs: () => 0n, realtimeNs: () => offset });
    const monos = [0, 1, 999_999_999, 1_000_000_000, 1_000_000_001, 876_543_211, 2 ** 53 - 1, 2 ** 52 + 999_999_999, 9_007_199_000_000_000 - 1];
    const random = seededRandom(12345); // the same timestamps every run
    for (let i = 0; i < 2000; i++) monos.push(Math.floor(random() * 2 ** 53));
    for (const mono of monos) {
      assert.deepEqual(clock.toHrTime(mono), reference(offset, mono), `offset ${offset}, timestamp ${mono}`);
      checked++;
    }
  }
  console.log(`${checked} timestamps converted exactly`);
});
