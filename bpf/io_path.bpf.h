/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * io_path.bpf.h: what happens when a traced thread moves data on a TCP
 * connection, whichever syscall hooks saw it (syscalls.bpf.c).
 *
 * Span ids are born here. A message ends when the direction of data on the
 * connection flips (or a request-direction write/read follows an idle pause):
 *  - first send of a request on a client connection: new client span id, trace
 *    id from the thread's current server span (or a new trace), published in
 *    flow_context_map with the sequence number of the request's first byte,
 *    so that sockops puts it on the segment that carries that byte;
 *  - first recv of a request on a server connection: new server span id,
 *    parent and trace id from the peer's option (or a new trace); it becomes
 *    the thread's current context (keyed by pid and tid).
 *
 * A hook saves what it knows when data is handed over (io_args: the socket,
 * its tuple, where the payload starts) and reports at completion (emit).
 */
#ifndef GEARBOX_IO_PATH_BPF_H
#define GEARBOX_IO_PATH_BPF_H

#include "gearbox.bpf.h"
#include "thread_state.bpf.h"
#include "pipelining.h"
#include <bpf/bpf_tracing.h>

#define MMSG_MAX 8

/* Socket pointers handed to these functions are BTF-typed (a hook's argument,
 * or a pointer the hook typed with bpf_rdonly_cast): each field load is one
 * guarded instruction, not a bpf_probe_read_kernel call per field. */

static __always_inline void tuple_from_sock(struct sock *skp, struct gb_tuple *t)
{
	struct sock_common *sk = &skp->__sk_common;
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

#define TCP_CLOSE_STATE 7 /* TCP_CLOSE */

static __always_inline struct gb_conn_state *conn_lookup_or_create(struct gb_tuple *t, struct sock *sk)
{
	struct gb_conn_state *c = bpf_map_lookup_elem(&conn_map, t);
	if (c)
		return c;
	/* Reads of data that arrived before the peer's FIN can follow the
	 * close (sockops has already reclaimed the state): no new state for a
	 * closed socket, or it would never be reclaimed. */
	if (sk->__sk_common.skc_state == TCP_CLOSE_STATE)
		return NULL;
	/* A connection that existed before the agent (or before sockops saw
	 * its handshake): the side with the ephemeral port is the client; when
	 * that does not tell, the first data decides (see track_message). */
	struct gb_conn_state fresh = {};
	fresh.conn_id = new_conn_id();
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

/* The context the peer sent with this request, if it is not consumed yet
 * (see struct gb_peer_ctx for the protocol): into ctx's trace and parent. */
static __always_inline int take_peer_context(struct gb_tuple *t, struct gb_span_ctx *ctx)
{
	struct gb_peer_ctx *pc = bpf_map_lookup_elem(&peer_context_map, t);
	if (!pc)
		return 0;
	__u32 gen = *(volatile __u32 *)&pc->gen;
	if ((gen & 1) || gen == pc->consumed_gen)
		return 0;
	compiler_barrier();
	__builtin_memcpy(ctx->trace_id, pc->trace_id, 16);
	__builtin_memcpy(ctx->parent_span_id, pc->span_id, 8);
	__u8 sampled = pc->sampled;
	compiler_barrier();
	if (*(volatile __u32 *)&pc->gen != gen)
		return 0; /* a newer context is being written: not this request's */
	pc->consumed_gen = gen;
	ctx->flags = GB_F_HAS_PARENT | GB_F_REMOTE_PARENT | (sampled ? GB_F_SAMPLED : 0);
	return 1;
}

static __always_inline void start_server_span(struct gb_conn_state *c, struct gb_tuple *t, struct gb_thread_state *ts,
					      __u64 pid_tgid)
{
	struct gb_span_ctx ctx = {};
	new_span_id(ctx.span_id);
	if (take_peer_context(t, &ctx)) {
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
	ts->inherited = 0; /* its own request from now on */
	ts->server_tuple = *t;
	struct gb_thread_ctx tc = {};
	thread_ctx_set(&tc, ctx.trace_id, ctx.span_id, ctx.flags);
	ts->current = tc;
	forget_conn_request(c); /* the previous request on this connection is done */
	c->pending_owner = pid_tgid;
	c->pending_idx = pending_push(ts, pid_tgid, &tc); /* it becomes `dispatch` */
	c->pending_valid = 1;
}

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
	__u64 now = stamp_clock();
	if (ctx.flags & GB_F_SAMPLED) {
		struct gb_event *ev = event_reserve(sizeof(*ev));
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
			event_submit(ev, now, 0);
		} else {
			sc->events_lost++;
		}
	}
	struct gb_thread_ctx tc = {};
	thread_ctx_set(&tc, ctx.trace_id, ctx.span_id, ctx.flags);
	ts->current = tc;
	dispatch_set(ts, pid_tgid, &tc);
	ts->last_event = GB_TE_SERVER_READ;
}

/* The thread answered part of a read that held pipelined requests and now
 * calls downstream (or connects to): it is working on the next of them. */
static __always_inline void next_pipelined_request(struct gb_thread_state *ts, __u64 pid_tgid)
{
	if (!ts || !ts->pipelined)
		return;
	struct gb_conn_state *sc = bpf_map_lookup_elem(&conn_map, &ts->server_tuple);
	if (!sc || sc->role != GB_ROLE_SERVER || sc->pipelined_left == 0) {
		ts->pipelined = 0;
		return;
	}
	if (sc->last_dir == GB_DIR_SEND)
		start_pipelined_request(sc, &ts->server_tuple, ts, pid_tgid);
}

/* The context sockops is to put on the segment that carries sequence number
 * `start_seq` of flow `t` (see struct gb_flow_ctx for the protocol). */
static __always_inline void publish_flow_context(struct gb_tuple *t, struct gb_span_ctx *ctx, __u32 start_seq)
{
	__u64 state = ((__u64)start_seq << 32) | GB_FLOW_ACTIVE;
	struct gb_flow_ctx *fc = bpf_map_lookup_elem(&flow_context_map, t);
	if (!fc) { /* the connection's first request */
		struct gb_flow_ctx fresh = {};
		__builtin_memcpy(fresh.trace_id, ctx->trace_id, 16);
		__builtin_memcpy(fresh.span_id, ctx->span_id, 8);
		fresh.sampled = !!(ctx->flags & GB_F_SAMPLED);
		fresh.state = state;
		bpf_map_update_elem(&flow_context_map, t, &fresh, BPF_ANY);
		return;
	}
	__sync_lock_test_and_set(&fc->state, 0);
	__builtin_memcpy(fc->trace_id, ctx->trace_id, 16);
	__builtin_memcpy(fc->span_id, ctx->span_id, 8);
	fc->sampled = !!(ctx->flags & GB_F_SAMPLED);
	__sync_lock_test_and_set(&fc->state, state);
}

static __always_inline void start_client_span(struct gb_conn_state *c, struct gb_tuple *t, struct gb_thread_state *ts,
					      __u64 pid_tgid, struct sock *sk)
{
	next_pipelined_request(ts, pid_tgid);
	struct gb_span_ctx ctx = {};
	new_span_id(ctx.span_id);
	/* Which request this is for: see the rule in thread_state.bpf.h. */
	struct gb_thread_ctx parent = {};
	/* The context of the request that opened the connection is for its
	 * first request (the first or, after a greeting, second message). */
	struct gb_thread_ctx *tc = c->msg_seq <= 2 ? bpf_map_lookup_elem(&connect_ctx_map, t) : NULL;
	if (tc) {
		parent = *tc;
		bpf_map_delete_elem(&connect_ctx_map, t);
		tc = &parent;
	} else if (choose_parent(ts, pid_tgid, c->conn_id, &parent)) {
		tc = &parent;
	}
	if (tc && ts && !(ts->dispatch.valid && *(__u64 *)ts->dispatch.span_id == *(__u64 *)tc->span_id)) {
		dispatch_set(ts, pid_tgid, tc); /* a different request: not the queued one read last */
	}
	if (tc) {
		__builtin_memcpy(ctx.trace_id, tc->trace_id, 16);
		__builtin_memcpy(ctx.parent_span_id, tc->span_id, 8);
		ctx.flags = GB_F_HAS_PARENT | (tc->sampled ? GB_F_SAMPLED : 0);
	} else {
		new_trace_id(ctx.trace_id);
		ctx.flags = root_sampled() ? GB_F_SAMPLED : 0;
	}
	/* The request's first byte gets the next sequence number written. */
	__u32 start_seq = BPF_CORE_READ((struct tcp_sock *)sk, write_seq);
	publish_flow_context(t, &ctx, start_seq);
	c->ctx = ctx;
}

/* Advances the connection's message state for data moving in `dir` on socket
 * `sk`; `now` is idle_clock(). */
static __always_inline void track_message(struct gb_conn_state *c, struct gb_tuple *t, struct sock *sk, __u8 dir,
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
			/* The response has begun, so the peer has acknowledged
			 * the request's first byte: sockops retires its context
			 * on the flow's next segment (see context_to_send). */
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
		start_client_span(c, t, ts, pid_tgid, sk);
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

static __always_inline __u64 payload_source(struct gb_io_args *a, __u16 sc, __u64 *cap)
{
	struct iovec iov = {};
	__u64 buf = a->buf;
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

static __always_inline void view_conn(struct gb_conn_state *c, struct gb_conn_view *v)
{
	v->ctx = c->ctx;
	v->conn_id = c->conn_id;
	v->msg_seq = c->msg_seq;
	v->events_lost = c->events_lost;
	v->role = c->role;
	v->role_inferred = c->role_inferred;
}

static __always_inline void fill_event(struct gb_event *ev, struct gb_conn_view *v, struct gb_io_args *a, __u16 sc,
				       __u8 dir, __u64 bytes, __u64 pid_tgid, __u64 now, int start)
{
	ev->type = GB_EV_DATA;
	ev->direction = dir;
	ev->role = v->role;
	ev->flags = v->ctx.flags | (start ? GB_F_MSG_START : 0) | (v->role_inferred ? GB_F_ROLE_INFERRED : 0);
	ev->pid = pid_tgid >> 32;
	ev->tid = (__u32)pid_tgid;
	ev->msg_seq = v->msg_seq;
	ev->conn_id = v->conn_id;
	ev->ts_ns = now;
	ev->bytes = bytes;
	ev->syscall = sc;
	ev->payload_len = 0;
	ev->pipeline_idx = 0;
	ev->conn_lost = v->events_lost;
	ev->tuple = a->tuple;
	__builtin_memcpy(ev->trace_id, v->ctx.trace_id, 16);
	__builtin_memcpy(ev->span_id, v->ctx.span_id, 8);
	__builtin_memcpy(ev->parent_span_id, v->ctx.parent_span_id, 8);
}

/* The ring buffer had no room for an event of connection `c` (NULL: the one
 * of `a`'s tuple; event_reserve counted it): the agent sees the jump on the
 * connection's next event. */
static __always_inline void event_lost(struct gb_conn_state *c, struct gb_io_args *a)
{
	if (!c)
		c = bpf_map_lookup_elem(&conn_map, &a->tuple);
	if (c)
		c->events_lost++;
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
	struct gb_proc_event *e = event_reserve(sizeof(*e));
	if (!e)
		return;
	__builtin_memset(&e->ev, 0, sizeof(e->ev));
	e->ev.type = GB_EV_PROC;
	e->ev.pid = tgid;
	e->ev.tid = (__u32)pid_tgid;
	e->ev.ts_ns = now;
	bpf_get_current_comm(e->ev.comm, sizeof(e->ev.comm));
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	e->env_len = read_user_range(e->env, BPF_CORE_READ(mm, env_start), BPF_CORE_READ(mm, env_end), GB_PROC_ENV_MAX);
	e->args_len =
		read_user_range(e->args, BPF_CORE_READ(mm, arg_start), BPF_CORE_READ(mm, arg_end), GB_PROC_ARGS_MAX);
	event_submit(e, now, 1); /* wake the agent: the process may be short-lived */
}

/* Reports a sampled I/O of `ret` bytes (syscall `sc`) as connection view
 * `v` describes it; `c` is the connection when the caller holds it (a
 * receive), else NULL (a send, whose view was taken at enter). */
static __always_inline void emit(struct gb_conn_state *c, struct gb_conn_view *v, struct gb_io_args *a, __u16 sc,
				 __u8 dir, long ret, __u64 pid_tgid, __u64 now, int start)
{
	__u64 bytes = ret;
	if (sc == GB_SC_RECVMMSG || sc == GB_SC_SENDMMSG)
		bytes = mmsg_bytes(a->buf, ret);
	if (!start) {
		struct gb_event *ev = event_reserve(sizeof(*ev));
		if (!ev) {
			event_lost(c, a);
			return;
		}
		fill_event(ev, v, a, sc, dir, bytes, pid_tgid, now, 0);
		ev->comm[0] = 0;
		event_submit(ev, now, 0);
		return;
	}
	note_process(pid_tgid, now);
	struct gb_event_with_payload *e = event_reserve(sizeof(*e));
	if (!e) {
		event_lost(c, a);
		return;
	}
	fill_event(&e->ev, v, a, sc, dir, bytes, pid_tgid, now, 1);
	bpf_get_current_comm(e->ev.comm, sizeof(e->ev.comm));
	__u64 cap = bytes;
	__u64 src = payload_source(a, sc, &cap);
	__u64 n = bytes < cap ? bytes : cap;
	if (n > GB_PAYLOAD_MAX)
		n = GB_PAYLOAD_MAX;
	if (n && bpf_probe_read_user(e->payload, n, (void *)src) == 0) {
		e->ev.payload_len = n;
		if (c && v->role == GB_ROLE_SERVER && dir == GB_DIR_RECV)
			c->pipelined_left = gb_count_pipelined(e->payload, n, GB_PAYLOAD_MAX);
	}
	event_submit(e, now, 0);
}

/* This thread's slot for the arguments of the syscall in progress. */
static __always_inline struct gb_io_args *io_args_slot(int create)
{
	return bpf_task_storage_get(&io_args_map, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* The arguments the enter of syscall `sc` saved for this thread, taken (the
 * slot is marked empty; the pointer stays valid for this program run). */
static __always_inline struct gb_io_args *take_io_args(__u16 sc)
{
	struct gb_io_args *ap = io_args_slot(0);
	if (!ap || ap->syscall == 0)
		return NULL;
	__u16 saved = ap->syscall;
	ap->syscall = 0;
	return saved == sc ? ap : NULL;
}

/* Data is being handed to the kernel (send) or asked for (receive) on TCP
 * socket `sk` by a traced thread: saves what completion needs. `buf` is what
 * payload_source() resolves for syscall `sc`. A send's message state moves
 * now, before its segments leave, so that they carry its context, and the
 * send is reported as of now. */
static __always_inline void begin_io(struct sock *sk, __u16 sc, __u8 dir, __u64 buf)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct gb_io_args *a = io_args_slot(1);
	if (!a)
		return;
	a->buf = buf;
	a->sk = (__u64)sk;
	a->ts = 0;
	a->syscall = sc;
	tuple_from_sock(sk, &a->tuple);
	if (dir == GB_DIR_SEND) {
		struct gb_conn_state *c = conn_lookup_or_create(&a->tuple, sk);
		if (!c) {
			a->syscall = 0;
			return;
		}
		track_message(c, &a->tuple, sk, dir, thread_state(pid_tgid, 1), pid_tgid, idle_clock());
		a->start = c->start_pending;
		c->start_pending = 0;
		if (c->ctx.flags & GB_F_SAMPLED) {
			a->ts = stamp_clock();
			view_conn(c, &a->conn);
		} else
			a->conn.ctx.flags = 0; /* nothing to report at exit */
	}
}

/* Syscall `sc`, whose saved arguments are `a`, completed with `ret` bytes (or
 * an error); `sk` is a's socket, typed. */
static __always_inline void finish_io(struct gb_io_args *a, __u16 sc, struct sock *sk, __u8 dir, long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if (dir == GB_DIR_SEND) {
		if (ret <= 0) {
			/* Nothing went: the next send still opens the message. */
			struct gb_conn_state *c = a->start ? bpf_map_lookup_elem(&conn_map, &a->tuple) : NULL;
			if (c)
				c->start_pending = 1;
			return;
		}
		if (a->conn.ctx.flags & GB_F_SAMPLED)
			emit(NULL, &a->conn, a, sc, dir, ret, pid_tgid, a->ts, a->start);
		return;
	}
	if (ret <= 0)
		return;
	/* Receives are stamped at exit (data arrived), sends at enter (data
	 * handed to the kernel): a peer's span then always nests inside ours. */
	struct gb_conn_state *c = conn_lookup_or_create(&a->tuple, sk);
	if (!c)
		return;
	struct gb_thread_state *ts = thread_state(pid_tgid, 1);
	track_message(c, &a->tuple, sk, dir, ts, pid_tgid, idle_clock());
	int start = c->start_pending;
	c->start_pending = 0;
	if (!(c->ctx.flags & GB_F_SAMPLED))
		return; /* unsampled: the context still travels, nothing is reported */
	__u64 now = stamp_clock();
	struct gb_conn_view v;
	view_conn(c, &v);
	emit(c, &v, a, sc, dir, ret, pid_tgid, now, start);
	if (start && ts && c->role == GB_ROLE_SERVER) /* emit counted the pipelined requests */
		ts->pipelined = c->pipelined_left > 0;
}

/* A traced thread opened client connection `sk` (its local port is bound):
 * the request it is working for is the parent of the first request sent on
 * it, whenever that is written. */
static __always_inline void remember_opener(struct sock *sk)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct gb_thread_state *ts = thread_state(pid_tgid, 0);
	next_pipelined_request(ts, pid_tgid);
	struct gb_thread_ctx opener = {};
	if (!choose_parent(ts, pid_tgid, 0, &opener))
		return;
	struct gb_tuple t = {};
	tuple_from_sock(sk, &t);
	bpf_map_update_elem(&connect_ctx_map, &t, &opener, BPF_ANY);
}

#endif /* GEARBOX_IO_PATH_BPF_H */
