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

/* The start of task's thread group (boot-based ns): with the tgid, the
 * process's identity. exec keeps it (de_thread copies the leader's). */
static __always_inline __u64 task_start(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_boottime);
}

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

/* The parent of a process: its real parent's tgid and start. */
static __always_inline void record_parent(struct event *e, struct task_struct *task)
{
	struct task_struct *parent = BPF_CORE_READ(task, real_parent);

	e->ppid = BPF_CORE_READ(parent, tgid);
	e->parent_start_time = task_start(parent);
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
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	__u32 len = end > start ? end - start : 0;

	if (len > ARGS_EV_LEN - 1)
		len = ARGS_EV_LEN - 1;
	if (len && !bpf_probe_read_user(e->args, len & (ARGS_EV_LEN - 1), (const void *)start))
		e->args_len = len;
	submit(e, false);
}

/* The last thread of a process leaves (sched_process_exit, current is
 * task): its wait status. */
static __always_inline void report_exit(struct task_struct *task, const struct workload *w, __u64 workload_cgroup)
{
	struct event *e = proc_record(RECORD_EXIT, w, workload_cgroup);

	if (!e)
		return;
	e->pid = BPF_CORE_READ(task, pid);
	e->tgid = BPF_CORE_READ(task, tgid);
	e->start_time = task_start(task);
	e->exit_code = BPF_CORE_READ(task, exit_code);
	record_parent(e, task);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	submit(e, false);
}

/* Whether the exiting task is the last of its thread group (signal->live
 * is decremented before sched_process_exit on every kernel). */
static __always_inline bool group_dead(struct task_struct *task)
{
	return BPF_CORE_READ(task, signal, live.counter) == 0;
}

#endif
