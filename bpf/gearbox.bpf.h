/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * gearbox.bpf.h: what every Gearbox program includes — configuration and
 * clocks, counters, the ring buffer, ids, sampling, and the state maps —
 * and the anchor that puts the shared types into the object's BTF.
 */
#ifndef GEARBOX_BPF_H
#define GEARBOX_BPF_H

#include "config.bpf.h"
#include "counters.bpf.h"
#include "events.bpf.h"
#include "ids.bpf.h"
#include "sampling.bpf.h"
#include "maps.bpf.h"

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

#endif /* GEARBOX_BPF_H */
