/**
 * HTTP/1.1 pipelining: several requests in one message. The kernel sees one
 * message, so the ids of request k >= 1 are derived from the first request's
 * the same way on both hosts (bpf/gearbox.h GB_PIPELINE_MIX): every byte of
 * the trace id and span id is XORed with the little-endian bytes of
 * GB_PIPELINE_MIX * k mod 2^64.
 */
export const PIPELINE_MIX = 0x9e3779b97f4a7c15n;

function mixBytes(k: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, PIPELINE_MIX * BigInt(k)));
  return b;
}

function xorHex(hex: string, mix: Buffer): string {
  const b = Buffer.from(hex, 'hex');
  for (let i = 0; i < b.length; i++) b[i] ^= mix[i % 8];
  return b.toString('hex');
}

/** Trace id and span id of pipelined request k (k = 0 returns the input). */
export function derivePipelined(traceId: string, spanId: string, k: number): { traceId: string; spanId: string } {
  if (k === 0) return { traceId, spanId };
  const mix = mixBytes(k);
  return { traceId: xorHex(traceId, mix), spanId: xorHex(spanId, mix) };
}
