/**
 * drainFor: the agent reads a backlog in slices of bounded time, so that a
 * full ring buffer does not stall its exports, stats and metrics endpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drainFor, type Drainable, type RecordHandler } from '../../src/bpf/ring-buffer';

/** A ring holding `queued` records; reading one advances a fake clock by `usPerRecord`. */
class FakeRing implements Drainable {
  clockMs = 0;
  calls = 0;
  constructor(
    public queued: number,
    private readonly usPerRecord: number,
  ) {}

  drain(onRecord: RecordHandler, maxRecords: number): number {
    this.calls++;
    const n = Math.min(this.queued, maxRecords);
    const bytes = Buffer.alloc(8);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) {
      onRecord(bytes, view, 0, 8);
      this.clockMs += this.usPerRecord / 1000;
    }
    this.queued -= n;
    return n;
  }

  pending(): number {
    return this.queued * 8;
  }
}

test('a backlog is read in slices of bounded time, and nothing is skipped', () => {
  // 100,000 records at 20 us each: 2 s of work, in slices of 20 ms.
  const ring = new FakeRing(100_000, 20);
  let read = 0;
  const onRecord = () => read++;
  const slices: number[] = [];
  for (;;) {
    const before = read;
    const start = ring.clockMs;
    const more = drainFor(ring, onRecord, 20, () => ring.clockMs);
    slices.push(ring.clockMs - start);
    assert.ok(read > before, 'every slice reads something');
    if (!more) break;
  }
  console.log(`100,000 records read in ${slices.length} slices, the longest ${Math.max(...slices).toFixed(2)} ms`);
  assert.equal(read, 100_000);
  assert.equal(ring.queued, 0);
  // A slice ends at the first batch boundary past its time: 20 ms plus at most one batch (256 records, 5.12 ms).
  assert.ok(Math.max(...slices) <= 20 + 256 * 0.02 + 1e-9, `longest slice ${Math.max(...slices)} ms`);
  assert.ok(slices.length >= 2_000 / 26 && slices.length <= 2_000 / 20 + 1, `${slices.length} slices`);
});

test('a short queue is read in one call, which says nothing is left', () => {
  const ring = new FakeRing(300, 1);
  let read = 0;
  assert.equal(
    drainFor(
      ring,
      () => read++,
      20,
      () => ring.clockMs,
    ),
    false,
  );
  assert.equal(read, 300);
  assert.equal(ring.calls, 2, 'a full batch, then a short one');
});

test('a slice that ends exactly when the ring is empty reports nothing left', () => {
  const ring = new FakeRing(512, 100); // 256 records take 25.6 ms: past the slice after the first batch
  let read = 0;
  assert.equal(
    drainFor(
      ring,
      () => read++,
      20,
      () => ring.clockMs,
    ),
    true,
  );
  assert.equal(read, 256);
  assert.equal(
    drainFor(
      ring,
      () => read++,
      20,
      () => ring.clockMs,
    ),
    false,
    'the second batch was full but the ring is now empty',
  );
  assert.equal(read, 512);
});
