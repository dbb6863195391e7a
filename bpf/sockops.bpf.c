// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * sockops.bpf.c: carries the trace context between hosts in a TCP header
 * option (struct tcp_int_opt). Runs in softirq for received segments, so it
 * has no valid pid: everything is keyed by five-tuple.
 *
 *  - connect / established: enable the header-option and state callbacks,
 *    record the connection's role (active = client, passive = server);
 *  - HDR_OPT_LEN / WRITE_HDR_OPT: put the context from flow_context_map on
 *    the segments that carry the first byte of its request (retransmits
 *    too), until the peer acknowledges that byte; then retire it, so the
 *    rest of a long request costs no option space, writes or parsing;
 *  - PARSE_HDR_OPT: validate the peer's option, store it in peer_context_map
 *    (in place: see struct gb_peer_ctx);
 *  - STATE (TCP_CLOSE): drop the flow's entries and tell the agent.
 */
#include "gearbox.bpf.h"

#define TCP_OPTS_MAX 40

static __always_inline void tuple_from_skops(struct bpf_sock_ops *s, struct gb_tuple *t)
{
	if (s->family == AF_INET) {
		set_v4mapped(t->local_addr, s->local_ip4);
		set_v4mapped(t->remote_addr, s->remote_ip4);
	} else {
		__u32 w;
		w = s->local_ip6[0];
		__builtin_memcpy(t->local_addr + 0, &w, 4);
		w = s->local_ip6[1];
		__builtin_memcpy(t->local_addr + 4, &w, 4);
		w = s->local_ip6[2];
		__builtin_memcpy(t->local_addr + 8, &w, 4);
		w = s->local_ip6[3];
		__builtin_memcpy(t->local_addr + 12, &w, 4);
		w = s->remote_ip6[0];
		__builtin_memcpy(t->remote_addr + 0, &w, 4);
		w = s->remote_ip6[1];
		__builtin_memcpy(t->remote_addr + 4, &w, 4);
		w = s->remote_ip6[2];
		__builtin_memcpy(t->remote_addr + 8, &w, 4);
		w = s->remote_ip6[3];
		__builtin_memcpy(t->remote_addr + 12, &w, 4);
	}
	t->local_port = (__u16)s->local_port;
	t->remote_port = (__u16)bpf_ntohl(s->remote_port);
}

/* Requests flow from client to server, so only client sockets write the
 * option: a server socket without the write callback costs nothing per
 * segment it sends. Parsing runs only for segments that carry an option
 * the kernel does not know, so every socket parses (and counts forgeries). */
static __always_inline void enable_callbacks(struct bpf_sock_ops *s, int write)
{
	int flags = s->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG | BPF_SOCK_OPS_STATE_CB_FLAG;
	if (write)
		flags |= BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG;
	else
		flags &= ~BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG;
	bpf_sock_ops_cb_flags_set(s, flags);
}

static __always_inline void record_role(struct bpf_sock_ops *s, __u8 role)
{
	struct gb_tuple t = {};
	tuple_from_skops(s, &t);
	struct gb_conn_state fresh = {};
	fresh.conn_id = new_conn_id();
	fresh.role = role;
	/* A new connection on a reused five-tuple must not inherit anything. */
	bpf_map_update_elem(&conn_map, &t, &fresh, BPF_ANY);
	bpf_map_delete_elem(&flow_context_map, &t);
	bpf_map_delete_elem(&peer_context_map, &t);
}

/* a comes before b in the 32-bit sequence space */
static __always_inline int seq_before(__u32 a, __u32 b)
{
	return (__s32)(a - b) < 0;
}

/* The context to send on this flow while the peer may still lack it: until
 * the first byte of its request is acknowledged (the peer parses options
 * before it acknowledges); then it is retired. `*state` is the state word
 * the context was valid under (see struct gb_flow_ctx). */
static __always_inline struct gb_flow_ctx *context_to_send(struct bpf_sock_ops *s, __u64 *state)
{
	if (!s->is_fullsock)
		return NULL;
	struct gb_tuple t = {};
	tuple_from_skops(s, &t);
	struct gb_flow_ctx *fc = bpf_map_lookup_elem(&flow_context_map, &t);
	if (!fc)
		return NULL;
	__u64 st = *(volatile __u64 *)&fc->state;
	if (!(st & GB_FLOW_ACTIVE))
		return NULL;
	if (seq_before(GB_FLOW_SEQ(st), s->snd_una)) {
		__sync_val_compare_and_swap(&fc->state, st, st & ~GB_FLOW_ACTIVE);
		return NULL;
	}
	*state = st;
	return fc;
}

/* Space for the option: on the kernel's MSS estimate (no segment yet, it must
 * count what any segment may carry) and on segments with payload; which of
 * those hold the request's first byte is known only when it is written. */
static __always_inline void reserve_option(struct bpf_sock_ops *s)
{
	if (!(s->args[0] & BPF_WRITE_HDR_TCP_CURRENT_MSS) && s->skb_len == 0)
		return; /* a pure ACK or FIN carries no request byte */
	__u64 state;
	if (!context_to_send(s, &state))
		return;
	if (bpf_reserve_hdr_opt(s, GB_TCP_OPT_LEN, 0) != 0)
		count(GB_CNT_OPT_RESERVE_FAILED);
}

/* The segment being written holds sequence number `seq`: its header is
 * readable (up to the options) in WRITE_HDR_OPT. Unreadable: assume it does. */
static __always_inline int segment_holds(struct bpf_sock_ops *s, __u32 seq)
{
	struct tcphdr *th = (void *)(long)s->skb_data;
	if ((void *)(th + 1) > (void *)(long)s->skb_data_end)
		return 1;
	__u32 first = bpf_ntohl(th->seq);
	__u32 header = th->doff * 4;
	if (header > s->skb_len)
		return 1;
	__u32 payload = s->skb_len - header;
	return !seq_before(seq, first) && seq_before(seq, first + payload);
}

static __always_inline void write_option(struct bpf_sock_ops *s)
{
	__u64 state;
	struct gb_flow_ctx *fc = context_to_send(s, &state);
	if (!fc || !segment_holds(s, GB_FLOW_SEQ(state)))
		return; /* the reserved space stays NOPs */
	struct tcp_int_opt opt = {};
	opt.kind = GB_TCP_OPT_KIND;
	opt.len = GB_TCP_OPT_LEN;
	opt.exid = bpf_htons(fc->sampled ? GB_EXID_SAMPLED : GB_EXID_UNSAMPLED);
	compiler_barrier();
	__builtin_memcpy(opt.trace_id, fc->trace_id, 16);
	__builtin_memcpy(opt.span_id, fc->span_id, 8);
	compiler_barrier();
	if (*(volatile __u64 *)&fc->state != state)
		return; /* rewritten for a newer request meanwhile: not this segment's */
	if (bpf_store_hdr_opt(s, &opt, sizeof(opt), 0) == 0)
		count(GB_CNT_OPT_WRITTEN);
	else
		count(GB_CNT_OPT_RESERVE_FAILED);
}

struct opt_walk {
	__u8 opts[64]; /* 64 so that every index masked with 63 is in bounds */
	__u32 n;       /* option bytes present (<= 40) */
	__u32 i;       /* offset of the option being looked at */
	int found;     /* offset of the last well-formed option of ours, or -1 */
	int ctl;       /* segment is SYN or RST */
};

/* Reads opts[idx]; the mask proves the bound to the verifier, the barrier
 * keeps clang from dropping the mask. */
static __always_inline __u8 opt_at(const __u8 *opts, __u32 idx)
{
	asm volatile("" : "+r"(idx));
	return opts[idx & 63];
}

/* One option per call (bpf_loop callback: verified once, not per option). */
static long walk_option(__u32 iter, struct opt_walk *w)
{
	__u32 i = w->i;
	if (i >= w->n || i >= TCP_OPTS_MAX)
		return 1;
	__u8 kind = opt_at(w->opts, i);
	if (kind == 0) /* EOL */
		return 1;
	if (kind == 1) { /* NOP */
		w->i = i + 1;
		return 0;
	}
	if (i + 1 >= w->n)
		return 1;
	__u8 len = opt_at(w->opts, i + 1);
	if (len < 2 || i + len > w->n) {
		if (kind == GB_TCP_OPT_KIND)
			count(GB_CNT_OPT_BAD_SEGMENT); /* truncated */
		return 1;
	}
	if (kind == GB_TCP_OPT_KIND) {
		__u16 exid = 0;
		if (len >= 4)
			exid = ((__u16)opt_at(w->opts, i + 2) << 8) | opt_at(w->opts, i + 3);
		if (exid != GB_EXID_SAMPLED && exid != GB_EXID_UNSAMPLED)
			count(GB_CNT_OPT_BAD_EXID);
		else if (len != GB_TCP_OPT_LEN)
			count(GB_CNT_OPT_BAD_LEN);
		else if (w->ctl)
			count(GB_CNT_OPT_BAD_SEGMENT);
		else
			w->found = i; /* i + 28 <= n <= 40, so found <= 12 */
	}
	w->i = i + len;
	return 0;
}

/* Stores a context received on flow `t` for the next request read on it (see
 * struct gb_peer_ctx for the protocol). Returns 0 for a repeat of the stored
 * one (a retransmitted first segment), which keeps its consumed mark so that
 * a later request without a context adopts nothing. */
static __always_inline int store_peer_context(struct gb_tuple *t, struct gb_peer_ctx *in)
{
	struct gb_peer_ctx *pc = bpf_map_lookup_elem(&peer_context_map, t);
	if (!pc) { /* the connection's first: a new entry */
		in->gen = 2;
		bpf_map_update_elem(&peer_context_map, t, in, BPF_ANY);
		return 1;
	}
	if (*(__u64 *)pc->span_id == *(__u64 *)in->span_id && *(__u64 *)pc->trace_id == *(__u64 *)in->trace_id &&
	    *(__u64 *)(pc->trace_id + 8) == *(__u64 *)(in->trace_id + 8))
		return 0;
	__sync_fetch_and_add(&pc->gen, 1); /* odd: being written */
	__builtin_memcpy(pc->trace_id, in->trace_id, 16);
	__builtin_memcpy(pc->span_id, in->span_id, 8);
	pc->sampled = in->sampled;
	__sync_fetch_and_add(&pc->gen, 1); /* even: a new context */
	return 1;
}

/* Walks the options of a received segment; stores the last valid context. */
static __always_inline void parse_option(struct bpf_sock_ops *s)
{
	void *data = (void *)(long)s->skb_data;
	void *end = (void *)(long)s->skb_data_end;
	struct tcphdr *th = data;
	if ((void *)(th + 1) > end)
		return;
	__u32 n = th->doff * 4;
	if (n <= 20 || n > 20 + TCP_OPTS_MAX)
		return;
	n -= 20;
	struct opt_walk w = {};
	w.n = n;
	w.found = -1;
	w.ctl = th->syn || th->rst;
	if (bpf_probe_read_kernel(w.opts, n, (void *)(th + 1)) != 0)
		return;
	bpf_loop(TCP_OPTS_MAX, walk_option, &w, 0);
	int found = w.found;
	__u8 *opts = w.opts;
	if (found < 0)
		return;
	/* Aligned copy of the ids; the mask bounds the offset for the verifier. */
	struct gb_peer_ctx pc = {};
	__u32 at = found;
	asm volatile("" : "+r"(at));
	at &= 15;
	bpf_probe_read_kernel(pc.trace_id, 16, opts + at + 4);
	bpf_probe_read_kernel(pc.span_id, 8, opts + at + 20);
	pc.sampled = opt_at(opts, at + 3) == (GB_EXID_SAMPLED & 0xff);
	if ((*(__u64 *)pc.trace_id == 0 && *(__u64 *)(pc.trace_id + 8) == 0) || *(__u64 *)pc.span_id == 0) {
		count(GB_CNT_OPT_ZERO_ID);
		return;
	}

	struct gb_tuple t = {};
	tuple_from_skops(s, &t);
	if (gb_cfg.trust_peers) {
		/* Only trusted networks may steer this host's traces; from anyone
		 * else a new trace starts here. */
		struct gb_peer_prefix k = {.prefixlen = 128};
		__builtin_memcpy(k.addr, t.remote_addr, 16);
		if (!bpf_map_lookup_elem(&trusted_peer_map, &k)) {
			count(GB_CNT_OPT_UNTRUSTED);
			return;
		}
	}
	if (store_peer_context(&t, &pc))
		count(GB_CNT_OPT_RECEIVED);
}

/* The SYN of a passive connection is not parsed (it is saved): refuse and
 * count an option of ours on it here. */
static __always_inline void count_syn_option(struct bpf_sock_ops *s)
{
	__u8 buf[40] = {GB_TCP_OPT_KIND, 4, GB_EXID_SAMPLED >> 8, GB_EXID_SAMPLED & 0xff};
	if (bpf_load_hdr_opt(s, buf, sizeof(buf), BPF_LOAD_HDR_OPT_TCP_SYN) > 0) {
		count(GB_CNT_OPT_BAD_SEGMENT);
		return;
	}
	__u8 buf2[40] = {GB_TCP_OPT_KIND, 4, GB_EXID_UNSAMPLED >> 8, GB_EXID_UNSAMPLED & 0xff};
	if (bpf_load_hdr_opt(s, buf2, sizeof(buf2), BPF_LOAD_HDR_OPT_TCP_SYN) > 0)
		count(GB_CNT_OPT_BAD_SEGMENT);
}

static __always_inline void on_close(struct bpf_sock_ops *s)
{
	struct gb_tuple t = {};
	tuple_from_skops(s, &t);
	struct gb_conn_state *c = bpf_map_lookup_elem(&conn_map, &t);
	if (c) {
		struct gb_event *ev = event_reserve(sizeof(*ev));
		if (ev) {
			__builtin_memset(ev, 0, sizeof(*ev));
			ev->type = GB_EV_CLOSE;
			ev->role = c->role;
			ev->msg_seq = c->msg_seq;
			ev->conn_id = c->conn_id;
			ev->conn_lost = c->events_lost;
			__u64 now = stamp_clock();
			ev->ts_ns = now;
			ev->tuple = t;
			event_submit(ev, now, 0); /* the agent's poll timer picks it up */
		}
	}
	bpf_map_delete_elem(&conn_map, &t);
	bpf_map_delete_elem(&flow_context_map, &t);
	bpf_map_delete_elem(&peer_context_map, &t);
}

SEC("sockops")
int gearbox_sockops(struct bpf_sock_ops *s)
{
	if (s->family != AF_INET && s->family != AF_INET6)
		return 1;
	switch (s->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
	case BPF_SOCK_OPS_TCP_LISTEN_CB: /* so that options on SYNs are seen (and refused) */
		enable_callbacks(s, 1);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		enable_callbacks(s, 1);
		record_role(s, GB_ROLE_CLIENT);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		enable_callbacks(s, 0);
		record_role(s, GB_ROLE_SERVER);
		count_syn_option(s);
		/* The kernel does not parse the segment that completes the
		 * handshake (state SYN_RECV) but hands it to this callback. It
		 * carries the request when the client's pure ACK was dropped (a
		 * full accept queue drops it, and the request, retransmitted,
		 * completes the handshake). */
		parse_option(s);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		reserve_option(s);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		write_option(s);
		break;
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		parse_option(s);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		if (s->args[1] == BPF_TCP_CLOSE)
			on_close(s);
		break;
	}
	return 1;
}
