/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * maps.bpf.h: per-connection, per-flow, per-thread and per-process state,
 * and the maps that hold it (with the scope and filter maps the agent
 * fills). Definitions are __weak so that each .bpf.c can include them and
 * `bpftool gen object` links them into one map each.
 */
#ifndef GEARBOX_MAPS_BPF_H
#define GEARBOX_MAPS_BPF_H

#include "config.bpf.h"

/* Per-connection state, keyed by five-tuple. */
struct gb_conn_state {
	__u64 conn_id;
	__u64 last_ts;
	__u32 msg_seq;
	__u8 role;
	__u8 last_dir;
	__u8 start_pending; /* the next emitted event opens a message */
	__u8 role_inferred;
	struct gb_span_ctx ctx; /* context of the exchange in progress */
	__u64 pending_owner;	/* server: thread whose queue holds the request */
	__u32 pending_idx;	/* ... and its position there */
	__u32 pending_valid;
	/* server: the propagated context of the last request read, and how many
	 * more requests its read held (HTTP/1.1 pipelining) */
	__u8 base_trace_id[16];
	__u8 base_parent_id[8];
	__u8 base_flags;
	__u8 pipelined_left;
	__u8 pipeline_idx;
	__u8 _pad2;
	__u16 events_lost; /* this connection's events the ring buffer had no room for (mod 2^16) */
	__u16 _pad3;
};

/* Context this host will send on a flow: written in place by the send path
 * of a client connection when a request starts (one entry per connection,
 * from its first request to its close: no map update or delete per request),
 * read by sockops, which puts it on the segments that carry the request's
 * first byte and retires it once the peer has acknowledged that byte.
 *
 * `state` is one word, (start_seq << 32) | GB_FLOW_ACTIVE, so that:
 *  - the writer sets it to 0 before it rewrites the ids and to the new value
 *    after (atomic exchanges: ordered);
 *  - a reader copies the ids between two reads of it and keeps them only if
 *    the two are equal and active (never a half-written context on the wire);
 *  - sockops retires it with a compare-and-swap, which cannot undo a newer
 *    request's context written meanwhile. */
struct gb_flow_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 sampled;
	__u8 _pad[7];
	__u64 state;
};

#define GB_FLOW_ACTIVE 1ULL
#define GB_FLOW_SEQ(state) ((__u32)((state) >> 32)) /* TCP sequence number of the request's first byte */

/* Context received from the peer on a flow: written by sockops when it parses
 * the option, consumed once by the first read of a request. Kept apart from
 * flow_context_map so that nothing received is ever echoed back.
 *
 * Rewritten in place for each request (one entry per connection, from its
 * first received context to its close: no map update per request). sockops
 * is the only writer of a connection's entry (the socket lock serialises the
 * segments it parses); a reader may run at the same time on another CPU:
 *  - `gen` is odd while the ids are being written and moves by two for each
 *    new context;
 *  - a reader copies the ids between two reads of `gen` and keeps them only
 *    if both are the same even value;
 *  - the context is unconsumed while `consumed_gen` != `gen`; the reader
 *    marks it by storing the gen it read, so a newer context written
 *    meanwhile stays unconsumed. */
struct gb_peer_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 sampled;
	__u8 _pad[3];
	__u32 gen;
	__u32 consumed_gen;
	__u32 _pad2;
};

/* A server span a thread may be working for. */
struct gb_thread_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 sampled;
	__u8 valid;
	__u8 _pad[6];
};

/* What an event says of its connection and exchange. */
struct gb_conn_view {
	struct gb_span_ctx ctx;
	__u64 conn_id;
	__u32 msg_seq;
	__u16 events_lost;
	__u8 role;
	__u8 role_inferred;
};

/* Syscall arguments saved at enter, used at exit (task-local storage: no
 * hash update or delete per syscall, freed with the thread). */
struct gb_io_args {
	__u64 buf; /* user buffer, iovec, msghdr or mmsghdr pointer */
	__u64 sk;  /* struct sock * resolved at enter */
	__u64 ts;  /* enter time: a send is stamped when its data is handed over */
	struct gb_tuple tuple;
	__u16 syscall; /* 0: nothing saved */
	__u8 start;    /* a send that opens a message */
	__u8 _pad;
	/* A send's connection as of its enter, when its message state moved:
	 * its exit reports it without looking the connection up again. */
	struct gb_conn_view conn;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GB_MAX_CONNS);
	__type(key, struct gb_tuple);
	__type(value, struct gb_conn_state);
} conn_map SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GB_MAX_CONNS);
	__type(key, struct gb_tuple);
	__type(value, struct gb_flow_ctx);
} flow_context_map SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GB_MAX_CONNS);
	__type(key, struct gb_tuple);
	__type(value, struct gb_peer_ctx);
} peer_context_map SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct gb_io_args);
} io_args_map SEC(".maps") __weak;

/* The context current on the thread that opened a client connection, for the
 * first request on it: an event loop may write that request only after it has
 * read other requests (the connect completes asynchronously). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, GB_MAX_CONNS);
	__type(key, struct gb_tuple);
	__type(value, struct gb_thread_ctx);
} connect_ctx_map SEC(".maps") __weak;

/* Processes whose environment was already sent (GB_EV_PROC). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tgid */
	__type(value, __u8);
} seen_process_map SEC(".maps") __weak;

/* --trust-peers: the networks whose TCP options are believed. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct gb_peer_prefix);
	__type(value, __u8);
} trusted_peer_map SEC(".maps") __weak;

/* Process names (comm, NUL-padded to 16 bytes) never traced. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[16]);
	__type(value, __u8);
} excluded_comm_map SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} scope_cgroup SEC(".maps") __weak;

/* The current task is traced: in the agent's cgroup scope, and not the agent. */
static __always_inline int in_scope(void)
{
	if (gb_cfg.filter_cgroup && bpf_current_task_under_cgroup(&scope_cgroup, 0) != 1)
		return 0;
	return (__u32)(bpf_get_current_pid_tgid() >> 32) != gb_cfg.agent_tgid;
}

static __always_inline void set_v4mapped(__u8 addr[16], __u32 v4_net)
{
	__builtin_memset(addr, 0, 10);
	addr[10] = 0xff;
	addr[11] = 0xff;
	__builtin_memcpy(addr + 12, &v4_net, 4);
}
#endif /* GEARBOX_MAPS_BPF_H */
