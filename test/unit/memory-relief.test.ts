/**
 * MemoryRelief: memory is released once per spike, only when the agent is
 * quiet and has grown, and not again for what a release could not give back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryRelief, exposedGc } from '../../src/overhead/memory-relief';

const MiB = 1 << 20;

function scenario() {
  let rss = 80 * MiB;
  let released = 0;
  const relief = new MemoryRelief(
    () => released++,
    () => rss,
  );
  let t = 0;
  let events = 0;
  /** `seconds` of one check a second at `rate` events/s. */
  const run = (seconds: number, rate: number) => {
    for (let i = 0; i < seconds; i++) {
      t += 1000;
      events += rate;
      relief.check(t, events);
    }
  };
  return { run, setRss: (m: number) => (rss = m * MiB), released: () => released };
}

test('quiet and at its idle size: nothing is released', () => {
  const s = scenario();
  s.run(60, 10);
  assert.equal(s.released(), 0);
});

test('a spike: released once the agent has been quiet for 5 s, not during the load; tried at most 3 times a quiet spell', () => {
  const s = scenario();
  s.run(10, 10);
  s.setRss(120);
  s.run(30, 5000);
  assert.equal(s.released(), 0, 'not while busy');
  s.run(4, 10);
  assert.equal(s.released(), 0, 'not before 5 s of quiet');
  s.run(3, 10);
  assert.equal(s.released(), 1);
  s.run(10, 10);
  assert.equal(s.released(), 2, 'again 10 s later, while it has not come back');
  s.setRss(84);
  s.run(60, 10);
  assert.equal(s.released(), 2, 'not once it is back');
  // What three reliefs could not give back does not call for more.
  s.setRss(100);
  s.run(20, 5000);
  s.run(120, 10);
  assert.equal(s.released(), 5);
  // A later spike that grows past that again does.
  s.setRss(130);
  s.run(20, 5000);
  s.run(10, 10);
  assert.equal(s.released(), 6);
});

test("V8's gc can be had from inside the process", () => {
  assert.equal(typeof exposedGc(), 'function');
});
