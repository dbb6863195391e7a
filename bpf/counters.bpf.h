/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * counters.bpf.h: the per-CPU counters the agent sums (enum gb_counter in gearbox.h)
 */
#ifndef GEARBOX_COUNTERS_BPF_H
#define GEARBOX_COUNTERS_BPF_H

#include "config.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GB_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps") __weak;

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

#endif /* GEARBOX_COUNTERS_BPF_H */
