/** The TypeScript layout must be the one in the compiled object's BTF. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { C, OPT, STRUCTS } from '../../src/events/layout';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const OBJ = path.join(ROOT, 'bpf', '.output', 'gearbox.bpf.o');

test('layout.generated.ts matches the BTF of the compiled BPF object', () => {
  assert.ok(fs.existsSync(OBJ), `${OBJ} missing: run npm run build first`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { generate, render } = require(path.join(ROOT, 'scripts', 'gen-layout.js'));
  const fresh = render(generate(OBJ));
  const committed = fs.readFileSync(path.join(ROOT, 'src', 'events', 'layout.generated.ts'), 'utf8');
  assert.equal(committed, fresh, 'bpf/gearbox.h changed: run `npm run build:bpf` and commit src/events/layout.generated.ts');
});

test('struct tcp_int_opt is the fixed 28-byte wire format', () => {
  assert.equal(OPT.size, 28);
  assert.equal(C.GB_TCP_OPT_LEN, 28);
  assert.equal(C.GB_TCP_OPT_KIND, 253);
  assert.equal(C.GB_EXID_SAMPLED, 0x4742);
  assert.equal(C.GB_EXID_UNSAMPLED, 0x4743);
  assert.deepEqual(
    Object.entries(OPT.fields).map(([k, f]) => [k, f.offset, f.size]),
    [
      ['kind', 0, 1],
      ['len', 1, 1],
      ['exid', 2, 2],
      ['trace_id', 4, 16],
      ['span_id', 20, 8],
    ],
  );
});

test('the five-tuple key has no padding (it is hashed byte for byte by two programs)', () => {
  const t = STRUCTS.gb_tuple;
  const sum = Object.values(t.fields).reduce((a, f) => a + f.size, 0);
  assert.equal(t.size, sum);
  assert.equal(t.size, 36);
});
