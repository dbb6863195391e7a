/**
 * The wire option's layout and the generated constants. That the layout is
 * the compiled object's is checked by the build (scripts/build-bpf.sh), which
 * has the object and bpftool.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { C, OPT, STRUCTS } from '../../src/events/layout';

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
