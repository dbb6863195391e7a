// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * syscalls.bpf.c: the syscall hooks. Enter and exit of read, readv, recvfrom,
 * recvmsg, recvmmsg, write, writev, sendto, sendmsg, sendmmsg and connect;
 * one event per syscall on a TCP socket. Two ways to attach, same work:
 *
 *  --hooks raw (default): one program each on the raw_syscalls tracepoints
 *    sys_enter and sys_exit (tp_btf), dispatching on the syscall number;
 *  --hooks per-syscall: a program on each syscalls:sys_{enter,exit}_NAME
 *    tracepoint (perf-event tracepoints: the kernel builds a record of the
 *    arguments for each hit before the program runs).
 *
 * Either way, while attached, every syscall of every task takes the kernel's
 * slow syscall path (that is what a syscall tracepoint is). The raw programs
 * run for every syscall and return after one compare for the ones they do not
 * watch; the per-syscall ones cost more per hit (the record). Measured side
 * by side by `npm run bench`.
 *
 * Filters, cheapest first: watched syscall -> task in the agent's cgroup
 * scope -> not the agent -> fd is a socket -> socket is TCP over IPv4/IPv6.
 */
#include "io_path.bpf.h"

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define EINPROGRESS 115
#define MSG_PEEK 2

/* Kernel memory read through typed pointers: each field load is one guarded
 * instruction instead of a bpf_probe_read_kernel call per field. (Declared in
 * this object only: libbpf 1.1's linker cannot merge one kfunc extern from
 * two objects; io_path.bpf.h takes typed pointers.) */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define kernel_ptr(type, p) ((type *)bpf_rdonly_cast((void *)(p), bpf_core_type_id_kernel(type)))

/* task -> files -> fd table -> file -> socket -> sock, or NULL if the fd is
 * not a TCP socket over IPv4/IPv6. */
static __always_inline struct sock *tcp_sock_from_fd(int fd)
{
	if (fd < 0)
		return NULL;
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	if ((unsigned int)fd >= fdt->max_fds)
		return NULL;
	/* fds[fd], read as the first member of a struct that starts with a
	 * struct file pointer: a guarded load, not a bpf_probe_read_kernel call */
	struct file **fds = fdt->fd;
	struct file *fp = kernel_ptr(struct kiocb, &fds[fd])->ki_filp;
	if (!fp)
		return NULL;
	struct file *f = kernel_ptr(struct file, fp);
	if ((f->f_inode->i_mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *so = kernel_ptr(struct socket, f->private_data);
	struct sock *sk = so->sk;
	if (!sk)
		return NULL;
	if (sk->sk_protocol != IPPROTO_TCP || sk->sk_type != SOCK_STREAM)
		return NULL;
	__u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	return sk;
}

/* Enter of syscall `sc` with its first arguments (fd, buffer, flags). */
static __always_inline int on_enter(__u16 sc, __u8 dir, long fd, __u64 buf, __u64 flags)
{
	if (!in_scope())
		return 0;
	/* A peek (e.g. nginx testing a kept-alive connection) consumes nothing. */
	if (flags & MSG_PEEK)
		return 0;
	struct sock *sk = tcp_sock_from_fd((int)fd);
	if (!sk || excluded_task())
		return 0;
	begin_io(sk, sc, dir, buf);
	return 0;
}

static __always_inline int on_exit(__u16 sc, __u8 dir, long ret)
{
	struct gb_io_args *a = take_io_args(sc);
	if (a)
		finish_io(a, sc, kernel_ptr(struct sock, a->sk), dir, ret);
	return 0;
}

/* connect(): remember the context of the request that opened the connection. */
static __always_inline int on_enter_connect(long fd)
{
	if (!in_scope())
		return 0;
	if (!thread_state(bpf_get_current_pid_tgid(), 0))
		return 0; /* nothing to remember */
	struct sock *sk = tcp_sock_from_fd((int)fd);
	if (!sk || excluded_task())
		return 0;
	struct gb_io_args *a = io_args_slot(1);
	if (!a)
		return 0;
	a->sk = (__u64)sk;
	a->syscall = GB_SC_CONNECT;
	return 0;
}

static __always_inline int on_exit_connect(long ret)
{
	struct gb_io_args *a = take_io_args(GB_SC_CONNECT);
	if (!a || (ret != 0 && ret != -EINPROGRESS))
		return 0;
	remember_opener(kernel_ptr(struct sock, a->sk)); /* the local port is bound by now */
	return 0;
}

/* ---- per-syscall tracepoints ---- */

/* The watched data syscalls, written once for both hook sets: name,
 * Gearbox's number (enum gb_syscall), direction, and which argument holds
 * the flags (-1: none). */
#define GB_DATA_SYSCALLS(X)                         \
	X(read, GB_SC_READ, GB_DIR_RECV, -1)        \
	X(readv, GB_SC_READV, GB_DIR_RECV, -1)      \
	X(recvfrom, GB_SC_RECVFROM, GB_DIR_RECV, 3) \
	X(recvmsg, GB_SC_RECVMSG, GB_DIR_RECV, 2)   \
	X(recvmmsg, GB_SC_RECVMMSG, GB_DIR_RECV, 3) \
	X(write, GB_SC_WRITE, GB_DIR_SEND, -1)      \
	X(writev, GB_SC_WRITEV, GB_DIR_SEND, -1)    \
	X(sendto, GB_SC_SENDTO, GB_DIR_SEND, -1)    \
	X(sendmsg, GB_SC_SENDMSG, GB_DIR_SEND, -1)  \
	X(sendmmsg, GB_SC_SENDMMSG, GB_DIR_SEND, -1)

#define FLAGS_ARG(ctx, i) ((i) == 2 ? (ctx)->args[2] : (i) == 3 ? (ctx)->args[3] : 0) /* constant-folded */
#define GB_SYSCALL(name, sc, dir, flags_arg)                                                     \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                              \
	int gb_enter_##name(struct trace_event_raw_sys_enter *ctx)                               \
	{                                                                                        \
		return on_enter(sc, dir, ctx->args[0], ctx->args[1], FLAGS_ARG(ctx, flags_arg)); \
	}                                                                                        \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                               \
	int gb_exit_##name(struct trace_event_raw_sys_exit *ctx)                                 \
	{                                                                                        \
		return on_exit(sc, dir, ctx->ret);                                               \
	}

GB_DATA_SYSCALLS(GB_SYSCALL)

SEC("tracepoint/syscalls/sys_enter_connect")
int gb_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter_connect(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int gb_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit_connect(ctx->ret);
}

/* ---- raw_syscalls tracepoints: one program for every syscall ---- */

/* The kernel's syscall numbers (asm/unistd_64.h) and argument registers. */
#if defined(__TARGET_ARCH_x86)
enum {
	NR_read = 0,
	NR_write = 1,
	NR_readv = 19,
	NR_writev = 20,
	NR_connect = 42,
	NR_sendto = 44,
	NR_recvfrom = 45,
	NR_sendmsg = 46,
	NR_recvmsg = 47,
	NR_recvmmsg = 299,
	NR_sendmmsg = 307,
};
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#define SYSCALL_ARG0(regs) ((regs)->di)
#define SYSCALL_ARG1(regs) ((regs)->si)
#define SYSCALL_ARG2(regs) ((regs)->dx)
#define SYSCALL_ARG3(regs) ((regs)->r10)
/* A 32-bit task's syscall numbers mean other calls: not watched (as the
 * per-syscall tracepoints do not report them either). */
#define TS_COMPAT 0x0002
#define COMPAT_TASK() (bpf_get_current_task_btf()->thread_info.status & TS_COMPAT)
#elif defined(__TARGET_ARCH_arm64)
enum {
	NR_read = 63,
	NR_write = 64,
	NR_readv = 65,
	NR_writev = 66,
	NR_connect = 203,
	NR_sendto = 206,
	NR_recvfrom = 207,
	NR_sendmsg = 211,
	NR_recvmsg = 212,
	NR_recvmmsg = 243,
	NR_sendmmsg = 269,
};
#define SYSCALL_NR(regs) ((regs)->syscallno)
#define SYSCALL_ARG0(regs) ((regs)->orig_x0)
#define SYSCALL_ARG1(regs) ((regs)->regs[1])
#define SYSCALL_ARG2(regs) ((regs)->regs[2])
#define SYSCALL_ARG3(regs) ((regs)->regs[3])
#define COMPAT_TASK() 0 /* compat tasks: see is_compat_task(); not traced on arm64 kernels we build for */
#else
#error "syscall numbers for this architecture are not in syscalls.bpf.c"
#endif

/* The flags argument of a syscall of the table (constant-folded). */
#define SYSCALL_FLAGS(regs, i) ((i) == 2 ? SYSCALL_ARG2(regs) : (i) == 3 ? SYSCALL_ARG3(regs) : 0)

SEC("tp_btf/sys_enter")
int BPF_PROG(gb_sys_enter, struct pt_regs *regs, long id)
{
	__u16 sc;
	__u8 dir = GB_DIR_RECV;
	__u64 flags = 0;
	switch (id) {
#define ENTER_CASE(name, sc_, dir_, flags_arg)          \
	case NR_##name:                                 \
		sc = sc_;                               \
		dir = dir_;                             \
		flags = SYSCALL_FLAGS(regs, flags_arg); \
		break;
		GB_DATA_SYSCALLS(ENTER_CASE)
#undef ENTER_CASE
	case NR_connect:
		return COMPAT_TASK() ? 0 : on_enter_connect(SYSCALL_ARG0(regs));
	default:
		return 0;
	}
	if (COMPAT_TASK())
		return 0;
	return on_enter(sc, dir, SYSCALL_ARG0(regs), SYSCALL_ARG1(regs), flags);
}

/* One call of on_exit per direction after the dispatch, not one inlined copy
 * per syscall: 21 KB of machine code instead of 81 (no difference in run
 * time measured; less kernel memory, and a quicker load). */
SEC("tp_btf/sys_exit")
int BPF_PROG(gb_sys_exit, struct pt_regs *regs, long ret)
{
	__u16 sc;
	__u8 dir = GB_DIR_RECV;
	switch (SYSCALL_NR(regs)) {
#define EXIT_CASE(name, sc_, dir_, flags_arg) \
	case NR_##name:                       \
		sc = sc_;                     \
		dir = dir_;                   \
		break;
		GB_DATA_SYSCALLS(EXIT_CASE)
#undef EXIT_CASE
	case NR_connect:
		return on_exit_connect(ret);
	default:
		return 0;
	}
	return dir == GB_DIR_SEND ? on_exit(sc, GB_DIR_SEND, ret) : on_exit(sc, GB_DIR_RECV, ret);
}

char LICENSE[] SEC("license") = "GPL";
