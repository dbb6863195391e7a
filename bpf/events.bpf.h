/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * events.bpf.h: the ring buffer to the agent, and the one way events are put in it:
 * event_reserve (counts an event the buffer had no room for) and
 * event_submit (counts it sent, and decides whether to wake the agent)
 */
#ifndef GEARBOX_EVENTS_BPF_H
#define GEARBOX_EVENTS_BPF_H

#include "counters.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} events SEC(".maps") __weak;

/* When each CPU last forced a ring-buffer wakeup (see wakeup_flag). */
#define GB_WAKEUP_GAP_NS 1000000ULL
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} last_wakeup SEC(".maps") __weak;

/* Whether this submit wakes the agent: only when a lot is queued (it drains
 * on its own poll timer otherwise), and then at most once per
 * GB_WAKEUP_GAP_NS per CPU. A wakeup is an interrupt the CPU sends itself,
 * which in a virtual machine is an exit to the hypervisor (~2 us): forcing
 * one on every submit while the agent is busy draining (so the backlog stays
 * above the mark) cost a third of a traced request/response loop's time. */
static __always_inline __u64 wakeup_flag(__u64 now)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) < gb_cfg.ringbuf_wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	__u32 zero = 0;
	__u64 *last = bpf_map_lookup_elem(&last_wakeup, &zero);
	if (last) {
		if (now - *last < GB_WAKEUP_GAP_NS)
			return BPF_RB_NO_WAKEUP;
		*last = now;
	}
	count(GB_CNT_WAKEUPS);
	return BPF_RB_FORCE_WAKEUP;
}

/* Room for an event of `size` bytes (a compile-time constant), or NULL when
 * the ring buffer is full: counted lost here; the caller charges it to its
 * connection, if it has one. */
static __always_inline void *event_reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e)
		count(GB_CNT_EVENTS_LOST);
	return e;
}

/* Hands a reserved event to the agent, counted sent. `wake`: wake the agent
 * now (the event must not wait for its poll), else as wakeup_flag says. */
static __always_inline void event_submit(void *e, __u64 now, int wake)
{
	bpf_ringbuf_submit(e, wake ? 0 : wakeup_flag(now));
	count(GB_CNT_EVENTS_SENT);
}

#endif /* GEARBOX_EVENTS_BPF_H */
