import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { kernelTickNs } from '../../src/bpf/kernel-tick';

test('kernel tick: CONFIG_HZ from a plain or gzipped kernel config, the first that says; 0 when none does', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gearbox-kconfig-'));
  const plain = path.join(dir, 'config-plain');
  const gz = path.join(dir, 'config.gz');
  const silent = path.join(dir, 'config-silent');
  fs.writeFileSync(plain, '# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\nCONFIG_HZ_PERIODIC=y\n');
  fs.writeFileSync(gz, zlib.gzipSync('CONFIG_HZ=1000\n'));
  fs.writeFileSync(silent, 'CONFIG_X=y\n');
  assert.equal(kernelTickNs([plain, gz]), 4_000_000);
  assert.equal(kernelTickNs([path.join(dir, 'missing'), gz]), 1_000_000);
  assert.equal(kernelTickNs([silent, gz]), 1_000_000);
  assert.equal(kernelTickNs([path.join(dir, 'missing'), silent]), 0);
  fs.writeFileSync(silent, 'CONFIG_HZ=7\n');
  assert.equal(kernelTickNs([silent]), 0, 'an implausible HZ is not believed');
  fs.rmSync(dir, { recursive: true });
  const here = kernelTickNs();
  console.log(`this machine's tick: ${here ? `${here / 1e6} ms` : 'unknown (pauses timed with the exact clock)'}`);
});
