/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * maps.bpf.h: maps and configuration shared by the syscall tracepoints and the
 * sockops program. Definitions are __weak so that each .bpf.c can include them
 * and `bpftool gen object` links them into one map each.
 */
#ifndef GEARBOX_MAPS_BPF_H
#define GEARBOX_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "gearbox.h"

#define GB_MAX_CONNS 65536
#define GB_MAX_THREADS 65536

const volatile struct gb_config gb_cfg __weak = {
	.agent_tgid = 0,
	.filter_cgroup = 0,
	.idle_ns = 2000000000ULL,
	.ringbuf_wakeup_bytes = 256 * 1024,
	.ephemeral_lo = 32768,
	.ephemeral_hi = 60999,
};

/* The clock that measures pauses between messages (gb_cfg.idle_ns): the
 * kernel's tick count (a load, where a clock-source read costs ~30 ns in a
 * VM) when the pause is long next to a tick, the exact clock otherwise or
 * when the agent could not learn the tick's length (gb_cfg.ns_per_tick 0:
 * no kernel config to read it from). Only sampled events need the exact
 * time. (bpf_ktime_get_coarse_ns is not allowed in tracing programs; a
 * __kconfig extern would make libbpf refuse to load where there is no
 * kernel config file.) */
#define GB_TICK_CLOCK_MIN_IDLE_NS 100000000ULL
static __always_inline __u64 idle_clock(void)
{
	if (gb_cfg.idle_ns >= GB_TICK_CLOCK_MIN_IDLE_NS && gb_cfg.ns_per_tick)
		return bpf_jiffies64() * gb_cfg.ns_per_tick;
	return bpf_ktime_get_ns();
}

/* The clock of the events' timestamps: CLOCK_TAI, the wall clock plus the
 * kernel's TAI offset (whole seconds). A step of the wall clock (an NTP or
 * hypervisor correction) moves it at the instant it happens, so every agent
 * on a machine gives one instant one time, whenever it calibrated: with
 * CLOCK_MONOTONIC each agent's offset to the wall clock held the steps seen
 * before it was read, and agents started a few seconds apart on a machine
 * whose clock was being corrected put a child span milliseconds outside its
 * parent. Less gb_cfg.stamp_base_ns (the agent's start less an hour), so
 * that a stamp is exact as a JavaScript number; a clock stepped back past
 * the base stamps 0. (libbpf 1.1's helper definitions predate the helper.) */
static __u64 (*gb_ktime_get_tai_ns)(void) = (void *)BPF_FUNC_ktime_get_tai_ns;
static __always_inline __u64 stamp_clock(void)
{
	__u64 t = gb_ktime_get_tai_ns();
	return t > gb_cfg.stamp_base_ns ? t - gb_cfg.stamp_base_ns : 0;
}

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

/* Keeps the compiler from moving memory accesses across it. */
#define compiler_barrier() asm volatile("" ::: "memory")

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

/* Root spans are sampled when prandom32 < root_sampling[0] (1 << 32: all).
 * Set by the agent before attach and changed while it runs: it lowers the
 * ratio when it is over its CPU budget (src/overhead/cpu-budget.ts). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} root_sampling SEC(".maps") __weak;

/* The cap on new sampled traces on this host (struct gb_root_cap; 0: none),
 * set by the agent from its CPU budget and its measured cost per trace: a
 * sudden overload is held at once, before the ratio (root_sampling) follows. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gb_root_cap);
} root_cap SEC(".maps") __weak;

/* The cap's bucket: thousandths of a trace, and when it was last filled. */
struct gb_root_bucket {
	__u64 milli_tokens;
	__u64 filled_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gb_root_bucket);
} root_bucket SEC(".maps") __weak;

/* When each CPU last forced a ring-buffer wakeup (see wakeup_flag). */
#define GB_WAKEUP_GAP_NS 1000000ULL
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_wakeup SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GB_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps") __weak;

/* Pin the shared types into BTF so the layout generator can see them. */
struct gb_btf_anchor {
	struct gb_event_with_payload event;
	struct gb_proc_event proc;
	struct gb_peer_prefix peer_prefix;
	struct gb_root_cap root_cap;
	struct gb_map_count map_count;
	struct tcp_int_opt opt;
	enum gb_constants constants;
	enum gb_event_type event_type;
	enum gb_direction direction;
	enum gb_role role;
	enum gb_event_flag event_flag;
	enum gb_syscall syscall;
	enum gb_counter counter;
};
struct gb_btf_anchor *gb_btf_anchor __weak;

/* The current task is traced: in the agent's cgroup scope, and not the agent. */
static __always_inline int in_scope(void)
{
	if (gb_cfg.filter_cgroup && bpf_current_task_under_cgroup(&scope_cgroup, 0) != 1)
		return 0;
	return (__u32)(bpf_get_current_pid_tgid() >> 32) != gb_cfg.agent_tgid;
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

/* Whether this submit wakes the agent: only when a lot is queued (it drains
 * on its own poll timer otherwise), and then at most once per
 * GB_WAKEUP_GAP_NS per CPU. A wakeup is an interrupt the CPU sends itself,
 * which in a virtual machine is an exit to the hypervisor (~2 us): forcing
 * one on every submit while the agent is busy draining (so the backlog stays
 * above the mark) cost a third of a traced request/response loop's time. */
static __always_inline __u64 wakeup_flag(__u64 now)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) < gb_cfg.ringbuf_wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	__u32 zero = 0;
	__u64 *last = bpf_map_lookup_elem(&last_wakeup, &zero);
	if (last) {
		if (now - *last < GB_WAKEUP_GAP_NS)
			return BPF_RB_NO_WAKEUP;
		*last = now;
	}
	count(GB_CNT_WAKEUPS);
	return BPF_RB_FORCE_WAKEUP;
}

static __always_inline void random_bytes(__u8 *dst, int n)
{
	/* n is a compile-time multiple of 4 */
	for (int i = 0; i < n; i += 4) {
		__u32 r = bpf_get_prandom_u32();
		__builtin_memcpy(dst + i, &r, 4);
	}
}

static __always_inline void new_span_id(__u8 id[8])
{
	do {
		random_bytes(id, 8);
	} while (0);
	/* W3C: an all-zero id is invalid. */
	if (*(__u64 *)id == 0)
		id[7] = 1;
}

static __always_inline void new_trace_id(__u8 id[16])
{
	random_bytes(id, 16);
	if (*(__u64 *)id == 0 && *(__u64 *)(id + 8) == 0)
		id[15] = 1;
}

/* A connection's id: 53 random bits, so that it is exact as a JS number. */
static __always_inline __u64 new_conn_id(void)
{
	return (((__u64)bpf_get_prandom_u32() & 0x1fffff) << 32) | bpf_get_prandom_u32();
}

/* The key of a thread's state: tgid and pid, as bpf_get_current_pid_tgid() gives them. */
static __always_inline __u64 task_key(struct task_struct *t)
{
	return ((__u64)t->tgid << 32) | (__u32)t->pid;
}

/* Ids of pipelined request k, derived from the first request's (gearbox.h). */
static __always_inline void pipeline_derive(__u8 trace_id[16], __u8 span_id[8], __u32 k)
{
	__u64 mix = GB_PIPELINE_MIX * (__u64)k;
	__u64 *t = (__u64 *)trace_id;
	__u64 *sp = (__u64 *)span_id;
	t[0] ^= mix;
	t[1] ^= mix;
	sp[0] ^= mix;
}

/* Room for one more sampled trace under the cap (see root_cap). The bucket
 * is global and not locked: CPUs that race over it may let a trace more or
 * less through, never a burst. */
static __always_inline int under_root_cap(void)
{
	__u32 zero = 0;
	struct gb_root_cap *cap = bpf_map_lookup_elem(&root_cap, &zero);
	if (!cap || cap->per_second == 0)
		return 1;
	struct gb_root_bucket *b = bpf_map_lookup_elem(&root_bucket, &zero);
	if (!b)
		return 1;
	__u64 now = bpf_ktime_get_ns();
	__u64 full = cap->burst * 1000;
	__u64 tokens = b->milli_tokens;
	if ((__s64)(now - b->filled_ns) > 0) {
		__u64 elapsed = now - b->filled_ns;
		if (elapsed > 10000000000ULL)
			elapsed = 10000000000ULL; /* 10 s fill any bucket; no overflow */
		tokens += elapsed * cap->per_second / 1000000;
		b->filled_ns = now;
	}
	if (tokens > full)
		tokens = full;
	if (tokens < 1000) {
		b->milli_tokens = tokens;
		count(GB_CNT_ROOTS_CAPPED);
		return 0;
	}
	b->milli_tokens = tokens - 1000;
	return 1;
}

/* A new trace starts here: sampled or not (counted either way). */
static __always_inline int root_sampled(void)
{
	__u32 zero = 0;
	__u64 *threshold = bpf_map_lookup_elem(&root_sampling, &zero);
	int yes = threshold && (__u64)bpf_get_prandom_u32() < *threshold && under_root_cap();
	count(yes ? GB_CNT_ROOTS_SAMPLED : GB_CNT_ROOTS_UNSAMPLED);
	return yes;
}

static __always_inline void set_v4mapped(__u8 addr[16], __u32 v4_net)
{
	__builtin_memset(addr, 0, 10);
	addr[10] = 0xff;
	addr[11] = 0xff;
	__builtin_memcpy(addr + 12, &v4_net, 4);
}

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#endif /* GEARBOX_MAPS_BPF_H */
