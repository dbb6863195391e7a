/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * config.bpf.h: the agent's configuration (set in .rodata before load), the clocks, and
 * what every program needs from libbpf and gearbox.h
 */
#ifndef GEARBOX_CONFIG_BPF_H
#define GEARBOX_CONFIG_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "gearbox.h"

#define GB_MAX_CONNS 65536
#define GB_MAX_THREADS 65536

const volatile struct gb_config gb_cfg __weak = {
	.agent_tgid = 0,
	.filter_cgroup = 0,
	.idle_ns = 2000000000ULL,
	.ringbuf_wakeup_bytes = 256 * 1024,
	.ephemeral_lo = 32768,
	.ephemeral_hi = 60999,
};

/* The clock that measures pauses between messages (gb_cfg.idle_ns): the
 * kernel's tick count (a load, where a clock-source read costs ~30 ns in a
 * VM) when the pause is long next to a tick, the exact clock otherwise or
 * when the agent could not learn the tick's length (gb_cfg.ns_per_tick 0:
 * no kernel config to read it from). Only sampled events need the exact
 * time. (bpf_ktime_get_coarse_ns is not allowed in tracing programs; a
 * __kconfig extern would make libbpf refuse to load where there is no
 * kernel config file.) */
#define GB_TICK_CLOCK_MIN_IDLE_NS 100000000ULL
static __always_inline __u64 idle_clock(void)
{
	if (gb_cfg.idle_ns >= GB_TICK_CLOCK_MIN_IDLE_NS && gb_cfg.ns_per_tick)
		return bpf_jiffies64() * gb_cfg.ns_per_tick;
	return bpf_ktime_get_ns();
}

/* The clock of the events' timestamps: CLOCK_TAI, the wall clock plus the
 * kernel's TAI offset (whole seconds). A step of the wall clock (an NTP or
 * hypervisor correction) moves it at the instant it happens, so every agent
 * on a machine gives one instant one time, whenever it calibrated: with
 * CLOCK_MONOTONIC each agent's offset to the wall clock held the steps seen
 * before it was read, and agents started a few seconds apart on a machine
 * whose clock was being corrected put a child span milliseconds outside its
 * parent. Less gb_cfg.stamp_base_ns (the agent's start less an hour), so
 * that a stamp is exact as a JavaScript number; a clock stepped back past
 * the base stamps 0. (libbpf 1.1's helper definitions predate the helper.) */
static __u64 (*gb_ktime_get_tai_ns)(void) = (void *)BPF_FUNC_ktime_get_tai_ns;
static __always_inline __u64 stamp_clock(void)
{
	__u64 t = gb_ktime_get_tai_ns();
	return t > gb_cfg.stamp_base_ns ? t - gb_cfg.stamp_base_ns : 0;
}

/* Keeps the compiler from moving memory accesses across it. */
#define compiler_barrier() asm volatile("" ::: "memory")

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#endif /* GEARBOX_CONFIG_BPF_H */
