/**
 * `--cpu-priority idle`: every thread of the agent under SCHED_IDLE, so that
 * any ordinary task that wakes up on a core the agent is using gets it at
 * once. The agent then only ever runs on CPU time nobody else wants: the
 * services' tail latency does not see its export bursts, and when the
 * machine is saturated the agent falls behind instead (the ring buffer
 * overflows, the CPU budget lowers the sampling ratio). Threads created
 * later inherit the policy from the thread that creates them.
 */
import fs from 'node:fs';
import koffi from 'koffi';
import { libbpf } from '../bpf/libbpf';

export const CPU_PRIORITIES = ['normal', 'idle'] as const;
export type CpuPriority = (typeof CPU_PRIORITIES)[number];

const SCHED_OTHER = 0;
const SCHED_IDLE = 5;

export class CpuPriorityError extends Error {}

/** Puts every thread of this process under `priority`'s policy. */
export function setCpuPriority(priority: CpuPriority): void {
  const policy = priority === 'idle' ? SCHED_IDLE : SCHED_OTHER;
  const param = Buffer.alloc(4); // struct sched_param { int sched_priority = 0 }
  for (const tid of fs.readdirSync('/proc/self/task').map(Number)) {
    if ((libbpf().sched_setscheduler(tid, policy, param) as number) !== 0) {
      const errno = koffi.errno();
      if (errno === 3) continue; // ESRCH: the thread has just exited
      throw new CpuPriorityError(`cannot set the agent's thread ${tid} to ${priority} priority (errno ${errno})`);
    }
  }
}
