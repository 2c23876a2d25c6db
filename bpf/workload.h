/* SPDX-License-Identifier: GPL-2.0 */
/* Whose operation this is: the registered workload of the current task,
 * and the binary a process runs as exec tracking recorded it. */
#ifndef OCIGATE_WORKLOAD_H
#define OCIGATE_WORKLOAD_H

#include "maps.h"

/* Finds the workload of the current task: its own cgroup or the closest
 * registered ancestor, so sub-cgroups made inside a container stay
 * covered; failing that, the workload exec tracking recorded for the
 * process, so one that moved itself to a cgroup outside (a container
 * allowed to write cgroup.procs) stays covered too. */
static __always_inline struct workload *current_workload(__u64 *workload_cgroup)
{
	__u64 id = bpf_get_current_cgroup_id();
	struct workload *w = bpf_map_lookup_elem(&workloads, &id);
	struct workload *found = 0;

	*workload_cgroup = 0;

	if (w) {
		*workload_cgroup = id;
		return w;
	}
	for (int level = 1; level < MAX_CGROUP_DEPTH; level++) {
		__u64 anc = bpf_get_current_ancestor_cgroup_id(level);

		if (!anc || anc == id)
			break;
		w = bpf_map_lookup_elem(&workloads, &anc);
		if (w) {
			found = w;
			*workload_cgroup = anc;
		}
	}
	if (found)
		return found;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (!p || !p->workload)
		return 0;
	id = p->workload;
	w = bpf_map_lookup_elem(&workloads, &id);
	if (w)
		*workload_cgroup = id;
	return w;
}

/* The binary the query's process runs: the file being exec'd (in
 * scratch), or what exec tracking recorded for the process (the relay's
 * subject, or the current one). */
static __always_inline struct proc *query_proc(struct scratch *s)
{
	if (s->d.q.exec_proc)
		return &s->x.exec;
	__u32 tgid = s->d.q.subject;

	if (!tgid && s->d.q.sk_cgroup)
		return 0; /* softirq: the current task is nobody's */
	if (!tgid)
		tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&procs, &tgid);
}

/* The workload of the query: the socket's registered cgroup where the
 * program runs outside the workload's processes (accept, in softirq),
 * else the current task's. */
static __always_inline struct workload *query_workload(const struct query *q, __u64 *workload_cgroup)
{
	if (!q->sk_cgroup)
		return current_workload(workload_cgroup);
	*workload_cgroup = q->sk_cgroup;
	return bpf_map_lookup_elem(&workloads, workload_cgroup);
}

/* The closest registered cgroup of the socket's (sk_cgrp_data), walking
 * up the cgroup v2 tree; 0: no workload's socket. */
static __always_inline __u64 sock_workload_cgroup(struct sock *sk)
{
	struct cgroup *cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);

	for (int i = 0; i < MAX_CGROUP_DEPTH && cg; i++) {
		__u64 id = BPF_CORE_READ(cg, kn, id);

		if (bpf_map_lookup_elem(&workloads, &id))
			return id;
		/* cgroup.self is the css; its parent is the parent's self */
		struct cgroup_subsys_state *css = BPF_CORE_READ(cg, self.parent);

		if (!css)
			break;
		cg = (struct cgroup *)((char *)css - bpf_core_field_offset(struct cgroup, self));
	}
	return 0;
}

/* The rules at point of workload w's profile; NULL when w is NULL or has
 * none there: points that most workloads have no rules at stop early. */
static __always_inline struct point_rules *profile_rules(const struct workload *w, __u8 point)
{
	if (!w)
		return 0;
	struct rule_key key = { .profile = w->profile, .point = point };

	return bpf_map_lookup_elem(&rules, &key);
}

/* The rules at point of the workload registered as cgroup (profile_rules). */
static __always_inline struct point_rules *workload_rules(__u64 cgroup, __u8 point)
{
	return profile_rules(bpf_map_lookup_elem(&workloads, &cgroup), point);
}

static __always_inline void ipv4_mapped(__u8 *dst, __u32 addr_be)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr_be, 4);
}

#endif
