/**
 * LoopWatch: tasks are timed; the ring buffer's wait is counted only from a
 * drain slice that left a backlog to the next slice; observers see both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKLOG_WAIT, LoopWatch } from '../../src/overhead/loop-watch';
import { parseMapCounts } from '../../src/bpf/map-counts';
import { STRUCTS } from '../../src/events/layout';

test('tasks are timed by the clock given; count, total and longest kept', () => {
  let now = 0;
  const w = new LoopWatch(() => now);
  w.time('stats', () => (now += 3));
  w.time('stats', () => (now += 1));
  assert.throws(() =>
    w.time('scrape', () => {
      now += 7;
      throw new Error('failed scrape');
    }),
  );
  assert.deepEqual(w.snapshot(), { stats: { count: 2, totalMs: 4, maxMs: 3 }, scrape: { count: 1, totalMs: 7, maxMs: 7 } });
});

test('the ring buffer waits only after a slice that left a backlog', () => {
  let now = 0;
  const w = new LoopWatch(() => now);
  const seen: [string, number][] = [];
  w.observe((what, s) => seen.push([what, s]));
  w.sliceStarting();
  w.sliceEnded(false); // drained: nothing waits
  now += 50; // idle poll wait
  w.sliceStarting();
  w.sliceEnded(true); // a backlog is left
  now += 4; // a scrape runs meanwhile
  w.sliceStarting();
  w.sliceEnded(false);
  assert.deepEqual(w.snapshot()[BACKLOG_WAIT], { count: 1, totalMs: 4, maxMs: 4 });
  assert.deepEqual(seen, [[BACKLOG_WAIT, 0.004]]);
});

test("the map-count iterator's records are read by the layout of struct gb_map_count", () => {
  const { size, fields } = STRUCTS.gb_map_count;
  const out = Buffer.alloc(3 * size);
  const put = (i: number, id: number, entries: bigint) => {
    out.writeUInt32LE(id, i * size + fields.map_id.offset);
    out.writeBigInt64LE(entries, i * size + fields.entries.offset);
  };
  put(0, 17, 65536n);
  put(1, 18, 0n);
  put(2, 19, -1n);
  assert.deepEqual(
    [...parseMapCounts(out)],
    [
      [17, 65536],
      [18, 0],
      [19, -1],
    ],
  );
  // A short tail (never written by the kernel) is ignored.
  assert.equal(parseMapCounts(out.subarray(0, size + 3)).size, 1);
});
