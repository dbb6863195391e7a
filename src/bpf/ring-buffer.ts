/**
 * Zero-copy reader of a BPF ring buffer map: the consumer page is mapped
 * read-write, the producer page and the data area read-only. The data area
 * is mapped once (the kernel would allow it twice, so that records never
 * wrap, but every page of the second copy counts in the agent's RSS again):
 * records are handed to the caller as (bytes, view, offset, length) over the
 * mapping, and the few that wrap around its end are first put together in a
 * scratch buffer. The caller copies what it keeps. The agent is woken by
 * epoll on the map fd; the BPF side only forces a wakeup when a lot is
 * queued, so a short poll timeout bounds the latency at low rates without a
 * wakeup per event.
 */
import koffi from 'koffi';
import { EPOLL_CTL_ADD, EPOLLIN, MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, SC_PAGESIZE, libbpf, type Ptr } from './libbpf';

const BUSY = 0x8000_0000;
const DISCARD = 0x4000_0000;
const HDR = 8;

export type RecordHandler = (bytes: Buffer, view: DataView, off: number, len: number) => void;

/** What drainFor needs of a reader. */
export interface Drainable {
  drain(onRecord: RecordHandler, maxRecords: number): number;
  pending(): number;
}

/** Records read between two looks at the clock. */
const DRAIN_BATCH = 256;

/**
 * Reads records for at most `ms` milliseconds (in batches of DRAIN_BATCH);
 * true when some are left, so that the caller can let other work run before
 * it reads on.
 */
export function drainFor(ring: Drainable, onRecord: RecordHandler, ms: number, now: () => number = () => performance.now()): boolean {
  const until = now() + ms;
  do {
    if (ring.drain(onRecord, DRAIN_BATCH) < DRAIN_BATCH) return false;
  } while (now() < until);
  return ring.pending() > 0;
}

export class RingBufferReader {
  private readonly page: number;
  private readonly consumerPtr: Ptr;
  private readonly producerPtr: Ptr;
  private readonly producerLen: number;
  private readonly consumerPos: BigUint64Array;
  private readonly producerPos: BigUint64Array;
  private readonly data: Buffer;
  private readonly dataView: DataView;
  private readonly dataHdr: Int32Array;
  private readonly epfd: number;
  private readonly epollEvents = Buffer.alloc(12 * 4);
  /** Where a record that wraps around the end of the data area is put together. */
  private scratch = Buffer.alloc(4096);
  private scratchView = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
  private closed = false;

  constructor(
    mapFd: number,
    private readonly size: number,
  ) {
    const lib = libbpf();
    this.page = Number(lib.sysconf(SC_PAGESIZE));
    if (size <= 0 || (size & (size - 1)) !== 0 || size % this.page !== 0) {
      throw new Error(`ring buffer size ${size} must be a power of two and a multiple of the page size`);
    }
    this.consumerPtr = lib.mmap(null, this.page, PROT_READ | PROT_WRITE, MAP_SHARED, mapFd, 0) as Ptr;
    if (this.consumerPtr === null || this.consumerPtr === MAP_FAILED) {
      throw new Error(`mmap of the ring buffer consumer page failed (errno ${koffi.errno()})`);
    }
    this.producerLen = this.page + size;
    this.producerPtr = lib.mmap(null, this.producerLen, PROT_READ, MAP_SHARED, mapFd, this.page) as Ptr;
    if (this.producerPtr === null || this.producerPtr === MAP_FAILED) {
      lib.munmap(this.consumerPtr, this.page);
      throw new Error(`mmap of the ring buffer data failed (errno ${koffi.errno()})`);
    }
    this.consumerPos = new BigUint64Array(koffi.view(this.consumerPtr, this.page) as ArrayBuffer, 0, 1);
    const prod = koffi.view(this.producerPtr, this.producerLen) as ArrayBuffer;
    this.producerPos = new BigUint64Array(prod, 0, 1);
    this.data = Buffer.from(prod, this.page, size);
    this.dataView = new DataView(prod, this.page, size);
    this.dataHdr = new Int32Array(prod, this.page, size / 4);
    this.epfd = lib.epoll_create1(0) as number;
    if (this.epfd < 0) throw new Error(`epoll_create1 failed (errno ${koffi.errno()})`);
    const ev = Buffer.alloc(12);
    ev.writeUInt32LE(EPOLLIN, 0);
    if ((lib.epoll_ctl(this.epfd, EPOLL_CTL_ADD, mapFd, ev) as number) < 0) {
      throw new Error(`epoll_ctl on the ring buffer failed (errno ${koffi.errno()})`);
    }
  }

  /** Bytes produced but not yet consumed. */
  pending(): number {
    if (this.closed) return 0;
    return Number(Atomics.load(this.producerPos, 0) - Atomics.load(this.consumerPos, 0));
  }

  /** Hands every committed record to `onRecord`; returns the number of records. */
  drain(onRecord: RecordHandler, maxRecords = Infinity): number {
    if (this.closed) return 0;
    let cons = Number(Atomics.load(this.consumerPos, 0));
    const prod = Number(Atomics.load(this.producerPos, 0));
    let n = 0;
    let unreleased = 0;
    while (cons < prod && n < maxRecords) {
      const off = cons % this.size; // positions exceed 32 bits over time: no bit ops
      const lenWord = Atomics.load(this.dataHdr, off >> 2) >>> 0;
      if (lenWord & BUSY) break;
      const len = lenWord & ~(BUSY | DISCARD) & 0x3fff_ffff;
      if (!(lenWord & DISCARD)) {
        try {
          // Headers are 8-byte aligned, so only a record's body can wrap.
          const start = off + HDR === this.size ? 0 : off + HDR;
          if (start + len <= this.size) onRecord(this.data, this.dataView, start, len);
          else onRecord(this.wrapped(start, len), this.scratchView, 0, len);
        } catch {
          /* the handler counts its own failures; never lose the rest of the batch */
        }
        n++;
      }
      cons += (len + HDR + 7) & ~7;
      // The space is given back to the kernel every 32 records and at the
      // end, not after each record: each store allocates a BigInt.
      if (++unreleased === 32) {
        Atomics.store(this.consumerPos, 0, BigInt(cons));
        unreleased = 0;
      }
    }
    if (unreleased > 0) Atomics.store(this.consumerPos, 0, BigInt(cons));
    return n;
  }

  /** The record of `len` bytes at `start` that runs past the end of the data area, in one piece. */
  private wrapped(start: number, len: number): Buffer {
    if (this.scratch.length < len) {
      this.scratch = Buffer.alloc(Math.max(len, 2 * this.scratch.length));
      this.scratchView = new DataView(this.scratch.buffer, this.scratch.byteOffset, this.scratch.byteLength);
    }
    const head = this.size - start;
    this.data.copy(this.scratch, 0, start, this.size);
    this.data.copy(this.scratch, head, 0, len - head);
    return this.scratch;
  }

  /** Waits (off the main thread) until data is signalled or `timeoutMs` passes. */
  wait(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      libbpf().epoll_wait.async(this.epfd, this.epollEvents, 4, timeoutMs, () => resolve());
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const lib = libbpf();
    lib.munmap(this.producerPtr, this.producerLen);
    lib.munmap(this.consumerPtr, this.page);
    lib.close(this.epfd);
  }
}
