/**
 * One agent per cgroup scope: an exclusive flock on /run/gearbox/cgroup-<id>.lock,
 * held for the agent's life. The kernel drops it when the process dies, even
 * by SIGKILL, so a crashed agent never blocks the next one.
 */
import fs from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { LOCK_EX, LOCK_NB, libbpf } from './libbpf';

export class ScopeTakenError extends Error {}

export const LOCK_DIR = '/run/gearbox';

export class ScopeLock {
  private fd = -1;

  constructor(private readonly cgroupPath: string) {}

  acquire(): void {
    const id = fs.statSync(this.cgroupPath, { bigint: true }).ino;
    fs.mkdirSync(LOCK_DIR, { recursive: true, mode: 0o755 });
    const file = path.join(LOCK_DIR, `cgroup-${id}.lock`);
    this.fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    if ((libbpf().flock(this.fd, LOCK_EX | LOCK_NB) as number) !== 0) {
      const errno = koffi.errno();
      let holder = '';
      try {
        holder = fs.readFileSync(file, 'utf8').trim();
      } catch {
        /* unknown holder */
      }
      fs.closeSync(this.fd);
      this.fd = -1;
      throw new ScopeTakenError(`another Gearbox agent${holder ? ` (pid ${holder})` : ''} already traces ${this.cgroupPath}; stop it first (errno ${errno})`);
    }
    fs.ftruncateSync(this.fd, 0);
    fs.writeSync(this.fd, `${process.pid}\n`, 0);
  }

  release(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd); // closing the only descriptor drops the lock
    this.fd = -1;
  }
}
