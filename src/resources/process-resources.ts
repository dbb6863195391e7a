/**
 * One OTel Resource per traced process: service.name from the process's own
 * OTEL_SERVICE_NAME (read from /proc/<pid>/environ) when set, else (in a
 * Kubernetes pod) the pod's workload name, else the
 * process name (comm: what ps shows; Debian's redis-server, for one, is a
 * link to redis-check-rdb); plus process.* and host.name. Resolved when a process is
 * first seen (it may be gone by the time its spans are exported) and cached
 * by pid + start time, so a reused pid gets a fresh resource.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import {
  ATTR_SERVICE_NAME,
  ATTR_PROCESS_PID,
  ATTR_PROCESS_EXECUTABLE_NAME,
  ATTR_PROCESS_COMMAND_LINE,
  ATTR_HOST_NAME,
  ATTR_TELEMETRY_SDK_NAME,
  ATTR_TELEMETRY_SDK_LANGUAGE,
  ATTR_K8S_POD_UID,
  ATTR_K8S_POD_NAME,
  ATTR_CONTAINER_ID,
} from '@opentelemetry/semantic-conventions/incubating';

export interface ProcessInfo {
  pid: number;
  serviceName: string;
  executableName: string;
  commandLine?: string;
  /** Present when the process's cgroup says it runs in a Kubernetes pod. */
  k8s?: { podUid: string; podName?: string; containerId?: string };
}

/** Pod uid and container id from a cgroup v2 path under kubepods. */
export function kubernetesFromCgroup(procCgroup: string | undefined): { podUid: string; containerId?: string } | undefined {
  const line = procCgroup?.split('\n').find((l) => l.startsWith('0::'));
  if (!line || !line.includes('kubepods')) return undefined;
  const pod = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/.exec(line);
  if (!pod) return undefined;
  const container = /([0-9a-f]{64})(?:\.scope)?\s*$/.exec(line);
  return { podUid: pod[1].replace(/_/g, '-'), containerId: container?.[1] };
}

/** The workload a pod name belongs to: Deployment pods drop "-<hash>-<id>", StatefulSet pods "-<ordinal>". */
export function workloadFromPodName(pod: string): string {
  return pod
    .replace(/-[0-9a-f]{6,10}-[0-9a-z]{5}$/, '')
    .replace(/-[0-9a-z]{5}$/, '')
    .replace(/-\d+$/, '');
}

export type ServiceNameSource = 'env' | 'comm' | 'cgroup';

function readText(p: string): string | undefined {
  try {
    return fs.readFileSync(p, 'latin1');
  } catch {
    return undefined;
  }
}

function startTime(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // Field 22 (starttime), counted after the ')' that closes comm.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

/**
 * The service a cgroup v2 path names: its last component without systemd's
 * .scope/.service/.slice suffix, with container runtime prefixes
 * (docker-, cri-containerd-, crio-) dropped.
 */
export function serviceNameFromCgroup(procCgroup: string | undefined): string | undefined {
  const line = procCgroup?.split('\n').find((l) => l.startsWith('0::'));
  if (!line) return undefined;
  const last = line.slice(3).split('/').filter(Boolean).pop();
  if (!last) return undefined;
  return last.replace(/\.(scope|service|slice)$/, '').replace(/^(docker|cri-containerd|crio|libpod)-/, '') || undefined;
}

/** What the kernel sent about a process when it first talked (GB_EV_PROC). */
export interface KernelProcessView {
  comm: string;
  env: Buffer; // NUL-separated KEY=VALUE
  args: Buffer; // NUL-separated argv
}

/** Reads what /proc says about `pid`; `comm` is the fallback when it is gone. */
export function readProcessInfo(
  pid: number,
  comm: string | undefined,
  from: ServiceNameSource = 'env',
  procRoot = '/proc',
  kernel?: KernelProcessView,
): ProcessInfo {
  let exe: string | undefined;
  try {
    exe = path.basename(fs.readlinkSync(`${procRoot}/${pid}/exe`)).replace(/ \(deleted\)$/, '');
  } catch {
    exe = undefined;
  }
  const procComm = readText(`${procRoot}/${pid}/comm`)?.trim() || comm;
  const executableName = exe ?? procComm ?? `pid-${pid}`;
  const cmdline = kernel?.args.length ? kernel.args.toString('latin1') : readText(`${procRoot}/${pid}/cmdline`);
  const commandLine = cmdline ? cmdline.split('\0').filter(Boolean).join(' ') : undefined;
  let serviceName: string | undefined;
  const environ = (kernel?.env.length ? kernel.env.toString('latin1') : readText(`${procRoot}/${pid}/environ`))?.split('\0') ?? [];
  const envVar = (name: string) =>
    environ
      .find((e) => e.startsWith(`${name}=`))
      ?.slice(name.length + 1)
      .trim() || undefined;
  const cgroup = readText(`${procRoot}/${pid}/cgroup`);
  const pod = kubernetesFromCgroup(cgroup);
  // In a pod, HOSTNAME is the pod's name (unless the pod sets another).
  const k8s = pod ? { ...pod, podName: envVar('HOSTNAME') } : undefined;
  if (from === 'env') serviceName = envVar('OTEL_SERVICE_NAME') ?? (k8s?.podName ? workloadFromPodName(k8s.podName) : undefined);
  if (from === 'cgroup') serviceName = serviceNameFromCgroup(cgroup);
  return { pid, serviceName: serviceName ?? procComm ?? executableName, executableName, commandLine, k8s };
}

export class ProcessResources {
  private readonly cache = new Map<number, { start?: string; comm?: string; resource: Resource; info: ProcessInfo }>();

  constructor(
    private readonly base: Record<string, string> = {},
    private readonly serviceNameFrom: ServiceNameSource = 'env',
    private readonly maxEntries = 16384,
  ) {}

  /** The resource for `pid`; reads /proc the first time a pid is seen. */
  get(pid: number, comm?: string): Resource {
    const hit = this.cache.get(pid);
    if (hit) return hit.resource;
    return this.resolve(pid, comm).resource;
  }

  /**
   * The kernel's view of a process, sent before its first traced message:
   * enough for its resource even if it exits before /proc is read.
   */
  learn(pid: number, view: KernelProcessView): void {
    this.resolve(pid, view.comm, view);
  }

  /**
   * Call on a message start. Resolves a new pid at once (the process may be
   * gone by the time its spans are exported); re-resolves a known pid only
   * when its comm changed (exec, or pid reuse) and /proc shows a new process.
   */
  observe(pid: number, comm?: string): void {
    const hit = this.cache.get(pid);
    if (hit) {
      if (!comm || comm === hit.comm) return;
      const now = startTime(pid);
      if (now === undefined || now === hit.start) {
        hit.comm = comm; // renamed thread or process: same process
        return;
      }
    }
    this.resolve(pid, comm);
  }

  info(pid: number): ProcessInfo | undefined {
    return this.cache.get(pid)?.info;
  }

  private resolve(pid: number, comm?: string, kernel?: KernelProcessView) {
    if (this.cache.size >= this.maxEntries) {
      const first = this.cache.keys().next().value as number;
      this.cache.delete(first);
    }
    const info = readProcessInfo(pid, comm, this.serviceNameFrom, '/proc', kernel);
    const attrs: Record<string, string | number> = {
      [ATTR_HOST_NAME]: os.hostname(),
      ...this.base,
      [ATTR_SERVICE_NAME]: info.serviceName,
      [ATTR_PROCESS_PID]: pid,
      [ATTR_PROCESS_EXECUTABLE_NAME]: info.executableName,
      [ATTR_TELEMETRY_SDK_NAME]: 'gearbox',
      [ATTR_TELEMETRY_SDK_LANGUAGE]: 'ebpf',
    };
    if (info.commandLine) attrs[ATTR_PROCESS_COMMAND_LINE] = info.commandLine;
    if (info.k8s) {
      attrs[ATTR_K8S_POD_UID] = info.k8s.podUid;
      if (info.k8s.podName) attrs[ATTR_K8S_POD_NAME] = info.k8s.podName;
      if (info.k8s.containerId) attrs[ATTR_CONTAINER_ID] = info.k8s.containerId;
    }
    const entry = { start: startTime(pid), comm, resource: resourceFromAttributes(attrs), info };
    this.cache.set(pid, entry);
    return entry;
  }
}
