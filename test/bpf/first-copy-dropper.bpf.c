// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * A lossy link for tests: a tc egress program that drops the first copy of
 * every IPv4 TCP segment carrying an option of kind 253 (Gearbox's) and lets
 * its retransmission through, so the context must reach the peer on a
 * retransmitted segment. Counts what it dropped and what came again.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define OPT_KIND 253

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* sequence number */
	__type(value, __u32);
} dropper_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2); /* 0: first copies dropped, 1: copies let through again */
	__type(key, __u32);
	__type(value, __u64);
} dropper_counts SEC(".maps");

static __always_inline void bump(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&dropper_counts, &i);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tc")
int drop_first_copy(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl != 5)
		return TC_ACT_OK;
	struct tcphdr *th = (void *)(ip + 1);
	if ((void *)(th + 1) > end || th->doff <= 5)
		return TC_ACT_OK;
	/* Our option is 28 of the at most 40 option bytes: it starts at offset
	 * 0..12. Looking for kind and length at each (a timestamp that happens to
	 * hold those bytes would only cost one more drop) keeps the verifier's
	 * work small. */
	__u32 optlen = th->doff * 4 - 20;
	__u8 *opts = (void *)(th + 1);
	int found = 0;
#pragma unroll
	for (int i = 0; i <= 12; i++) {
		if (i + 28 <= optlen && (void *)(opts + i + 2) <= end && opts[i] == OPT_KIND && opts[i + 1] == 28)
			found = 1;
	}
	if (!found)
		return TC_ACT_OK;
	__u32 seq = th->seq;
	if (bpf_map_lookup_elem(&dropper_seen, &seq)) {
		bump(1);
		return TC_ACT_OK;
	}
	__u32 one = 1;
	bpf_map_update_elem(&dropper_seen, &seq, &one, BPF_ANY);
	bump(0);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
