/**
 * Runs a call with this thread's signals held back: they stay pending and are
 * delivered when it returns. For the load of the BPF object: the verifier
 * gives up with EAGAIN when a signal is pending for the loading thread, and
 * libbpf retries a program only five times, so a profiler's SIGPROF every
 * millisecond (`node --cpu-prof`, which needs ~15 ms for the largest
 * program) or any burst of signals would fail the agent's start. SIGKILL and
 * SIGSTOP cannot be held; a Ctrl-C during the load acts right after it.
 */
import { libbpf } from './libbpf';

// <signal.h> on Linux: the same values on every architecture.
const SIG_BLOCK = 0;
const SIG_SETMASK = 2;
/** sizeof(sigset_t) in glibc: 1024 bits. */
const SIGSET_BYTES = 128;

export function withSignalsHeld<T>(call: () => T): T {
  const lib = libbpf();
  const previous = Buffer.alloc(SIGSET_BYTES);
  if ((lib.pthread_sigmask(SIG_BLOCK, Buffer.alloc(SIGSET_BYTES, 0xff), previous) as number) !== 0) return call();
  try {
    return call();
  } finally {
    lib.pthread_sigmask(SIG_SETMASK, previous, null);
  }
}
