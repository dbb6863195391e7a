/**
 * Protobuf writing primitives over one growable scratch buffer: tags,
 * varints (int64 as protobuf writes it), fixed32/64, strings, bytes, hex
 * ids, and lengths reserved before a message and filled in after it. What
 * the OTLP encoder (trace-encoder.ts) is built on; the message tables are
 * in trace-messages.ts.
 */
import type { HrTime } from '@opentelemetry/api';

/** Wire types. */
export const VARINT = 0;
export const FIXED64 = 1;
export const LEN = 2;
export const FIXED32 = 5;

export const INT64_MIN = -(2 ** 63);
export const INT64_END = 2 ** 63;
const TWO_32 = 0x1_0000_0000;

/** The scratch buffer's size to start with and to return to after a large batch. */
const INITIAL_BYTES = 1 << 20;

/** A hex digit's value, as the library reads it (anything else counts as A-F). */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return c - 55;
}

/** hexValue of the character codes below 128, looked up. */
const HEX_VALUE = Int16Array.from({ length: 128 }, (_, c) => hexValue(c));

export class ProtobufWriter {
  protected buf: Buffer = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  protected pos = 0;

  protected ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = Buffer.allocUnsafeSlow(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  protected tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** A varint; negative integers as 64-bit two's complement (10 bytes), as protobuf's int64. */
  protected varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    if (value >= 0 && value <= 0xffff_ffff) {
      let v = value >>> 0;
      while (v > 0x7f) {
        buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      buf[this.pos++] = v;
      return;
    }
    const abs = Math.abs(value);
    let low = abs >>> 0;
    let high = Math.floor(abs / TWO_32) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    while (high > 0 || low > 0x7f) {
      buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buf[this.pos++] = low;
  }

  protected fixed32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }

  /** HrTime [seconds, nanoseconds] as fixed64 nanoseconds, exact past 2^53. */
  protected hrTime(t: HrTime): void {
    const seconds = t[0];
    const upper = Math.floor(seconds / 0x10000) * 1e9; // whole 2^16-second blocks, in ns / 2^16
    const lowPart = (upper % 0x10000) * 0x10000 + (seconds % 0x10000) * 1e9 + t[1];
    const high = Math.floor(upper / 0x10000) + Math.floor(lowPart / TWO_32);
    this.ensure(8);
    this.buf.writeUInt32LE(lowPart >>> 0, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /** A length-delimited string, UTF-8. */
  protected string(s: string): void {
    const len = s.length;
    if (len < 0x80) {
      // One length byte; ASCII is written as it is scanned.
      this.ensure(len + 1);
      const buf = this.buf;
      const at = this.pos;
      let p = at + 1;
      for (let i = 0; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) return this.utf8(s);
        buf[p++] = c;
      }
      buf[at] = len;
      this.pos = p;
      return;
    }
    this.utf8(s);
  }

  protected utf8(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, n, 'utf8');
  }

  protected bytes(b: Uint8Array): void {
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A hex id as bytes, length-delimited (as the library: pairs of digits, case-insensitive). */
  protected hex(id: string): void {
    const n = id.length >>> 1;
    this.varint(n);
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < 2 * n; i += 2) {
      const hi = id.charCodeAt(i);
      const lo = id.charCodeAt(i + 1);
      buf[p++] = ((hi < 128 ? HEX_VALUE[hi] : hexValue(hi)) << 4) | (lo < 128 ? HEX_VALUE[lo] : hexValue(lo));
    }
    this.pos = p;
  }

  /** Reserves `guess` bytes for a length written by endLength; returns where. */
  protected beginLength(guess: number): number {
    this.ensure(guess);
    const at = this.pos;
    this.pos += guess;
    return at;
  }

  /** Writes the length of what followed beginLength, as a minimal varint, moving the content if the guess was wrong. */
  protected endLength(at: number, guess: number): void {
    const length = this.pos - at - guess;
    const size = varintSize(length);
    if (size !== guess) {
      this.ensure(size - guess);
      this.buf.copyWithin(at + size, at + guess, this.pos);
      this.pos += size - guess;
    }
    const buf = this.buf;
    let v = length;
    let p = at;
    while (v > 0x7f) {
      buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[p] = v;
  }

  /** A double as fixed64. */
  protected double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** The scratch buffer back to its first size after an outsized message. */
  protected shrinkScratch(): void {
    if (this.buf.length > 8 * INITIAL_BYTES) this.buf = Buffer.allocUnsafeSlow(INITIAL_BYTES);
  }
}

/** Writes `v` (below 2^32) as a varint into `buf` at `p`; returns the position after it. */
export function putVarint(buf: Buffer, p: number, v: number): number {
  while (v > 0x7f) {
    buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[p++] = v;
  return p;
}

export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x20_0000) return 3;
  if (v < 0x1000_0000) return 4;
  return 5;
}
