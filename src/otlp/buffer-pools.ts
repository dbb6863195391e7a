/**
 * Buffers the OTLP encoder reuses: the span groups' buffers of finished
 * requests, and whole-request buffers lent to the transport while a request
 * is being sent. Two pools on purpose: span groups want exact sizes under a
 * byte cap; requests want a few powers of two, the largest kept.
 */
/** What one span group's bytes start with, before growing (a batch of a few spans). */
const SPAN_BYTES_INITIAL = 16 * 1024;
/** The most bytes kept for the next requests (a batch of 1,024 agent spans is ~450 KB). */
const POOL_MAX_BYTES = 8 << 20;

/**
 * The span groups' buffers of finished requests, handed to the next ones:
 * a fresh buffer per group and batch, doubling as it filled, would allocate
 * about twice a batch's size in external memory (which V8 counts towards its
 * collections) for every batch; reused, a steady stream allocates only the
 * requests themselves.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private bytes = 0;

  take(atLeast: number): Buffer {
    for (let i = this.free.length - 1; i >= 0; i--) {
      const buf = this.free[i];
      if (buf.length < atLeast) continue;
      this.free.splice(i, 1);
      this.bytes -= buf.length;
      return buf;
    }
    return Buffer.allocUnsafeSlow(Math.max(SPAN_BYTES_INITIAL, atLeast));
  }

  give(buf: Buffer): void {
    if (this.bytes + buf.length > POOL_MAX_BYTES) return;
    this.free.push(buf);
    this.bytes += buf.length;
  }
}

/** Free request buffers kept for the next requests. */
const REQUEST_BUFFERS_KEPT = 4;
/** Request buffers are at least this large, and a power of two: batches of varying size fit the buffers of earlier ones. */
const REQUEST_BUFFER_MIN = 64 * 1024;

/**
 * Buffers for whole requests, lent out while a request is being sent and
 * given back when its export is done. A fresh buffer per request cost a page
 * fault per 4 KB the assembly touched (a 512-span request is ~225 KB) and
 * left the dead ones to V8's collections; a few lent in turn are touched once.
 */
export class RequestBufferPool {
  private readonly free: Buffer[] = [];

  take(size: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i].length >= size && (best < 0 || this.free[i].length < this.free[best].length)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0];
    let length = REQUEST_BUFFER_MIN;
    while (length < size) length *= 2;
    return Buffer.allocUnsafeSlow(length);
  }

  give(buf: Buffer): void {
    if (this.free.length < REQUEST_BUFFERS_KEPT) this.free.push(buf);
    else {
      // Keep the largest: a smaller one fits fewer requests.
      let smallest = 0;
      for (let i = 1; i < this.free.length; i++) if (this.free[i].length < this.free[smallest].length) smallest = i;
      if (this.free[smallest].length < buf.length) this.free[smallest] = buf;
    }
  }
}

/** The encoded spans of one resource and scope: their `ScopeSpans.spans` fields, back to back. */
export class SpanBytes {
  private buf: Buffer;
  length = 0;

  constructor(
    private readonly pool: BufferPool,
    first: Uint8Array,
  ) {
    this.buf = pool.take(first.length);
    this.append(first);
  }

  append(bytes: Uint8Array): void {
    if (this.length + bytes.length > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.length + bytes.length) size *= 2;
      const grown = this.pool.take(size);
      this.buf.copy(grown, 0, 0, this.length);
      this.pool.give(this.buf);
      this.buf = grown;
    }
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** Copies the bytes into `dst` at `at`; returns how many. */
  copyTo(dst: Buffer, at: number): number {
    return this.buf.copy(dst, at, 0, this.length);
  }

  /** Its buffer back to the pool; the bytes are not to be read again. */
  release(): void {
    this.pool.give(this.buf);
    this.length = 0;
  }
}
