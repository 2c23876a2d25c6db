/* SPDX-License-Identifier: GPL-2.0 */
/* The rule engine: workload scoping and selector evaluation. One copy, used
 * by every backend's programs. Everything it decides comes from maps that
 * the agent writes from compiled profiles. */
#ifndef OCIGATE_RULES_H
#define OCIGATE_RULES_H

#include "common.h"

/* cgroup v2 id -> workload: which cgroups are enforced and how. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct workload);
} workloads SEC(".maps");

/* (profile, point) -> ordered selectors. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rule_key);
	__type(value, struct point_rules);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct addr_key);
	__type(value, __u8);
} addr_sets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct name_key);
	__type(value, __u8);
} name_sets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* What is being checked: filled by each program from its own context. */
struct query {
	__u8 point;
	__u8 family;
	__u8 protocol;
	__u8 sock_type;
	__u8 has_addr;
	__u8 stdio_inet;
	__u16 dport;
	__u32 ppid;
	__u8 daddr[16];
	char binary[NAME_LEN];
	char comm[16];
	char filename[PATH_LEN];
};

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline void count_outcome(__u8 point, __u32 outcome)
{
	count(COUNTER_POINT_BASE + (__u32)point * 4 + outcome);
}

/* Finds the workload of the current task: its own cgroup or the closest
 * registered ancestor, so sub-cgroups made inside a container stay covered. */
static __always_inline struct workload *current_workload(__u64 *workload_cgroup)
{
	__u64 id = bpf_get_current_cgroup_id();
	struct workload *w = bpf_map_lookup_elem(&workloads, &id);
	struct workload *found = 0;

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
	return found;
}

static __always_inline void ipv4_mapped(__u8 *dst, __u32 addr_be)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr_be, 4);
}

/* Normalises ::ffff:a.b.c.d to AF_INET so v4 rules cover v4-mapped peers. */
static __always_inline __u8 effective_family(const struct query *q)
{
	if (q->family != AF_INET6 || !q->has_addr)
		return q->family;
	for (int i = 0; i < 10; i++)
		if (q->daddr[i])
			return AF_INET6;
	if (q->daddr[10] == 0xff && q->daddr[11] == 0xff)
		return AF_INET;
	return AF_INET6;
}

static __always_inline bool addr_in_set(__u32 set, const __u8 *addr)
{
	struct addr_key key = { .prefixlen = 32 + 128, .set = set };

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&addr_sets, &key) != 0;
}

static __always_inline bool name_in_set(__u32 set, const char *name, int len)
{
	struct name_key key = { .set = set };

	if (len > NAME_LEN)
		len = NAME_LEN;
	for (int i = 0; i < NAME_LEN; i++) {
		if (i >= len || !name[i])
			break;
		key.name[i] = name[i];
	}
	return bpf_map_lookup_elem(&name_sets, &key) != 0;
}

static __always_inline bool port_in_ranges(const struct selector *s, __u16 port)
{
	for (int i = 0; i < MAX_PORT_RANGES; i++) {
		if (i >= s->nports)
			break;
		if (port >= s->ports[i].lo && port <= s->ports[i].hi)
			return true;
	}
	return false;
}

static __always_inline bool selector_matches(const struct selector *s, const struct query *q, __u8 family)
{
	__u32 m = s->match;

	if ((m & MATCH_FAMILY) && s->family != family)
		return false;
	if ((m & MATCH_PROTOCOL) && s->protocol != q->protocol)
		return false;
	if ((m & MATCH_TYPE) && s->sock_type != q->sock_type)
		return false;
	if (m & (MATCH_DADDR_IN | MATCH_DADDR_NOT_IN)) {
		if (!q->has_addr)
			return false;
		bool in = addr_in_set(s->addr_set, q->daddr);
		if ((m & MATCH_DADDR_IN) && !in)
			return false;
		if ((m & MATCH_DADDR_NOT_IN) && in)
			return false;
	}
	if (m & (MATCH_DPORT_IN | MATCH_DPORT_NOT_IN)) {
		if (!q->has_addr)
			return false;
		bool in = port_in_ranges(s, q->dport);
		if ((m & MATCH_DPORT_IN) && !in)
			return false;
		if ((m & MATCH_DPORT_NOT_IN) && in)
			return false;
	}
	if (m & (MATCH_BINARY_IN | MATCH_BINARY_NOT_IN)) {
		bool in = name_in_set(s->name_set, q->binary, NAME_LEN) ||
			  name_in_set(s->name_set, q->comm, 16);
		if ((m & MATCH_BINARY_IN) && !in)
			return false;
		if ((m & MATCH_BINARY_NOT_IN) && in)
			return false;
	}
	if ((m & MATCH_STDIO_INET) && !q->stdio_inet)
		return false;
	return true;
}

/* Evaluates the profile's selectors for the query's point; the first one
 * that matches decides. Returns its index or -1. */
static __always_inline int evaluate(__u32 profile, const struct query *q, struct selector *out)
{
	struct rule_key key = { .profile = profile, .point = q->point };
	struct point_rules *r = bpf_map_lookup_elem(&rules, &key);
	__u8 family = effective_family(q);

	if (!r)
		return -1;
	for (int i = 0; i < MAX_SELECTORS; i++) {
		if (i >= r->count)
			break;
		if (selector_matches(&r->sel[i], q, family)) {
			__builtin_memcpy(out, &r->sel[i], sizeof(*out));
			return i;
		}
	}
	return -1;
}

/* Reserves and fills the common part of an event; the caller submits. */
static __always_inline struct event *new_event(const struct query *q, const struct selector *s, int idx,
					       __u32 profile, __u64 workload_cgroup)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!e) {
		count(COUNTER_EVENTS_LOST);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ktime_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->workload_cgroup_id = workload_cgroup;
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	e->ppid = q->ppid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->profile = profile;
	e->err = s->err;
	e->point = q->point;
	e->action = s->action;
	e->selector = idx;
	e->family = q->family;
	e->sock_type = q->sock_type;
	e->protocol = q->protocol;
	e->dport = q->dport;
	e->stdio_inet = q->stdio_inet;
	if (q->has_addr) {
		e->flags |= EVENT_HAS_ADDR;
		__builtin_memcpy(e->daddr, q->daddr, 16);
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(e->binary, q->binary, NAME_LEN);
	__builtin_memcpy(e->filename, q->filename, PATH_LEN);
	return e;
}

/* Decision of a checked operation. */
struct verdict {
	bool deny;
	bool kill;
	int err;	/* positive errno when deny */
};

/* Runs the rules for the current task and reports. Returns what to do.
 * caps (enum capability) says what the calling program can carry out; a
 * kill it cannot send is flagged for the agent. */
static __always_inline struct verdict decide(struct query *q, __u8 enforcer, __u32 caps)
{
	struct verdict v = {};
	struct selector s;
	__u64 workload_cgroup = 0;
	struct workload *w = current_workload(&workload_cgroup);

	if (!w)
		return v;
	__u32 profile = w->profile;
	bool monitor = w->flags & WORKLOAD_MONITOR;

	count_outcome(q->point, OUTCOME_EVALUATED);
	int idx = evaluate(profile, q, &s);
	if (idx < 0 || s.action == ACTION_NONE)
		return v;

	bool can_deny = caps & CAN_DENY;
	bool enforce = !monitor && (s.action == ACTION_DENY || s.action == ACTION_SIGKILL);
	bool want_kill = (s.action == ACTION_SIGKILL && !(caps & DENY_SUFFICES)) || !can_deny;
	if (enforce) {
		v.deny = can_deny;
		v.kill = want_kill && (caps & CAN_KILL);
		v.err = s.err > 0 ? s.err : EPERM;
	}
	count_outcome(q->point, !enforce ? OUTCOME_POSTED : v.kill ? OUTCOME_KILLED : OUTCOME_DENIED);

	struct event *e = new_event(q, &s, idx, profile, workload_cgroup);
	if (e) {
		e->enforcer = enforcer;
		if (enforce) {
			e->flags |= EVENT_ENFORCED;
			e->err = v.deny ? v.err : 0;
		}
		if (v.kill)
			e->flags |= EVENT_KILLED;
		else if (enforce && want_kill)
			e->flags |= EVENT_KILL_PENDING;
		bpf_ringbuf_submit(e, 0);
	}
	return v;
}

#endif
