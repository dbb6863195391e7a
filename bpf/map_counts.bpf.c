// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * map_counts.bpf.c: how many entries each state map holds, without walking
 * it. The kernel keeps a per-CPU element count for every hash map, LRU
 * evictions included (kernel/bpf/hashtab.c); bpf_map_sum_elem_count() sums
 * it. This iterator visits every BPF map on the host and writes one
 * struct gb_map_count per hash map; the agent keeps the ids of its own.
 * One read of the iterator costs the same with empty maps as with full ones:
 * a walk key by key cost ~2 us per entry on the agent's only JavaScript
 * thread, which left the ring buffer undrained for seconds on a busy node.
 */
#include "gearbox.bpf.h"

/* Since Linux 6.6. Weak: on an older kernel the program still loads and
 * writes count -1 (unknown) for every map. */
extern s64 bpf_map_sum_elem_count(const struct bpf_map *map) __ksym __weak;

SEC("iter/bpf_map")
int gb_map_counts(struct bpf_iter__bpf_map *ctx)
{
	struct bpf_map *map = ctx->map;
	if (!map)
		return 0;
	__u32 type = map->map_type;
	if (type != BPF_MAP_TYPE_HASH && type != BPF_MAP_TYPE_LRU_HASH)
		return 0;
	struct gb_map_count rec = {.map_id = map->id, .entries = -1};
	if (bpf_map_sum_elem_count)
		rec.entries = bpf_map_sum_elem_count(map);
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
