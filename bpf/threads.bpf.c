// SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0)
/*
 * threads.bpf.c: thread and process lifecycle, for either set of I/O hooks:
 * a new thread inherits the request its creator was serving; a thread that
 * exits takes its state with it.
 */
#include "gearbox.bpf.h"
#include "thread_state.bpf.h"
#include <bpf/bpf_tracing.h>

/* A thread (or process) created while serving a request works for it too:
 * handlers that fan out to worker threads keep their parent. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(gb_fork, struct task_struct *parent, struct task_struct *child)
{
	if (!in_scope())
		return 0;
	struct gb_thread_state *ts = thread_state(task_key(parent), 0);
	if (!ts)
		return 0;
	__u64 child_key = task_key(child);
	struct gb_thread_state copy = *ts;
	copy.pending_head = copy.pending_tail = 0; /* the queue stays with the parent */
	copy.dispatch_queued = 0;
	copy.inherited = 1; /* valid while the creator's request is unanswered */
	bpf_map_update_elem(&thread_state_map, &child_key, &copy, BPF_ANY);
	return 0;
}

/* A thread that exits leaves nothing behind: its state and its queue of
 * pending requests go, and with the main thread the process's "seen" mark
 * (task-local storage, io_args_map, goes with the task by itself). */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(gb_task_exit, struct task_struct *task)
{
	__u32 tgid = task->tgid;
	__u64 key = task_key(task);
	struct gb_thread_state *ts = bpf_map_lookup_elem(&thread_state_map, &key);
	if (ts) {
		struct gb_pending_key k = {.pid_tgid = key};
		for (int i = 0; i < GB_PENDING_SCAN; i++) {
			if (ts->pending_head == ts->pending_tail)
				break;
			k.idx = ts->pending_head++;
			bpf_map_delete_elem(&pending_map, &k);
		}
		bpf_map_delete_elem(&thread_state_map, &key);
	}
	if (task->pid == tgid)
		bpf_map_delete_elem(&seen_process_map, &tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
