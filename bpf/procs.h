/* SPDX-License-Identifier: GPL-2.0 */
/* Process records: the exec and exit of each process of a registered
 * workload, for the agent's process cache (lineage, exec_id) and its
 * process_exec / process_exit events (forks send none: track_fork;
 * RECORD_CLONE stays in the ABI, for the agent reading an older object's
 * records). One ring buffer record each,
 * in struct event with kind set; a workload whose profile turns them off
 * (WORKLOAD_NO_PROC_EVENTS) gets none. */
#ifndef OCIGATE_PROCS_H
#define OCIGATE_PROCS_H

#include "workload.h"

/* A zeroed record of kind for the workload, or NULL (ring full: counted,
 * or the workload wants no process records). */
static __always_inline struct event *proc_record(__u8 kind, const struct workload *w, __u64 workload_cgroup)
{
	struct event *e;

	if (w->flags & WORKLOAD_NO_PROC_EVENTS)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(COUNTER_EVENTS_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->ktime_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->workload_cgroup_id = workload_cgroup;
	e->profile = w->profile;
	e->uid = (__u32)bpf_get_current_uid_gid();
	return e;
}

/* exec, at sched_process_exec (current is task, the new image mapped):
 * the executed file's path as exec tracking resolved it, and argv read
 * from the new image. */
static __always_inline void report_exec(struct task_struct *task, const struct proc *p, const struct workload *w,
					__u64 workload_cgroup)
{
	struct event *e = proc_record(RECORD_EXEC, w, workload_cgroup);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!e)
		return;
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->start_time = task_start(task);
	record_parent(e, task);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(e->path, p->path, PATH_LEN);
	int len = read_current_argv(e->args, ARGS_EV_LEN);

	if (len > 0)
		e->args_len = len;
	submit(e, false);
}

/* Exit claims: slot tgid % EXIT_CLAIMS -> the start (task_start) of the
 * last process of such a tgid whose exit was reported. When exit_group
 * ends several threads at once on several CPUs, each decrements the
 * group's live count before it reaches sched_process_exit, so more than
 * one of them can find it at zero (group_dead); the one whose
 * compare-and-swap puts its process's start in the slot reports. A new
 * process of a reused tgid has another start. Two live tgids that share
 * a slot would have to exit within the same microseconds for a claim to
 * be lost (a second record); an array costs one atomic, no hash. */
#define EXIT_CLAIMS 65536
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EXIT_CLAIMS);
	__type(key, __u32);
	__type(value, __u64);
} exit_claims SEC(".maps");

/* Whether this thread is the one to report the exit of process (tgid,
 * start): the first to claim it. */
static __always_inline bool claim_exit(__u32 tgid, __u64 start)
{
	__u32 slot = tgid & (EXIT_CLAIMS - 1);
	__u64 *c = bpf_map_lookup_elem(&exit_claims, &slot);
	__u64 seen, old;

	if (!c)
		return true;
	seen = *(volatile __u64 *)c;
	if (seen == start)
		return false;
	old = __sync_val_compare_and_swap(c, seen, start);
	if (old == seen)
		return true;
	if (old == start)
		return false; /* another thread of the process claimed it */
	/* another process of the slot claimed in between: once more */
	return __sync_val_compare_and_swap(c, old, start) == old;
}

/* The last thread of a process leaves (sched_process_exit, current is
 * task): its wait status, once per process (claim_exit). */
static __always_inline void report_exit(struct task_struct *task, const struct workload *w, __u64 workload_cgroup)
{
	__u32 tgid = task->tgid;
	__u64 start = task_start(task);
	struct event *e;

	if ((w->flags & WORKLOAD_NO_PROC_EVENTS) || !claim_exit(tgid, start))
		return;
	e = proc_record(RECORD_EXIT, w, workload_cgroup);
	if (!e)
		return;
	e->pid = task->pid;
	e->tgid = tgid;
	e->start_time = start;
	e->exit_code = task->exit_code;
	record_parent(e, task);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	submit(e, false);
}

/* Whether the exiting task is the last of its thread group (signal->live
 * is decremented before sched_process_exit on every kernel). */
static __always_inline bool group_dead(struct task_struct *task)
{
	return task->signal->live.counter == 0;
}

#endif
