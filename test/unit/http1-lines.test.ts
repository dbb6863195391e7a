/**
 * The HTTP/1 request and status lines are read from the bytes without regular
 * expressions (no match arrays or line strings per message). They must accept
 * and refuse exactly what the regular expressions they replaced did: here
 * those expressions are the specification, run side by side on generated and
 * mutated lines heavy in the bytes that matter (spaces of every kind, CR,
 * digits, the letters of "HTTP/").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHttpRequest, parseHttpResponse } from '../../src/protocols/http1';
import { seededRandom } from '../support/seeded-random';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** The line up to its CRLF, as the parser finds it, or undefined. */
function firstLine(buf: Buffer): string | undefined {
  const lf = buf.indexOf(0x0a);
  if (lf <= 1 || lf > 8192 || buf[lf - 1] !== 0x0d) return undefined;
  return buf.toString('latin1', 0, lf - 1);
}

/** The specification of a request line: the former code, regular expressions and all. */
function specRequest(buf: Buffer): { method: string; target: string; version: string } | null {
  const m0 = /^([A-Z]{3,7}) /.exec(buf.toString('latin1', 0, Math.min(buf.length, 8)));
  if (!m0 || !METHODS.has(m0[1])) return null;
  const line = firstLine(buf);
  if (line === undefined) return null;
  const m = /^([A-Z]+) (\S+) HTTP\/(\d\.\d)$/.exec(line);
  if (!m || !METHODS.has(m[1])) return null;
  return { method: m[1], target: m[2], version: m[3] };
}

function specResponse(buf: Buffer): { version: string; status: number } | null {
  if (buf.length < 12 || buf.toString('latin1', 0, 7) !== 'HTTP/1.') return null;
  const line = firstLine(buf);
  if (line === undefined) return null;
  const m = /^HTTP\/(\d\.\d) (\d{3})(?: .*)?$/.exec(line);
  return m ? { version: m[1], status: Number(m[2]) } : null;
}

const TRICKY = [0x20, 0x09, 0x0b, 0x0c, 0x0d, 0x0a, 0xa0, 0x85, 0x2f, 0x2e, 0x31, 0x30, 0x39, 0x48, 0x54, 0x50, 0x3f, 0x00, 0xff];

function mutate(line: string, r: () => number): Buffer {
  const b = Buffer.from(line + '\r\nHost: x\r\n\r\n', 'latin1');
  const edits = Math.floor(r() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(r() * Math.min(b.length, line.length + 2));
    const c = r() < 0.7 ? TRICKY[Math.floor(r() * TRICKY.length)] : Math.floor(r() * 256);
    if (r() < 0.8) b[at] = c;
    else return Buffer.concat([b.subarray(0, at), Buffer.from([c]), b.subarray(at)]); // an inserted byte
  }
  return r() < 0.1 ? b.subarray(0, Math.floor(r() * b.length)) : b;
}

const N = 200_000;

test(`request lines: ${N} generated and mutated lines, parsed exactly as the regular expressions did`, () => {
  const r = seededRandom(20261124);
  const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'GETX', 'PRI', 'get'];
  const targets = ['/', '/a/b?x=1', '*', 'http://h:1/p', 'x', '/\u00a0', '/%20', '/' + 'y'.repeat(300)];
  let accepted = 0;
  for (let i = 0; i < N; i++) {
    const line = `${methods[Math.floor(r() * methods.length)]} ${targets[Math.floor(r() * targets.length)]} HTTP/${Math.floor(r() * 3)}.${Math.floor(r() * 10)}`;
    const buf = mutate(line, r);
    const spec = specRequest(buf);
    const got = parseHttpRequest(buf);
    const ours = got && { method: got.method, target: got.target, version: got.version };
    assert.deepEqual(ours, spec, `request line ${JSON.stringify(buf.toString('latin1'))}`);
    if (spec) accepted++;
  }
  assert.ok(accepted > N / 10 && accepted < N, `both kinds were compared: ${accepted} accepted`);
  console.log(`# ${N} request lines, ${accepted} accepted and ${N - accepted} refused, as the regular expressions decided`);
});

test(`status lines: ${N} generated and mutated lines, parsed exactly as the regular expressions did`, () => {
  const r = seededRandom(4242);
  const reasons = ['', ' OK', ' Not Found', ' ', ' a\u00a0b', ' x\ty'];
  let accepted = 0;
  for (let i = 0; i < N; i++) {
    const status = String(Math.floor(r() * 1200)).padStart(r() < 0.9 ? 3 : 1, '0');
    const line = `HTTP/1.${Math.floor(r() * 10)} ${status}${reasons[Math.floor(r() * reasons.length)]}`;
    const buf = mutate(line, r);
    const spec = specResponse(buf);
    const got = parseHttpResponse(buf);
    const ours = got && { version: got.version, status: got.status };
    assert.deepEqual(ours, spec, `status line ${JSON.stringify(buf.toString('latin1'))}`);
    if (spec) accepted++;
  }
  assert.ok(accepted > N / 10 && accepted < N, `both kinds were compared: ${accepted} accepted`);
  console.log(`# ${N} status lines, ${accepted} accepted and ${N - accepted} refused, as the regular expressions decided`);
});
