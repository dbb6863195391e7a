import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runDelayMicros } from '../../src/overhead/run-delay';

test('run delay: read from schedstat in microseconds; undefined without scheduler statistics', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gearbox-schedstat-'));
  const f = path.join(dir, 'schedstat');
  fs.writeFileSync(f, '123456789 2500000 42\n');
  assert.equal(runDelayMicros(f), 2500);
  assert.equal(runDelayMicros(path.join(dir, 'missing')), undefined);
  fs.writeFileSync(f, 'garbage\n');
  assert.equal(runDelayMicros(f), undefined);
  fs.rmSync(dir, { recursive: true });
  const own = runDelayMicros();
  assert.ok(own === undefined || own >= 0);
  console.log(`this thread has waited ${own?.toFixed(0) ?? 'n/a'} us for a CPU`);
});
