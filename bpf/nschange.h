/* SPDX-License-Identifier: GPL-2.0 */
/* matchNamespaceChanges: the namespaces each workload process had at its
 * exec (inherited by its forks), compared with its current ones where a
 * selector asks. A process that predates its workload's registration has
 * no record and matches no such selector, In or NotIn. */
#ifndef OCIGATE_NSCHANGE_H
#define OCIGATE_NSCHANGE_H

#include "maps.h"

/* Tetragon's namespace types, in the order of the selector's bits. */
enum ns_type {
	NS_UTS, NS_IPC, NS_MNT, NS_PID, NS_PID_FOR_CHILDREN, NS_NET, NS_TIME,
	NS_TIME_FOR_CHILDREN, NS_CGROUP, NS_USER, NS_TYPES,
};

struct ns_ids {
	__u32 inum[NS_TYPES];
	__u32 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);	/* tgid */
	__type(value, struct ns_ids);
} exec_ns SEC(".maps");

/* ns_changed's view of the current namespaces: off the stack, whose 512
 * bytes the deepest call chains (relay_exec → … → match_selector) need.
 * Only process-context points read it; never pinned (per-CPU scratch). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ns_ids);
} scratch_ns SEC(".maps");

/* The current task's namespaces into ns, by plain loads (current_task)
 * but for the pid namespace's entry at the task's level. */
static __always_inline void current_ns(struct ns_ids *ns)
{
	struct task_struct *task = current_task();
	struct nsproxy *nsp = task->nsproxy;
	struct pid *pid = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	ns->inum[NS_UTS] = nsp->uts_ns->ns.inum;
	ns->inum[NS_IPC] = nsp->ipc_ns->ns.inum;
	ns->inum[NS_MNT] = nsp->mnt_ns->ns.inum;
	if (pid)
		bpf_probe_read_kernel(&up, sizeof(up), &pid->numbers[level & 31]);
	ns->inum[NS_PID] = BPF_CORE_READ(up.ns, ns.inum);
	ns->inum[NS_PID_FOR_CHILDREN] = nsp->pid_ns_for_children->ns.inum;
	ns->inum[NS_NET] = nsp->net_ns->ns.inum;
	ns->inum[NS_TIME] = nsp->time_ns->ns.inum;
	ns->inum[NS_TIME_FOR_CHILDREN] = nsp->time_ns_for_children->ns.inum;
	ns->inum[NS_CGROUP] = nsp->cgroup_ns->ns.inum;
	ns->inum[NS_USER] = task->cred->user_ns->ns.inum;
}

/* At a workload process's exec (sched_process_exec): its namespaces as
 * they are now. A record it has (its fork's copy, an earlier exec's) is
 * rewritten in place, which costs no LRU update: ns_changed
 * reads only the current task's record, and at its exec the process has
 * one thread left. (A softirq program that interrupts it reads the
 * interrupted task's record, which means nothing for it either way.) */
static __always_inline void ns_record_exec(__u32 tgid)
{
	struct ns_ids *rec = bpf_map_lookup_elem(&exec_ns, &tgid);
	struct ns_ids ns = {};

	if (rec) {
		current_ns(rec);
		return;
	}
	current_ns(&ns);
	bpf_map_update_elem(&exec_ns, &tgid, &ns, BPF_ANY);
}

/* A fork keeps its parent's record until it execs. */
static __always_inline void ns_record_fork(__u32 ptgid, __u32 ctgid)
{
	struct ns_ids *ns = bpf_map_lookup_elem(&exec_ns, &ptgid);

	if (ns)
		bpf_map_update_elem(&exec_ns, &ctgid, ns, BPF_ANY);
}

/* At exit; most exits (every process of the host's) have no record. */
static __always_inline void ns_forget(__u32 tgid)
{
	forget(&exec_ns, &tgid);
}

/* The namespace types (bit per enum ns_type) in which the current
 * process differs from its exec, -1 when it has no record. A global
 * function, checked once. */
__noinline int ns_changed(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct ns_ids *then = bpf_map_lookup_elem(&exec_ns, &tgid);
	__u32 zero = 0;
	struct ns_ids *now = bpf_map_lookup_elem(&scratch_ns, &zero);
	int changed = 0;

	if (!then || !now)
		return -1;
	current_ns(now);
	/* Branch-free: a branch per type would be 2^10 paths to verifiers
	 * that keep the result precise (6.1). The top bit of v | -v is set
	 * when v is not 0. */
	for (int t = 0; t < NS_TYPES; t++) {
		__u64 v = then->inum[t] ^ now->inum[t];
		__u64 neg = 0 - v;

		barrier_var(neg); /* or clang turns it back into a branch */
		changed |= (int)(((v | neg) >> 63) << t);
	}
	return changed;
}

#endif
