// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * A hostile peer for tests: a sockops program that puts malformed or forged
 * Gearbox options (kind 253) on the segments of its own connections.
 * Compiled by the test with -DFORGE_MODE=<n>.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MODE_BAD_LEN 1	 /* our ExID, length 20 */
#define MODE_BAD_EXID 2	 /* length 28, ExID 0x1234 */
#define MODE_ZERO_IDS 3	 /* length 28, our ExID, all-zero ids */
#define MODE_ON_SYN 4	 /* a valid-looking option, on the SYN only */
#define MODE_TRUNCATED 5 /* length byte 36 in a 28-byte option */
#define MODE_MANY 6	 /* two options of our kind in one segment: a 4-byte one with another ExID, a 20-byte one */

struct opt28 {
	__u8 kind, len;
	__u16 exid;
	__u8 body[24];
} __attribute__((packed));

struct opt20 {
	__u8 kind, len;
	__u16 exid;
	__u8 body[16];
} __attribute__((packed));

static __always_inline int is_syn(struct bpf_sock_ops *s)
{
	return s->skb_tcp_flags & 0x02;
}

SEC("sockops")
int forge(struct bpf_sock_ops *s)
{
	switch (s->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		bpf_sock_ops_cb_flags_set(s, s->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		if ((FORGE_MODE == MODE_ON_SYN) != !!is_syn(s))
			break;
		bpf_reserve_hdr_opt(s, FORGE_MODE == MODE_BAD_LEN ? 20 : FORGE_MODE == MODE_MANY ? 24 : 28, 0);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB: {
		if ((FORGE_MODE == MODE_ON_SYN) != !!is_syn(s))
			break;
		struct opt28 o = {.kind = 253, .len = 28, .exid = bpf_htons(0x4742)};
		for (int i = 0; i < 24; i++)
			o.body[i] = 0x5a; /* non-zero, well-formed ids */
		if (FORGE_MODE == MODE_MANY) {
			__u8 small[4] = {253, 4, 0x12, 0x34};
			bpf_store_hdr_opt(s, small, sizeof(small), 0);
		}
		if (FORGE_MODE == MODE_BAD_LEN || FORGE_MODE == MODE_MANY) {
			struct opt20 b = {.kind = 253, .len = 20, .exid = bpf_htons(0x4742)};
			for (int i = 0; i < 16; i++)
				b.body[i] = 0x5a;
			bpf_store_hdr_opt(s, &b, sizeof(b), 0);
			break;
		}
		if (FORGE_MODE == MODE_BAD_EXID)
			o.exid = bpf_htons(0x1234);
		if (FORGE_MODE == MODE_ZERO_IDS)
			__builtin_memset(o.body, 0, sizeof(o.body));
		if (FORGE_MODE == MODE_TRUNCATED)
			o.len = 36;
		bpf_store_hdr_opt(s, &o, sizeof(o), 0);
		break;
	}
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
