/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * gearbox.h: the one definition of everything that crosses the kernel/user
 * boundary or the wire. Included by every BPF program; the TypeScript decoder's
 * layout (src/events/layout.generated.ts) is generated from the BTF of the
 * compiled object and a test checks that it has not drifted.
 */
#ifndef GEARBOX_H
#define GEARBOX_H

/* Constants are enums, not #defines, so that they reach the object's BTF and
 * the generated TypeScript layout. */
enum gb_constants {
	GB_PAYLOAD_MAX = 256, /* bytes of payload head copied at a message start */
	/* Wire format of the propagated context (RFC 6994 experimental option). */
	GB_TCP_OPT_KIND = 253,
	GB_TCP_OPT_LEN = 28,
	GB_EXID_SAMPLED = 0x4742,
	GB_EXID_UNSAMPLED = 0x4743,
	/* Bytes of a process's environment and arguments sent once per process. */
	GB_PROC_ENV_MAX = 8192,
	GB_PROC_ARGS_MAX = 1024,
};

enum gb_event_type {
	GB_EV_DATA = 1,	 /* one read or write on a traced TCP socket */
	GB_EV_CLOSE = 2, /* the connection reached TCP_CLOSE */
	GB_EV_PROC = 3,	 /* first traffic of a process: its environment and arguments */
};

enum gb_direction {
	GB_DIR_SEND = 1,
	GB_DIR_RECV = 2,
};

enum gb_role {
	GB_ROLE_UNKNOWN = 0,
	GB_ROLE_CLIENT = 1, /* active open: this side connected */
	GB_ROLE_SERVER = 2, /* passive open: this side accepted */
};

enum gb_event_flag {
	GB_F_MSG_START = 1,	 /* first syscall of a message; payload head attached */
	GB_F_SAMPLED = 2,	 /* the span's context is sampled */
	GB_F_REMOTE_PARENT = 4,	 /* parent came from the peer's TCP option */
	GB_F_HAS_PARENT = 8,	 /* parent_span_id is valid */
	GB_F_ROLE_INFERRED = 16, /* role guessed from the first direction of data */
	GB_F_PIPELINED = 32,	 /* a request that arrived pipelined behind another: no data of its own */
};

/* Pipelined request k (k >= 1) of a message gets ids derived from the first
 * request's, the same way on both hosts: each byte of the trace id and span
 * id is XORed with the bytes (little-endian) of GB_PIPELINE_MIX * k mod 2^64.
 * Shared with src/trace/pipelining.ts (checked by a test). */
#define GB_PIPELINE_MIX 0x9e3779b97f4a7c15ULL

enum gb_syscall {
	GB_SC_READ = 1,
	GB_SC_READV = 2,
	GB_SC_RECVFROM = 3,
	GB_SC_RECVMSG = 4,
	GB_SC_RECVMMSG = 5,
	GB_SC_WRITE = 6,
	GB_SC_WRITEV = 7,
	GB_SC_SENDTO = 8,
	GB_SC_SENDMSG = 9,
	GB_SC_SENDMMSG = 10,
	GB_SC_CONNECT = 11, /* not a data event: used to remember who opened a connection */
};

/* Indices into the per-CPU `counters` map. */
enum gb_counter {
	GB_CNT_EVENTS_SENT = 0,
	GB_CNT_EVENTS_LOST = 1,	       /* ring buffer full: bpf_ringbuf_reserve failed */
	GB_CNT_OPT_WRITTEN = 2,	       /* options written on outgoing segments */
	GB_CNT_OPT_RESERVE_FAILED = 3, /* no room in the TCP header (e.g. SACK blocks) */
	GB_CNT_OPT_RECEIVED = 4,       /* valid options parsed */
	GB_CNT_OPT_BAD_LEN = 5,	       /* our ExID with a length other than 28 */
	GB_CNT_OPT_BAD_EXID = 6,       /* kind 253 with an ExID that is not ours */
	GB_CNT_OPT_ZERO_ID = 7,	       /* all-zero trace id or span id */
	GB_CNT_OPT_BAD_SEGMENT = 8,    /* our option on SYN or RST, or a truncated option */
	GB_CNT_CTX_ADOPTED = 9,	       /* server spans that adopted a propagated parent */
	GB_CNT_EXISTING_ENABLED = 10,  /* connections opened before the agent, given option callbacks */
	GB_CNT_OPT_UNTRUSTED = 11,     /* valid options from peers outside --trust-peers, ignored */
	GB_CNT_ROOTS_SAMPLED = 12,     /* new traces (root spans) this host decided to sample */
	GB_CNT_ROOTS_UNSAMPLED = 13,   /* ... and not to sample */
	GB_CNT_WAKEUPS = 14,	       /* ring-buffer wakeups forced (at most one per millisecond per CPU) */
	GB_CNT_ROOTS_CAPPED = 15,      /* new traces the ratio chose but the rate cap refused (counted unsampled too) */
	GB_CNT_CTX_EXPIRED = 16,       /* contexts a thread inherited, refused: their request was answered */
	GB_CNT__MAX = 17,
};

/* Five-tuple from this host's point of view. Addresses are IPv6; IPv4 is
 * stored v4-mapped (::ffff:a.b.c.d). Ports in host byte order. No padding:
 * it is a hash key built both from a struct sock and from bpf_sock_ops. */
struct gb_tuple {
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u16 local_port;
	__u16 remote_port;
};

/* The TCP option as it appears on the wire. */
struct tcp_int_opt {
	__u8 kind;  /* GB_TCP_OPT_KIND */
	__u8 len;   /* GB_TCP_OPT_LEN */
	__u16 exid; /* network order: GB_EXID_SAMPLED or GB_EXID_UNSAMPLED */
	__u8 trace_id[16];
	__u8 span_id[8];
} __attribute__((packed));

/* A W3C-style span context as the kernel keeps it. */
struct gb_span_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_span_id[8];
	__u8 flags; /* gb_event_flag bits: SAMPLED, REMOTE_PARENT, HAS_PARENT */
	__u8 _pad[7];
};

/* Header of every ring-buffer record. A DATA record with GB_F_MSG_START is
 * followed by GB_PAYLOAD_MAX bytes of which payload_len are valid. */
struct gb_event {
	__u8 type;	/* gb_event_type */
	__u8 direction; /* gb_direction */
	__u8 role;	/* gb_role */
	__u8 flags;	/* gb_event_flag */
	__u32 pid;	/* tgid */
	__u32 tid;
	__u32 msg_seq; /* per-connection message number; +1 on every direction flip */
	__u64 conn_id; /* random per connection (53 bits, safe as a JS number) */
	__u64 ts_ns;   /* CLOCK_TAI less gb_config.stamp_base_ns (see stamp_clock) */
	__u64 bytes;   /* bytes moved by this syscall */
	__u16 syscall; /* gb_syscall */
	__u16 payload_len;
	__u16 pipeline_idx; /* k of a GB_F_PIPELINED request */
	__u16 conn_lost;    /* events of this connection the ring buffer could not take so far (mod 2^16) */
	struct gb_tuple tuple;
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_span_id[8];
	char comm[16]; /* task comm, filled on GB_F_MSG_START records only */
};

struct gb_event_with_payload {
	struct gb_event ev;
	__u8 payload[GB_PAYLOAD_MAX];
};

/* Sent before a process's first traced message, so that its service name is
 * known even when it has exited by the time the agent reads /proc. */
struct gb_proc_event {
	struct gb_event ev; /* type GB_EV_PROC; pid, tid, ts_ns, comm */
	__u32 env_len;
	__u32 args_len;
	__u8 env[GB_PROC_ENV_MAX];   /* NUL-separated KEY=VALUE, cut at env_len */
	__u8 args[GB_PROC_ARGS_MAX]; /* NUL-separated argv, cut at args_len */
};

/* Agent configuration, set in .rodata before load. */
struct gb_config {
	__u32 agent_tgid;	    /* never trace the agent itself */
	__u32 filter_cgroup;	    /* 1: only tasks under the cgroup in scope_cgroup[0] */
	__u64 idle_ns;		    /* a pause this long starts a new request message */
	__u64 ringbuf_wakeup_bytes; /* wake the agent only when this much is queued */
	__u64 scope_cgroup_id;	    /* cgroup v2 id (inode) of the scope, for socket iterators */
	__u32 scope_cgroup_level;   /* its depth below the cgroup v2 root */
	__u16 ephemeral_lo;	    /* net.ipv4.ip_local_port_range, to tell the roles of */
	__u16 ephemeral_hi;	    /* connections whose handshake sockops never saw */
	__u32 exclude_comms;	    /* entries in excluded_comm_map (processes never traced) */
	__u32 trust_peers;	    /* 1: accept context only from addresses in trusted_peer_map */
	__u64 ns_per_tick;	    /* the kernel's tick (1e9 / CONFIG_HZ), for timing pauses; 0: unknown */
	__u64 stamp_base_ns;	    /* events are stamped CLOCK_TAI less this (see stamp_clock) */
};

/* The cap on new sampled traces (root_cap, set by the agent): a token
 * bucket that refills at `per_second` and holds at most `burst`. */
struct gb_root_cap {
	__u64 per_second; /* 0: no cap */
	__u64 burst;
};

/* What the map-count iterator (map_counts.bpf.c) writes for each hash map
 * on the host. */
struct gb_map_count {
	__u32 map_id;
	__u32 _pad;
	__s64 entries; /* -1: the kernel cannot count them (before Linux 6.6) */
};

/* Key of trusted_peer_map (an LPM trie): IPv4 as v4-mapped IPv6, prefix +96. */
struct gb_peer_prefix {
	__u32 prefixlen;
	__u8 addr[16];
};

#endif /* GEARBOX_H */
