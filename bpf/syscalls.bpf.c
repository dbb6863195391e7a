// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * syscalls.bpf.c: watches every read and write of the traced processes on
 * TCP sockets and turns them into ring-buffer events, one per syscall.
 *
 * Filters, cheapest first: task in the agent's cgroup scope -> not the agent
 * -> fd is a socket -> socket is TCP over IPv4/IPv6. Everything else returns.
 *
 * Span ids are born here. A message ends when the direction of data on the
 * connection flips (or a request-direction write/read follows an idle pause):
 *  - first send of a request on a client connection: new client span id, trace
 *    id from the thread's current server span (or a new trace), published in
 *    flow_context_map so that sockops puts it on every segment;
 *  - first recv of a request on a server connection: new server span id,
 *    parent and trace id from the peer's option (or a new trace); it becomes
 *    the thread's current context (keyed by pid and tid).
 */
#include "maps.bpf.h"
#include "thread_state.bpf.h"
#include <bpf/bpf_tracing.h>

#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define MMSG_MAX 8

/* Kernel memory read through typed pointers: each field load is one guarded
 * instruction instead of a bpf_probe_read_kernel call per field. */
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
	struct file **fds = fdt->fd;
	struct file *fp = NULL;
	bpf_probe_read_kernel(&fp, sizeof(fp), &fds[fd]);
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

static __always_inline void tuple_from_sock(struct sock *skp, struct gb_tuple *t)
{
	struct sock_common *sk = kernel_ptr(struct sock_common, skp);
	if (sk->skc_family == AF_INET) {
		set_v4mapped(t->local_addr, sk->skc_rcv_saddr);
		set_v4mapped(t->remote_addr, sk->skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&t->local_addr, sk, skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&t->remote_addr, sk, skc_v6_daddr.in6_u.u6_addr8);
	}
	t->local_port = sk->skc_num;
	t->remote_port = bpf_ntohs(sk->skc_dport);
}

/* Processes excluded by name; looked at only for TCP socket I/O. */
static __always_inline int excluded_task(void)
{
	if (!gb_cfg.exclude_comms)
		return 0;
	char comm[16] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	return bpf_map_lookup_elem(&excluded_comm_map, comm) != NULL;
}

static __always_inline int in_scope(void)
{
	if (gb_cfg.filter_cgroup && bpf_current_task_under_cgroup(&scope_cgroup, 0) != 1)
		return 0;
	return (__u32)(bpf_get_current_pid_tgid() >> 32) != gb_cfg.agent_tgid;
}

#define TCP_CLOSE_STATE 7 /* TCP_CLOSE */

static __always_inline struct gb_conn_state *conn_lookup_or_create(struct gb_tuple *t, struct sock *sk)
{
	struct gb_conn_state *c = bpf_map_lookup_elem(&conn_map, t);
	if (c)
		return c;
	/* Reads of data that arrived before the peer's FIN can follow the
	 * close (sockops has already reclaimed the state): no new state for a
	 * closed socket, or it would never be reclaimed. */
	if (kernel_ptr(struct sock_common, sk)->skc_state == TCP_CLOSE_STATE)
		return NULL;
	/* A connection that existed before the agent (or before sockops saw
	 * its handshake): the side with the ephemeral port is the client; when
	 * that does not tell, the first data decides (see track_message). */
	struct gb_conn_state fresh = {};
	fresh.conn_id = (((__u64)bpf_get_prandom_u32() & 0x1fffff) << 32) | bpf_get_prandom_u32();
	int local_eph = t->local_port >= gb_cfg.ephemeral_lo && t->local_port <= gb_cfg.ephemeral_hi;
	int remote_eph = t->remote_port >= gb_cfg.ephemeral_lo && t->remote_port <= gb_cfg.ephemeral_hi;
	if (local_eph != remote_eph) {
		fresh.role = local_eph ? GB_ROLE_CLIENT : GB_ROLE_SERVER;
		fresh.role_inferred = 1;
	}
	bpf_map_update_elem(&conn_map, t, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&conn_map, t);
}

/* The connection's request leaves the queue of the thread that read it. */
static __always_inline void forget_conn_request(struct gb_conn_state *c)
{
	if (!c->pending_valid)
		return;
	c->pending_valid = 0;
	pending_forget(thread_state(c->pending_owner, 0), c->pending_owner, c->pending_idx);
}

static __always_inline void start_server_span(struct gb_conn_state *c, struct gb_tuple *t, struct gb_thread_state *ts,
					      __u64 pid_tgid)
{
	struct gb_span_ctx ctx = {};
	new_span_id(ctx.span_id);
	struct gb_peer_ctx *pc = bpf_map_lookup_elem(&peer_context_map, t);
	if (pc && !pc->consumed) {
		__builtin_memcpy(ctx.trace_id, pc->trace_id, 16);
		__builtin_memcpy(ctx.parent_span_id, pc->span_id, 8);
		ctx.flags = GB_F_HAS_PARENT | GB_F_REMOTE_PARENT | (pc->sampled ? GB_F_SAMPLED : 0);
		pc->consumed = 1;
		count(GB_CNT_CTX_ADOPTED);
	} else {
		new_trace_id(ctx.trace_id);
		ctx.flags = root_sampled() ? GB_F_SAMPLED : 0;
	}
	c->ctx = ctx;
	__builtin_memcpy(c->base_trace_id, ctx.trace_id, 16);
	__builtin_memcpy(c->base_parent_id, ctx.parent_span_id, 8);
	c->base_flags = ctx.flags;
	c->pipelined_left = 0; /* set by emit() once the payload head is seen */
	c->pipeline_idx = 0;
	if (!ts)
		return;
	ts->server_tuple = *t;
	struct gb_thread_ctx tc = {};
	thread_ctx_set(&tc, ctx.trace_id, ctx.span_id, ctx.flags);
	ts->current = tc;
	ts->dispatch = tc;
	forget_conn_request(c); /* the previous request on this connection is done */
	c->pending_owner = pid_tgid;
	c->pending_idx = pending_push(ts, pid_tgid, &tc);
	c->pending_valid = 1;
	ts->dispatch_idx = c->pending_idx;
	ts->dispatch_queued = 1;
}

static __always_inline __u64 wakeup_flag(void);

/* Opens pipelined request k on server connection `sc`: it arrived in the same
 * read as the request before it, so it has no data event of its own. Its ids
 * derive from the first request's the way the client's agent derives its
 * span for it (pipeline_derive). */
static __always_inline void start_pipelined_request(struct gb_conn_state *sc, struct gb_tuple *st,
						    struct gb_thread_state *ts, __u64 pid_tgid)
{
	sc->pipelined_left--;
	sc->pipeline_idx++;
	struct gb_span_ctx ctx = {};
	__builtin_memcpy(ctx.trace_id, sc->base_trace_id, 16);
	__builtin_memcpy(ctx.parent_span_id, sc->base_parent_id, 8);
	pipeline_derive(ctx.trace_id, ctx.parent_span_id, sc->pipeline_idx);
	new_span_id(ctx.span_id);
	ctx.flags = sc->base_flags & (GB_F_SAMPLED | GB_F_HAS_PARENT | GB_F_REMOTE_PARENT);
	sc->ctx = ctx;
	sc->msg_seq++;
	sc->last_dir = GB_DIR_RECV;
	sc->start_pending = 0;
	__u64 now = bpf_ktime_get_ns();
	if (ctx.flags & GB_F_SAMPLED) {
		struct gb_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
		if (ev) {
			__builtin_memset(ev, 0, sizeof(*ev));
			ev->type = GB_EV_DATA;
			ev->direction = GB_DIR_RECV;
			ev->role = GB_ROLE_SERVER;
			ev->flags = ctx.flags | GB_F_MSG_START | GB_F_PIPELINED;
			ev->pid = pid_tgid >> 32;
			ev->tid = (__u32)pid_tgid;
			ev->msg_seq = sc->msg_seq;
			ev->conn_id = sc->conn_id;
			ev->ts_ns = now;
			ev->pipeline_idx = sc->pipeline_idx;
			ev->conn_lost = sc->events_lost;
			ev->tuple = *st;
			__builtin_memcpy(ev->trace_id, ctx.trace_id, 16);
			__builtin_memcpy(ev->span_id, ctx.span_id, 8);
			__builtin_memcpy(ev->parent_span_id, ctx.parent_span_id, 8);
			bpf_ringbuf_submit(ev, wakeup_flag());
			count(GB_CNT_EVENTS_SENT);
		} else {
			sc->events_lost++;
			count(GB_CNT_EVENTS_LOST);
		}
	}
	struct gb_thread_ctx tc = {};
	thread_ctx_set(&tc, ctx.trace_id, ctx.span_id, ctx.flags);
	ts->current = tc;
	ts->dispatch = tc;
	ts->dispatch_queued = 0;
	ts->last_event = GB_TE_SERVER_READ;
}

/* The thread answered part of a read that held pipelined requests and now
 * calls downstream (or connects to): it is working on the next of them. */
static __always_inline void next_pipelined_request(struct gb_thread_state *ts, __u64 pid_tgid)
{
	if (!ts)
		return;
	struct gb_conn_state *sc = bpf_map_lookup_elem(&conn_map, &ts->server_tuple);
	if (sc && sc->role == GB_ROLE_SERVER && sc->pipelined_left > 0 && sc->last_dir == GB_DIR_SEND)
		start_pipelined_request(sc, &ts->server_tuple, ts, pid_tgid);
}

static __always_inline void start_client_span(struct gb_conn_state *c, struct gb_tuple *t, struct gb_thread_state *ts,
					      __u64 pid_tgid)
{
	next_pipelined_request(ts, pid_tgid);
	struct gb_span_ctx ctx = {};
	new_span_id(ctx.span_id);
	/* Which request this is for: see the rule in thread_state.bpf.h. */
	struct gb_thread_ctx parent = {};
	struct gb_thread_ctx *tc = bpf_map_lookup_elem(&connect_ctx_map, t);
	if (tc) {
		parent = *tc;
		bpf_map_delete_elem(&connect_ctx_map, t);
		tc = &parent;
	} else if (choose_parent(ts, pid_tgid, c->conn_id, &parent)) {
		tc = &parent;
	}
	if (tc && ts && !(ts->dispatch.valid && *(__u64 *)ts->dispatch.span_id == *(__u64 *)tc->span_id)) {
		ts->dispatch = *tc; /* a different request: not the queued one read last */
		ts->dispatch_queued = 0;
	}
	if (tc) {
		__builtin_memcpy(ctx.trace_id, tc->trace_id, 16);
		__builtin_memcpy(ctx.parent_span_id, tc->span_id, 8);
		ctx.flags = GB_F_HAS_PARENT | (tc->sampled ? GB_F_SAMPLED : 0);
	} else {
		new_trace_id(ctx.trace_id);
		ctx.flags = root_sampled() ? GB_F_SAMPLED : 0;
	}
	struct gb_flow_ctx fc = {};
	__builtin_memcpy(fc.trace_id, ctx.trace_id, 16);
	__builtin_memcpy(fc.span_id, ctx.span_id, 8);
	fc.sampled = !!(ctx.flags & GB_F_SAMPLED);
	bpf_map_update_elem(&flow_context_map, t, &fc, BPF_ANY);
	c->ctx = ctx;
}

/* Advances the connection's message state for data moving in `dir`. */
static __always_inline void track_message(struct gb_conn_state *c, struct gb_tuple *t, __u8 dir,
					  struct gb_thread_state *ts, __u64 pid_tgid, __u64 now)
{
	if (c->role == GB_ROLE_UNKNOWN) {
		c->role = dir == GB_DIR_SEND ? GB_ROLE_CLIENT : GB_ROLE_SERVER;
		c->role_inferred = 1;
	}
	int is_request = (c->role == GB_ROLE_CLIENT) == (dir == GB_DIR_SEND);
	__u64 prev = c->last_ts;
	int idle = prev != 0 && now > prev && now - prev > gb_cfg.idle_ns;
	if (now > prev)
		c->last_ts = now;
	if (c->last_dir == dir && !(is_request && idle))
		goto note;
	c->msg_seq++;
	c->last_dir = dir;
	c->start_pending = 1;
	if (!is_request) {
		if (c->role == GB_ROLE_CLIENT) {
			/* The response has begun, so the request has fully arrived:
			 * stop putting its context on this flow's segments. */
			bpf_map_delete_elem(&flow_context_map, t);
			/* Work this response resumes is for the exchange's parent;
			 * a root exchange (background work) resumes no request. */
			if (ts && (c->ctx.flags & GB_F_HAS_PARENT))
				thread_ctx_set(&ts->continuation, c->ctx.trace_id, c->ctx.parent_span_id, c->ctx.flags);
			else if (ts)
				ts->continuation.valid = 0;
		} else {
			forget_conn_request(c); /* answering: no longer pending */
		}
	} else if (c->role == GB_ROLE_SERVER) {
		start_server_span(c, t, ts, pid_tgid);
	} else {
		start_client_span(c, t, ts, pid_tgid);
	}
note:
	if (!ts)
		return;
	if (dir == GB_DIR_SEND) {
		ts->last_event = c->role == GB_ROLE_CLIENT ? GB_TE_CLIENT_WRITE : GB_TE_SERVER_WRITE;
	} else if (c->role == GB_ROLE_SERVER) {
		ts->last_event = GB_TE_SERVER_READ;
	} else {
		ts->last_event = GB_TE_CLIENT_READ;
		ts->response_conn_id = c->conn_id;
	}
}

static __always_inline __u64 payload_source(__u16 sc, __u64 buf, __u64 *cap)
{
	struct iovec iov = {};
	switch (sc) {
	case GB_SC_READ:
	case GB_SC_WRITE:
	case GB_SC_RECVFROM:
	case GB_SC_SENDTO:
		return buf;
	case GB_SC_READV:
	case GB_SC_WRITEV:
		bpf_probe_read_user(&iov, sizeof(iov), (void *)buf);
		break;
	default: {
		/* msghdr, or the first mmsghdr whose first member is a msghdr */
		struct user_msghdr mh = {};
		bpf_probe_read_user(&mh, sizeof(mh), (void *)buf);
		bpf_probe_read_user(&iov, sizeof(iov), mh.msg_iov);
		break;
	}
	}
	*cap = iov.iov_len;
	return (__u64)iov.iov_base;
}

static __always_inline __u64 mmsg_bytes(__u64 vec, long nmsgs)
{
	__u64 total = 0;
	for (int i = 0; i < MMSG_MAX; i++) {
		if (i >= nmsgs)
			break;
		unsigned int len = 0;
		struct mmsghdr *m = (struct mmsghdr *)vec + i;
		bpf_probe_read_user(&len, sizeof(len), &m->msg_len);
		total += len;
	}
	return total;
}

static __always_inline void fill_event(struct gb_event *ev, struct gb_conn_state *c, struct gb_io_args *a,
				       __u8 dir, __u64 bytes, __u64 pid_tgid, __u64 now, int start)
{
	ev->type = GB_EV_DATA;
	ev->direction = dir;
	ev->role = c->role;
	ev->flags = c->ctx.flags | (start ? GB_F_MSG_START : 0) | (c->role_inferred ? GB_F_ROLE_INFERRED : 0);
	ev->pid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	ev->msg_seq = c->msg_seq;
	ev->conn_id = c->conn_id;
	ev->ts_ns = now;
	ev->bytes = bytes;
	ev->syscall = a->syscall;
	ev->payload_len = 0;
	ev->pipeline_idx = 0;
	ev->conn_lost = c->events_lost;
	ev->tuple = a->tuple;
	__builtin_memcpy(ev->trace_id, c->ctx.trace_id, 16);
	__builtin_memcpy(ev->span_id, c->ctx.span_id, 8);
	__builtin_memcpy(ev->parent_span_id, c->ctx.parent_span_id, 8);
}

/* Requests that follow the first one in a read's head: an end of headers
 * followed by a method (HTTP/1.1 pipelining). */
static __always_inline __u8 count_pipelined(const __u8 *p, __u64 n)
{
	__u8 more = 0;
	for (__u32 i = 0; i < GB_PAYLOAD_MAX - 8; i++) {
		if (i + 8 > n)
			break;
		if (p[i] != '\r' || p[i + 1] != '\n' || p[i + 2] != '\r' || p[i + 3] != '\n')
			continue;
		__u8 a = p[i + 4], b = p[i + 5], c = p[i + 6], d = p[i + 7];
		if ((a == 'G' && b == 'E' && c == 'T') || (a == 'P' && (b == 'O' || b == 'U' || b == 'A')) ||
		    (a == 'H' && b == 'E') || (a == 'D' && b == 'E') || (a == 'O' && b == 'P'))
			more++;
		(void)d;
	}
	return more;
}

static __always_inline __u64 wakeup_flag(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= gb_cfg.ringbuf_wakeup_bytes
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

/* Copies up to `max` bytes of [start, end) of the task's memory. */
static __always_inline __u32 read_user_range(__u8 *dst, __u64 start, __u64 end, __u64 max)
{
	if (end <= start)
		return 0;
	__u64 n = end - start;
	if (n > max)
		n = max;
	if (bpf_probe_read_user(dst, n, (void *)start) != 0)
		return 0;
	return n;
}

/* Once per process: its environment and arguments, for its resource. */
static __always_inline void note_process(__u64 pid_tgid, __u64 now)
{
	__u32 tgid = pid_tgid >> 32;
	if (bpf_map_lookup_elem(&seen_process_map, &tgid))
		return;
	__u8 one = 1;
	bpf_map_update_elem(&seen_process_map, &tgid, &one, BPF_ANY);
	struct gb_proc_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(GB_CNT_EVENTS_LOST);
		return;
	}
	__builtin_memset(&e->ev, 0, sizeof(e->ev));
	e->ev.type = GB_EV_PROC;
	e->ev.pid = tgid;
	e->ev.tid = (__u32)pid_tgid;
	e->ev.ts_ns = now;
	bpf_get_current_comm(e->ev.comm, sizeof(e->ev.comm));
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	e->env_len = read_user_range(e->env, BPF_CORE_READ(mm, env_start), BPF_CORE_READ(mm, env_end), GB_PROC_ENV_MAX);
	e->args_len = read_user_range(e->args, BPF_CORE_READ(mm, arg_start), BPF_CORE_READ(mm, arg_end), GB_PROC_ARGS_MAX);
	bpf_ringbuf_submit(e, 0); /* wake the agent: the process may be short-lived */
	count(GB_CNT_EVENTS_SENT);
}

static __always_inline void emit(struct gb_conn_state *c, struct gb_io_args *a, __u8 dir, long ret,
				 __u64 pid_tgid, __u64 now)
{
	int start = c->start_pending;
	c->start_pending = 0;
	if (!(c->ctx.flags & GB_F_SAMPLED))
		return; /* unsampled: the context still travels, nothing is reported */
	__u64 bytes = ret;
	if (a->syscall == GB_SC_RECVMMSG || a->syscall == GB_SC_SENDMMSG)
		bytes = mmsg_bytes(a->buf, ret);
	if (!start) {
		struct gb_event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
		if (!ev) {
			c->events_lost++; /* the agent sees the jump on the connection's next event */
			count(GB_CNT_EVENTS_LOST);
			return;
		}
		fill_event(ev, c, a, dir, bytes, pid_tgid, now, 0);
		ev->comm[0] = 0;
		bpf_ringbuf_submit(ev, wakeup_flag());
		count(GB_CNT_EVENTS_SENT);
		return;
	}
	note_process(pid_tgid, now);
	struct gb_event_with_payload *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		c->events_lost++;
		count(GB_CNT_EVENTS_LOST);
		return;
	}
	fill_event(&e->ev, c, a, dir, bytes, pid_tgid, now, 1);
	bpf_get_current_comm(e->ev.comm, sizeof(e->ev.comm));
	__u64 cap = bytes;
	__u64 src = payload_source(a->syscall, a->buf, &cap);
	__u64 n = bytes < cap ? bytes : cap;
	if (n > GB_PAYLOAD_MAX)
		n = GB_PAYLOAD_MAX;
	if (n && bpf_probe_read_user(e->payload, n, (void *)src) == 0) {
		e->ev.payload_len = n;
		if (c->role == GB_ROLE_SERVER && dir == GB_DIR_RECV)
			c->pipelined_left = count_pipelined(e->payload, n);
	}
	bpf_ringbuf_submit(e, wakeup_flag());
	count(GB_CNT_EVENTS_SENT);
}

#define MSG_PEEK 2
#define EINPROGRESS 115

/* This thread's slot for the arguments of the syscall in progress. */
static __always_inline struct gb_io_args *io_args_slot(int create)
{
	return bpf_task_storage_get(&io_args_map, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

static __always_inline int on_enter(struct trace_event_raw_sys_enter *ctx, __u16 sc, __u8 dir, int flags_arg)
{
	if (!in_scope())
		return 0;
	/* A peek (e.g. nginx testing a kept-alive connection) consumes nothing. */
	__u64 flags = flags_arg == 2 ? ctx->args[2] : flags_arg == 3 ? ctx->args[3] : 0; /* constant-folded */
	if (flags & MSG_PEEK)
		return 0;
	struct sock *sk = tcp_sock_from_fd((int)ctx->args[0]);
	if (!sk || excluded_task())
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct gb_io_args *a = io_args_slot(1);
	if (!a)
		return 0;
	a->buf = ctx->args[1];
	a->sk = (__u64)sk;
	a->ts = 0;
	a->syscall = sc;
	tuple_from_sock(sk, &a->tuple);
	if (dir == GB_DIR_SEND) {
		/* Before the data leaves: the context must be in its segments. */
		struct gb_conn_state *c = conn_lookup_or_create(&a->tuple, sk);
		if (!c) {
			a->syscall = 0;
			return 0;
		}
		a->ts = bpf_ktime_get_ns();
		track_message(c, &a->tuple, dir, thread_state(pid_tgid, 1), pid_tgid, a->ts);
	}
	return 0;
}

/* The arguments the enter of syscall `sc` saved for this thread, taken. */
static __always_inline int take_io_args(__u16 sc, struct gb_io_args *out)
{
	struct gb_io_args *ap = io_args_slot(0);
	if (!ap || ap->syscall == 0)
		return 0;
	*out = *ap;
	ap->syscall = 0;
	return out->syscall == sc;
}

static __always_inline int on_exit(struct trace_event_raw_sys_exit *ctx, __u16 sc, __u8 dir)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct gb_io_args a;
	if (!take_io_args(sc, &a))
		return 0;
	long ret = ctx->ret;
	if (ret <= 0)
		return 0;
	/* Sends are stamped at enter (data handed to the kernel), receives at
	 * exit (data arrived): a peer's span then always nests inside ours. */
	__u64 now = dir == GB_DIR_SEND ? a.ts : bpf_ktime_get_ns();
	struct gb_conn_state *c = conn_lookup_or_create(&a.tuple, (struct sock *)a.sk);
	if (!c)
		return 0;
	if (dir == GB_DIR_RECV)
		track_message(c, &a.tuple, dir, thread_state(pid_tgid, 1), pid_tgid, now);
	emit(c, &a, dir, ret, pid_tgid, now);
	return 0;
}

#define GB_SYSCALL(name, sc, dir, flags_arg)                                       \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                \
	int gb_enter_##name(struct trace_event_raw_sys_enter *ctx)                  \
	{                                                                          \
		return on_enter(ctx, sc, dir, flags_arg);                          \
	}                                                                          \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                 \
	int gb_exit_##name(struct trace_event_raw_sys_exit *ctx)                    \
	{                                                                          \
		return on_exit(ctx, sc, dir);                                      \
	}

GB_SYSCALL(read, GB_SC_READ, GB_DIR_RECV, -1)
GB_SYSCALL(readv, GB_SC_READV, GB_DIR_RECV, -1)
GB_SYSCALL(recvfrom, GB_SC_RECVFROM, GB_DIR_RECV, 3)
GB_SYSCALL(recvmsg, GB_SC_RECVMSG, GB_DIR_RECV, 2)
GB_SYSCALL(recvmmsg, GB_SC_RECVMMSG, GB_DIR_RECV, 3)
GB_SYSCALL(write, GB_SC_WRITE, GB_DIR_SEND, -1)
GB_SYSCALL(writev, GB_SC_WRITEV, GB_DIR_SEND, -1)
GB_SYSCALL(sendto, GB_SC_SENDTO, GB_DIR_SEND, -1)
GB_SYSCALL(sendmsg, GB_SC_SENDMSG, GB_DIR_SEND, -1)
GB_SYSCALL(sendmmsg, GB_SC_SENDMMSG, GB_DIR_SEND, -1)

/* connect(): remember the context of the request that opened the connection. */
SEC("tracepoint/syscalls/sys_enter_connect")
int gb_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	if (!in_scope())
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!thread_state(pid_tgid, 0))
		return 0; /* nothing to remember */
	struct sock *sk = tcp_sock_from_fd((int)ctx->args[0]);
	if (!sk || excluded_task())
		return 0;
	struct gb_io_args *a = io_args_slot(1);
	if (!a)
		return 0;
	a->sk = (__u64)sk;
	a->syscall = GB_SC_CONNECT;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int gb_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct gb_io_args a;
	if (!take_io_args(GB_SC_CONNECT, &a) || (ctx->ret != 0 && ctx->ret != -EINPROGRESS))
		return 0;
	struct gb_thread_state *ts = thread_state(pid_tgid, 0);
	next_pipelined_request(ts, pid_tgid);
	struct gb_thread_ctx opener = {};
	if (!choose_parent(ts, pid_tgid, 0, &opener))
		return 0;
	struct gb_tuple t = {};
	tuple_from_sock((struct sock *)a.sk, &t); /* the local port is bound by now */
	bpf_map_update_elem(&connect_ctx_map, &t, &opener, BPF_ANY);
	return 0;
}

/* A thread (or process) created while serving a request works for it too:
 * handlers that fan out to worker threads keep their parent. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(gb_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!in_scope())
		return 0;
	__u64 parent_key = ((__u64)parent->tgid << 32) | (__u32)parent->pid;
	struct gb_thread_state *ts = thread_state(parent_key, 0);
	if (!ts)
		return 0;
	__u64 child_key = ((__u64)child->tgid << 32) | (__u32)child->pid;
	struct gb_thread_state copy = *ts;
	copy.pending_head = copy.pending_tail = 0; /* the queue stays with the parent */
	copy.dispatch_queued = 0;
	bpf_map_update_elem(&thread_state_map, &child_key, &copy, BPF_ANY);
	return 0;
}

/* A thread that exits leaves nothing behind: its state and its queue of
 * pending requests go, and with the main thread the process's "seen" mark
 * (task-local storage, io_args_map, goes with the task by itself). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(gb_task_exit, struct task_struct *task)
{
	__u32 tgid = task->tgid;
	__u64 key = ((__u64)tgid << 32) | (__u32)task->pid;
	struct gb_thread_state *ts = bpf_map_lookup_elem(&thread_state_map, &key);
	if (ts) {
		struct gb_pending_key k = { .pid_tgid = key };
		for (int i = 0; i < GB_PENDING_SCAN; i++) {
			if (ts->pending_head == ts->pending_tail)
				break;
			k.idx = ts->pending_head++;
			bpf_map_delete_elem(&pending_map, &k);
		}
		bpf_map_delete_elem(&thread_state_map, &key);
	}
	if (task->pid == tgid)
		bpf_map_delete_elem(&seen_process_map, &tgid);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
