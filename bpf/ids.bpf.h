/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * ids.bpf.h: trace, span and connection ids, and the ids of pipelined requests
 */
#ifndef GEARBOX_IDS_BPF_H
#define GEARBOX_IDS_BPF_H

#include "config.bpf.h"

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

#endif /* GEARBOX_IDS_BPF_H */
