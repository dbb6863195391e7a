// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * existing.bpf.c: connections opened before the agent started never passed
 * through sockops' connect/established callbacks, so they would carry no
 * context. At start the agent runs this TCP socket iterator once: for every
 * established socket in the agent's cgroup scope it turns on the same
 * header-option and state callbacks sockops enables for new connections.
 */
#include "gearbox.bpf.h"

#define SOL_TCP 6
#define TCP_ESTABLISHED 1
#define TCP_LISTEN 10

static __always_inline int sock_in_scope(struct sock *sk)
{
	if (!gb_cfg.filter_cgroup)
		return 1;
	struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	if (!cg)
		return 0;
	__u32 level = gb_cfg.scope_cgroup_level;
	if (BPF_CORE_READ(cg, level) < (int)level || level > 255)
		return 0;
	struct cgroup *anc = NULL;
	bpf_probe_read_kernel(&anc, sizeof(anc), &cg->ancestors[level]);
	if (!anc)
		return 0;
	return BPF_CORE_READ(anc, kn, id) == gb_cfg.scope_cgroup_id;
}

SEC("iter/tcp")
int gb_enable_existing(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	if (!skc)
		return 0;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0;
	struct sock *sk = (struct sock *)tp;
	/* Listeners too, so that options on the SYNs they receive are seen and refused. */
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (state != TCP_ESTABLISHED && state != TCP_LISTEN)
		return 0;
	if (!sock_in_scope(sk))
		return 0;
	int flags = BPF_CORE_READ(tp, bpf_sock_ops_cb_flags) | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG |
		    BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG;
	if (bpf_setsockopt(tp, SOL_TCP, TCP_BPF_SOCK_OPS_CB_FLAGS, &flags, sizeof(flags)) == 0)
		count(GB_CNT_EXISTING_ENABLED);
	return 0;
}
