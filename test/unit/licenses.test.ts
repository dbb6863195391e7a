/** One license story: LICENSE, package.json, the SPDX headers and the BPF object's license string agree. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');

test('Apache-2.0 for the project; GPL-2.0 OR Apache-2.0 for the BPF C, whose object says GPL', () => {
  assert.equal(JSON.parse(read('package.json')).license, 'Apache-2.0');
  const license = read('LICENSE');
  assert.match(license, /Apache License\s+Version 2\.0, January 2004/);
  assert.match(license, /GNU GENERAL PUBLIC LICENSE\s+Version 2, June 1991/);
  const bpfSources = ['bpf', 'test/bpf'].flatMap((d) =>
    fs
      .readdirSync(path.join(ROOT, d))
      .filter((f) => /\.(c|h)$/.test(f))
      .map((f) => `${d}/${f}`),
  );
  assert.ok(bpfSources.length >= 8, bpfSources.join(' '));
  for (const f of bpfSources) {
    const text = read(f);
    assert.match(text.split('\n')[0], /SPDX-License-Identifier: \(GPL-2\.0 OR Apache-2\.0\)/, `${f}: SPDX header`);
    for (const m of text.matchAll(/SEC\("license"\) = "([^"]*)"/g)) assert.equal(m[1], 'GPL', `${f}: the object's license string`);
  }
});
