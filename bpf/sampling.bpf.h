/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * sampling.bpf.h: whether a new trace is sampled: the ratio and the cap the agent sets
 */
#ifndef GEARBOX_SAMPLING_BPF_H
#define GEARBOX_SAMPLING_BPF_H

#include "counters.bpf.h"

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

#endif /* GEARBOX_SAMPLING_BPF_H */
