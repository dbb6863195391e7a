/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * thread_state.bpf.h: which request a thread is working for when it starts a
 * client request. Per thread (pid and tid), with lifetimes bounded by the
 * requests themselves:
 *
 *  current       the server span of the request the thread read last;
 *  dispatch      the request the thread's current burst of work is for: set
 *                when it reads a request and kept while it writes requests
 *                downstream without reading anything else in between;
 *  continuation  the parent of the client exchange whose response the thread
 *                read last (work resumed by a response);
 *  pending       requests read but not yet answered that have made no
 *                downstream call yet, oldest first (a queue per thread: the
 *                newest in `dispatch`, the others in pending_map; the
 *                connection remembers its request's position).
 *
 * The rule for a new client request (see choose_parent), in order:
 *  1. the connection was opened for a request: that one (connect_ctx_map);
 *  2. nothing but request reads and downstream writes since the last request
 *     read: `dispatch` (thread per request; event loops handling a request in
 *     one go; fan-out from one handler);
 *  3. written on the client connection whose response the thread just read,
 *     while requests are pending: the oldest pending one (an event loop hands
 *     a freed pooled connection to the next queued request);
 *  4. `continuation` (a later step of the request a response resumed);
 *  5. `current`; else the request is a root.
 * A request leaves `pending` when it makes its first downstream call or when
 * its response starts; a new request read replaces `current` and `dispatch`.
 * State a thread inherited at its creation is used only while the request it
 * came from is unanswered (inherited_alive).
 */
#ifndef GEARBOX_THREAD_STATE_BPF_H
#define GEARBOX_THREAD_STATE_BPF_H

#include "gearbox.bpf.h"

enum gb_thread_event {
	GB_TE_NONE = 0,
	GB_TE_SERVER_READ = 1,
	GB_TE_CLIENT_WRITE = 2,
	GB_TE_CLIENT_READ = 3,
	GB_TE_SERVER_WRITE = 4,
};

#define GB_PENDING_SCAN 16 /* pending slots looked at per pop or trim */

/* A pending request: key (thread, position in that thread's queue). */
struct gb_pending_key {
	__u64 pid_tgid;
	__u32 idx;
	__u32 _pad;
};

struct gb_pending {
	struct gb_thread_ctx ctx;
};

struct gb_thread_state {
	struct gb_thread_ctx current;
	struct gb_thread_ctx dispatch;
	struct gb_thread_ctx continuation;
	__u64 response_conn_id;
	__u32 pending_head; /* oldest position that may still be queued */
	__u32 pending_tail; /* next position to use */
	__u32 dispatch_idx; /* queue position of `dispatch`, if it came from a request read */
	__u8 last_event;
	__u8 dispatch_queued;
	__u8 pipelined;		      /* the request read last came with pipelined ones behind it */
	__u8 inherited;		      /* the state came from the thread's creator (see inherited_alive) */
	struct gb_tuple server_tuple; /* connection of the request read last */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GB_MAX_THREADS);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct gb_thread_state);
} thread_state_map SEC(".maps") __weak;

/* Requests read and not yet answered that made no downstream call yet. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GB_MAX_CONNS);
	__type(key, struct gb_pending_key);
	__type(value, struct gb_pending);
} pending_map SEC(".maps") __weak;

/* A valid thread context for span `span_id` of trace `trace_id`. */
static __always_inline void thread_ctx_set(struct gb_thread_ctx *dst, const __u8 *trace_id, const __u8 *span_id,
					   __u8 flags)
{
	__builtin_memcpy(dst->trace_id, trace_id, 16);
	__builtin_memcpy(dst->span_id, span_id, 8);
	dst->sampled = !!(flags & GB_F_SAMPLED);
	dst->valid = 1;
}

static __always_inline struct gb_thread_state *thread_state(__u64 pid_tgid, int create)
{
	struct gb_thread_state *ts = bpf_map_lookup_elem(&thread_state_map, &pid_tgid);
	if (ts || !create)
		return ts;
	struct gb_thread_state init = {};
	bpf_map_update_elem(&thread_state_map, &pid_tgid, &init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&thread_state_map, &pid_tgid);
}

/*
 * The queue's newest request is kept in `dispatch` alone while
 * `dispatch_queued` is set (then dispatch_idx == pending_tail - 1): it goes
 * into pending_map only when something else takes the `dispatch` slot while
 * it is still queued (dispatch_set). A request that makes its downstream
 * call or is answered before the thread reads the next request, the common
 * case, costs no map update or delete.
 */

/* Whether position idx of the thread's queue still holds a request. */
static __always_inline int pending_queued(struct gb_thread_state *ts, __u64 pid_tgid, __u32 idx)
{
	if (ts->dispatch_queued && idx == ts->dispatch_idx)
		return 1;
	struct gb_pending_key k = {.pid_tgid = pid_tgid, .idx = idx};
	return bpf_map_lookup_elem(&pending_map, &k) != NULL;
}

/* `dispatch` now holds `ctx` (not queued). The only way `dispatch` is
 * written: a request it held that is still queued first moves into
 * pending_map at its position. */
static __always_inline void dispatch_set(struct gb_thread_state *ts, __u64 pid_tgid, const struct gb_thread_ctx *ctx)
{
	if (ts->dispatch_queued) {
		struct gb_pending_key k = {.pid_tgid = pid_tgid, .idx = ts->dispatch_idx};
		struct gb_pending v = {.ctx = ts->dispatch};
		bpf_map_update_elem(&pending_map, &k, &v, BPF_ANY);
		ts->dispatch_queued = 0;
	}
	ts->dispatch = *ctx;
}

/* Moves the head past positions that are no longer queued. */
static __always_inline void pending_trim(struct gb_thread_state *ts, __u64 pid_tgid)
{
	for (int i = 0; i < GB_PENDING_SCAN; i++) {
		if (ts->pending_head == ts->pending_tail)
			return;
		if (pending_queued(ts, pid_tgid, ts->pending_head))
			return;
		ts->pending_head++;
	}
}

/* Queues request `ctx`, just read, as the thread's `dispatch`; returns its
 * position. */
static __always_inline __u32 pending_push(struct gb_thread_state *ts, __u64 pid_tgid, const struct gb_thread_ctx *ctx)
{
	dispatch_set(ts, pid_tgid, ctx);
	__u32 idx = ts->pending_tail++;
	ts->dispatch_idx = idx;
	ts->dispatch_queued = 1;
	return idx;
}

/* Request `idx` of the thread's queue is no longer pending; `ts` is that
 * thread's state (NULL if it is gone). */
static __always_inline void pending_forget(struct gb_thread_state *ts, __u64 pid_tgid, __u32 idx)
{
	if (ts && (__u32)(idx - ts->pending_head) >= (__u32)(ts->pending_tail - ts->pending_head))
		return; /* not in the queue any more (taken, or trimmed past) */
	if (ts && ts->dispatch_queued && idx == ts->dispatch_idx) {
		ts->dispatch_queued = 0;
		if (ts->pending_head == idx) { /* it was the only one */
			ts->pending_head = ts->pending_tail;
			return;
		}
	} else {
		struct gb_pending_key k = {.pid_tgid = pid_tgid, .idx = idx};
		bpf_map_delete_elem(&pending_map, &k);
	}
	if (ts && idx == ts->pending_head)
		pending_trim(ts, pid_tgid);
}

static __always_inline int pending_pop(struct gb_thread_state *ts, __u64 pid_tgid, struct gb_thread_ctx *out)
{
	struct gb_pending_key k = {.pid_tgid = pid_tgid};
	for (int i = 0; i < GB_PENDING_SCAN; i++) {
		if (ts->pending_head == ts->pending_tail)
			return 0;
		k.idx = ts->pending_head++;
		if (ts->dispatch_queued && k.idx == ts->dispatch_idx) {
			*out = ts->dispatch;
			ts->dispatch_queued = 0;
			return 1;
		}
		struct gb_pending *p = bpf_map_lookup_elem(&pending_map, &k);
		if (p) {
			*out = p->ctx;
			bpf_map_delete_elem(&pending_map, &k);
			return 1;
		}
	}
	return 0;
}

/* A thread's state inherited at its creation stands for the request its
 * creator was serving only while that request is unanswered: the request is
 * still the one in progress on its server connection, and no byte of the
 * response has been written. After that it parents nothing (a pool thread
 * created during one request would otherwise parent every request it writes
 * from then on). */
static __always_inline int inherited_alive(struct gb_thread_state *ts)
{
	struct gb_conn_state *c = bpf_map_lookup_elem(&conn_map, &ts->server_tuple);
	return c && c->role == GB_ROLE_SERVER && c->last_dir == GB_DIR_RECV && ts->current.valid &&
	       *(__u64 *)c->ctx.span_id == *(__u64 *)ts->current.span_id;
}

/* The rule above; conn_id is 0 at connect() (no connection yet to match). */
static __always_inline int choose_parent(struct gb_thread_state *ts, __u64 pid_tgid, __u64 conn_id,
					 struct gb_thread_ctx *out)
{
	if (!ts)
		return 0;
	if (ts->inherited && !inherited_alive(ts)) {
		ts->dispatch.valid = 0;
		ts->continuation.valid = 0;
		ts->current.valid = 0;
		ts->inherited = 0;
		count(GB_CNT_CTX_EXPIRED);
	}
	if ((ts->last_event == GB_TE_SERVER_READ || ts->last_event == GB_TE_CLIENT_WRITE) && ts->dispatch.valid) {
		*out = ts->dispatch;
		if (ts->dispatch_queued) /* it makes its downstream call (or opens one): no longer pending */
			pending_forget(ts, pid_tgid, ts->dispatch_idx);
		return 1;
	}
	if (conn_id && conn_id == ts->response_conn_id && pending_pop(ts, pid_tgid, out))
		return 1;
	if (ts->continuation.valid) {
		*out = ts->continuation;
		return 1;
	}
	if (ts->current.valid) {
		*out = ts->current;
		return 1;
	}
	return 0;
}

#endif /* GEARBOX_THREAD_STATE_BPF_H */
