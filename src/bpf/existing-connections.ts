/**
 * Connections opened before the agent: the TCP socket iterator
 * (bpf/existing.bpf.c) turns on for them the header-option callbacks new
 * connections get from sockops. An iterator sees the sockets of the network
 * namespace it is created in, so the agent's main thread enters each
 * namespace of the traced processes in turn (setns) and comes back. Best
 * effort: where it fails, new connections are still traced.
 */
import fs from 'node:fs';
import path from 'node:path';
import { libbpf } from './libbpf';

const CLONE_NEWNET = 0x40000000;

/** One /proc/<pid>/ns/net path per distinct network namespace of the processes under `cgroup` (all processes if undefined), own namespace first. */
export function netNamespacesOf(cgroup: string | undefined): string[] {
  const seen = new Map<bigint, string>();
  seen.set(fs.statSync('/proc/self/ns/net', { bigint: true }).ino, '/proc/self/ns/net');
  const pids: string[] = [];
  if (cgroup) {
    const walk = (dir: string) => {
      try {
        pids.push(...fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean));
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name));
      } catch {
        /* removed while walking */
      }
    };
    walk(cgroup);
  } else {
    pids.push(...fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)));
  }
  for (const pid of pids) {
    try {
      const p = `/proc/${pid}/ns/net`;
      const ino = fs.statSync(p, { bigint: true }).ino;
      if (!seen.has(ino)) seen.set(ino, p);
    } catch {
      /* exited */
    }
  }
  return [...seen.values()];
}

/** Runs the attached iterator `linkFd` once in each namespace (paths from netNamespacesOf). */
export function runIteratorInEachNamespace(linkFd: number, namespaces: string[]): void {
  const lib = libbpf();
  const own = fs.openSync('/proc/self/ns/net', 'r');
  try {
    for (const nsPath of namespaces) {
      let nsFd = -1;
      try {
        nsFd = fs.openSync(nsPath, 'r');
        if (nsPath !== '/proc/self/ns/net' && (lib.setns(nsFd, CLONE_NEWNET) as number) !== 0) continue;
        const fd = lib.bpf_iter_create(linkFd) as number;
        if (fd >= 0) {
          const buf = Buffer.alloc(4096);
          while ((lib.read(fd, buf, buf.length) as number) > 0) {
            /* the iterator prints nothing; reading drives it */
          }
          lib.close(fd);
        }
      } catch {
        /* the process (and its namespace) went away */
      } finally {
        if (nsFd >= 0) fs.closeSync(nsFd);
      }
      // Not in a finally: a `continue` above never left the agent's namespace.
      if ((lib.setns(own, CLONE_NEWNET) as number) !== 0) throw new Error("cannot return to the agent's own network namespace");
    }
  } finally {
    fs.closeSync(own);
  }
}
