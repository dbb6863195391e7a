/**
 * Recorded kernel events: the raw ring-buffer records, so a replay goes
 * through exactly the decoder the live agent uses. File format: the magic
 * line "GEARBOX-EVENTS 1 <sizeof gb_event>\n", then per record a u32 LE
 * length and the record bytes.
 */
import fs from 'node:fs';
import { EV_SIZE } from './layout';

const MAGIC = `GEARBOX-EVENTS 1 ${EV_SIZE}\n`;

export class ReplayFormatError extends Error {}

export class EventRecorder {
  private readonly fd: number;
  private readonly len = Buffer.alloc(4);
  records = 0;

  constructor(file: string) {
    this.fd = fs.openSync(file, 'w');
    fs.writeSync(this.fd, MAGIC);
  }

  write(record: Uint8Array): void {
    this.len.writeUInt32LE(record.length, 0);
    fs.writeSync(this.fd, this.len);
    fs.writeSync(this.fd, record);
    this.records++;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Encodes records in memory (tests build replay files with it). */
export function encodeRecords(records: Uint8Array[]): Buffer {
  const parts: Buffer[] = [Buffer.from(MAGIC)];
  for (const r of records) {
    const len = Buffer.alloc(4);
    len.writeUInt32LE(r.length, 0);
    parts.push(len, Buffer.from(r));
  }
  return Buffer.concat(parts);
}

/** Calls `onRecord(bytes, view, off, len)` for every record in `data`. */
export function forEachRecord(data: Buffer, onRecord: (bytes: Buffer, view: DataView, off: number, len: number) => void): number {
  if (data.toString('latin1', 0, MAGIC.length) !== MAGIC) {
    throw new ReplayFormatError(`not a Gearbox event file for this layout (expected header ${JSON.stringify(MAGIC)})`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let off = MAGIC.length;
  let n = 0;
  while (off + 4 <= data.length) {
    const len = view.getUint32(off, true);
    off += 4;
    if (off + len > data.length) throw new ReplayFormatError(`record ${n} is truncated`);
    onRecord(data, view, off, len);
    off += len;
    n++;
  }
  return n;
}
