/** Kernel stamps to wall time: the offset comes from the tightest clock_gettime bracket, whole seconds for CLOCK_TAI; agents agree across steps of the wall clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WallClock, type ClockSource } from '../../src/events/clock';
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
    wholeSecondOffset: false,
    eventNs: () => {
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
    const clock = new WallClock({ eventNs: () => 0n, realtimeNs: () => offset, wholeSecondOffset: false });
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

/**
 * One machine's clocks: CLOCK_TAI is the wall clock plus 37 s; `step` moves
 * both at once (settimeofday, an NTP or hypervisor correction), as the kernel
 * does; CLOCK_MONOTONIC never moves with them. Every read costs `readNs` of
 * time passing, and every fourth a preemption of 300 µs.
 */
function machine(readNs = 40n) {
  let mono = 7_000_000_000n;
  let wallMinusMono = 1_700_000_000_000_000_000n;
  let reads = 0;
  const pass = () => {
    mono += readNs + (++reads % 4 === 0 ? 300_000n : 0n);
  };
  const at = () => mono;
  return {
    step(ns: bigint) {
      wallMinusMono += ns;
    },
    /** What the kernel reads for bpf_ktime_get_tai_ns / bpf_ktime_get_ns at this instant (no time passes). */
    taiNow: () => at() + wallMinusMono + 37_000_000_000n,
    monoNow: () => at(),
    wallNow: () => at() + wallMinusMono,
    tai: {
      eventNs: () => (pass(), at() + wallMinusMono + 37_000_000_000n),
      realtimeNs: () => (pass(), at() + wallMinusMono),
      wholeSecondOffset: true,
    } as ClockSource,
    monotonic: { eventNs: () => (pass(), at()), realtimeNs: () => (pass(), at() + wallMinusMono), wholeSecondOffset: false } as ClockSource,
  };
}

const asNs = ([s, ns]: [number, number]) => BigInt(s) * 1_000_000_000n + BigInt(ns);

test('CLOCK_TAI: the offset is the whole seconds of the TAI offset, exact however preempted the brackets; stamps are taken less the base', () => {
  const m = machine(150_000n); // every bracket 150-450 µs wide
  const clock = WallClock.startingNow(m.tai);
  assert.equal(m.taiNow() - clock.baseNs - BigInt(clock.nowEventNs()) < 1_000_000n, true, 'nowEventNs is the TAI clock less the base');
  assert.ok(clock.nowEventNs() >= 3_600_000_000_000 && clock.nowEventNs() < 3_601_000_000_000, `stamps start an hour in: ${clock.nowEventNs()}`);
  for (let i = 0; i < 100; i++) {
    const stamp = Number(m.taiNow() - clock.baseNs); // what the kernel would write
    assert.equal(asNs(clock.toHrTime(stamp) as [number, number]), m.wallNow(), 'the wall clock of the stamp, to the nanosecond');
    m.tai.eventNs(); // time passes
  }
});

test('two agents that calibrated on either side of a wall-clock step give one instant the same time (with CLOCK_MONOTONIC stamps they would not)', () => {
  const m = machine();
  const a = WallClock.startingNow(m.tai);
  const aMono = new WallClock(m.monotonic);
  m.step(5_000_000n); // +5 ms, as seen on a CI machine whose clock was being corrected
  const b = WallClock.startingNow(m.tai);
  const bMono = new WallClock(m.monotonic);
  m.step(-2_000_000n);
  a.calibrate(); // calibrating again changes nothing
  let compared = 0;
  for (let i = 0; i < 50; i++) {
    const tai = m.taiNow();
    const wallA = asNs(a.toHrTime(Number(tai - a.baseNs)) as [number, number]);
    const wallB = asNs(b.toHrTime(Number(tai - b.baseNs)) as [number, number]);
    assert.equal(wallA, wallB);
    assert.equal(wallA, m.wallNow(), 'and it is the wall clock of the instant');
    const mono = Number(m.monoNow());
    const apart = asNs(bMono.toHrTime(mono) as [number, number]) - asNs(aMono.toHrTime(mono) as [number, number]);
    assert.ok(apart > 4_990_000n && apart < 5_010_000n, `monotonic stamps: ${apart} ns apart`);
    if (i === 25) m.step(1_000_000n);
    m.tai.eventNs();
    compared++;
  }
  console.log(`${compared} instants: the two TAI clocks agree to the nanosecond; the two monotonic ones are ~5 ms apart`);
});

test('a wall clock stepped back past the base gives a negative now (the agent warns)', () => {
  const m = machine();
  const clock = WallClock.startingNow(m.tai);
  m.step(-3_700_000_000_000n); // an hour and 100 s back
  assert.ok(clock.nowEventNs() < 0);
});
