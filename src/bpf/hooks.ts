/**
 * How the syscalls are hooked (bpf/syscalls.bpf.c): `raw` (one program on the
 * raw_syscalls sys_enter/sys_exit tracepoints, dispatching on the syscall
 * number) or `per-syscall` (a program on each syscalls:sys_{enter,exit}_NAME
 * tracepoint). `auto`: raw, or per-syscall where the kernel refuses tp_btf.
 */
export type HookSet = 'raw' | 'per-syscall';
export type HookChoice = HookSet | 'auto';
export const HOOK_CHOICES: HookChoice[] = ['auto', 'raw', 'per-syscall'];

/** The hook set a program belongs to, by its section; undefined: loaded with either. */
export function hookSetOf(section: string): HookSet | undefined {
  if (section === 'tp_btf/sys_enter' || section === 'tp_btf/sys_exit') return 'raw';
  if (section.startsWith('tracepoint/syscalls/')) return 'per-syscall';
  return undefined;
}
