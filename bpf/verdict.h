/* SPDX-License-Identifier: GPL-2.0 */
/* Deciding: every policy (group) of the workload's profile is evaluated,
 * the first matching selector of each group acts and reports, and the
 * strongest action wins. */
#ifndef OCIGATE_VERDICT_H
#define OCIGATE_VERDICT_H

#include "pending.h"

/* Decision of a checked operation. */
struct verdict {
	__u32 deny;	/* not bool: cgroup programs return it, the verifier wants 0/1 */
	__u32 kill;
	int err;	/* positive errno when deny */
	int signal;	/* to send to the caller, 0: none */
};

static __always_inline void report(const struct query *q, const struct selector *s, __u8 action, int idx, __u32 profile,
				   __u64 workload_cgroup, __u8 enforcer, __u8 flags, int err)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!e) {
		count(COUNTER_EVENTS_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ktime_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->workload_cgroup_id = workload_cgroup;
	e->pid = (__u32)pid_tgid;
	e->tgid = pid_tgid >> 32;
	if (q->subject) {
		e->pid = q->subject;
		e->tgid = q->subject;
		__builtin_memcpy(e->comm, q->comm, sizeof(e->comm));
	} else {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		bpf_get_current_comm(e->comm, sizeof(e->comm));
		/* the process's identity with its pid, for the agent's exec_id */
		e->start_time = BPF_CORE_READ(task, group_leader, start_boottime);
	}
	e->ppid = q->ppid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->profile = profile;
	e->err = err;
	e->point = q->point;
	e->action = action;
	e->selector = idx;
	e->group = s->group;
	e->signal = s->signal;
	e->flags = flags;
	e->enforcer = enforcer;
	e->family = q->family;
	e->sock_type = q->sock_type;
	e->protocol = q->protocol;
	e->state = q->state;
	e->dport = q->dport;
	e->sport = q->sport;
	e->stdio_inet = q->stdio_inet | q->relay | (q->fileless ? 0x80 : 0);
	e->peer = q->peer;
	if (q->args_len) {
		struct dpath_scratch *ds = get_dpath_scratch();

		if (ds) {
			e->args_len = q->args_len;
			__builtin_memcpy(e->args, ds->args, ARGS_EV_LEN);
		}
	}
	if (q->has_daddr) {
		e->flags |= EVENT_HAS_ADDR;
		__builtin_memcpy(e->daddr, q->daddr, 16);
	}
	if (q->has_saddr)
		__builtin_memcpy(e->saddr, q->saddr, 16);
	__builtin_memcpy(e->binary, q->binary, NAME_LEN);
	if (q->proc)
		__builtin_memcpy(e->path, q->proc->path, PATH_LEN);
	e->owner = sock_owner(q->cookie);
	e->old_fd = q->old_fd;
	e->new_fd = q->new_fd;
	submit(e, flags & (EVENT_KILL_PENDING | EVENT_SIGNAL_PENDING));
}

/* Carries out one matching selector into v and reports it. */
static __always_inline void apply(const struct query *q, const struct selector *s, int idx, const struct workload *w,
				  __u64 workload_cgroup, __u8 enforcer, __u32 caps, struct verdict *v)
{
	bool monitor = (w->flags & WORKLOAD_MONITOR) || (s->flags & SELECTOR_MONITOR);
	bool denies = s->action == ACTION_DENY || s->action == ACTION_SIGKILL;
	/* Refusing an exec is its kill: report what happened, an Override. */
	__u8 action = s->action == ACTION_SIGKILL && (caps & DENY_SUFFICES) && (caps & CAN_DENY) ? ACTION_DENY : s->action;
	bool can_deny = caps & CAN_DENY;
	bool want_kill = denies && ((s->action == ACTION_SIGKILL && !(caps & DENY_SUFFICES)) || !can_deny);
	__u8 flags = 0;
	int err = 0;

	if (monitor) {
		flags |= denies ? EVENT_MONITOR : 0;
	} else if (denies) {
		flags |= EVENT_ENFORCED;
		if (can_deny) {
			err = s->err > 0 ? s->err : EPERM;
			if (!v->deny) {
				v->deny = 1;
				v->err = err;
			}
		}
		if (want_kill && (caps & CAN_KILL)) {
			v->kill = 1;
			flags |= EVENT_KILLED;
		} else if (want_kill) {
			flags |= EVENT_KILL_PENDING;
		}
	}
	if (!monitor && s->signal && !v->signal && s->action != ACTION_SIGKILL) {
		if (caps & CAN_KILL)
			v->signal = s->signal;
		else
			flags |= EVENT_SIGNAL_PENDING;
	}
	count_outcome(q->point, !(flags & EVENT_ENFORCED) ? OUTCOME_POSTED :
				(flags & (EVENT_KILLED | EVENT_KILL_PENDING)) ? OUTCOME_KILLED : OUTCOME_DENIED);
	if (!(s->flags & SELECTOR_NOPOST))
		report(q, s, action, idx, w->profile, workload_cgroup, enforcer, flags, err);
}

/* State of one evaluation, shared with the per-selector callback. */
struct evaluation {
	struct query *q;
	struct point_rules *r;
	struct workload *w;
	struct scratch *sc;
	struct verdict *v;
	__u64 workload_cgroup;
	__u32 decided;		/* groups that have matched */
	__u32 disabled;		/* selectors off for this workload */
	__u32 caps;
	__u8 enforcer;
	__u8 family;
	int first;		/* the first matching selector, -1: none */
};

/* One selector; a bpf_loop callback, so the verifier checks it once
 * instead of once per selector and path. */
static long evaluate_selector(__u32 i, void *data)
{
	struct evaluation *ev = data;

	if (i >= ev->r->count)
		return 1;
	/* The verifier needs the bound on the index itself; keep clang from
	 * folding the mask into the comparison above. */
	barrier_var(i);
	i &= MAX_SELECTORS - 1;
	const struct selector *s = &ev->r->sel[i];
	__u32 group = 1u << (s->group & 31);

	if ((ev->decided & group) || ((ev->disabled >> i) & 1))
		return 0;
	if (!selector_matches(s, ev->q, ev->family, ev->sc))
		return 0;
	ev->decided |= group;
	if (ev->first < 0)
		ev->first = i;
	/* A relayed shell without its peer yet acts when the peer connects:
	 * the caller remembers it by the first match. */
	if (ev->q->relay & RELAY_PENDING)
		return 0;
	apply(ev->q, s, i, ev->w, ev->workload_cgroup, ev->enforcer, ev->caps, ev->v);
	return 0;
}

/* Runs the rules of the current task's workload. caps (enum capability)
 * says what the calling program can carry out; what it cannot is flagged
 * in the event for the agent. */
/* The verdict being built by the selector callback lives in per-CPU map
 * memory, not on the stack: the verifier tracks stack values exactly, and
 * every combination of verdict fields would make the callback's
 * iterations states of their own (5-10 times the instructions). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct verdict);
} verdicts SEC(".maps");

/* What a decision found, for callers that act on more than the verdict. */
struct found {
	struct workload *w;	/* the caller's workload, 0: none */
	int first;		/* the first matching selector, -1: none */
};

static __always_inline struct verdict evaluate(struct query *q, __u8 enforcer, __u32 caps, struct found *out)
{
	struct verdict v = {};
	__u32 zero = 0;
	struct verdict *vm = bpf_map_lookup_elem(&verdicts, &zero);

	/* Checked before it is stored in ev: older verifiers do not carry a
	 * null check over to a copy already spilled to the stack. */
	if (!vm)
		return v;
	__builtin_memset(vm, 0, sizeof(*vm));
	struct evaluation ev = { .q = q, .v = vm, .enforcer = enforcer, .caps = caps, .first = -1 };


	ev.w = current_workload(&ev.workload_cgroup);
	if (out) {
		out->w = ev.w;
	}
	if (!ev.w)
		return v;
	struct rule_key key = { .profile = ev.w->profile, .point = q->point };
	ev.r = bpf_map_lookup_elem(&rules, &key);
	if (!ev.r)
		return v;
	count_outcome(q->point, OUTCOME_EVALUATED);
	if (q->proc && (ev.r->uses & MATCH_ANY_BIN)) {
		ev.sc = get_scratch();
		if (ev.sc)
			path_keys(q->proc, ev.sc, ev.r->uses);
	}
	ev.family = effective_family(q);
	ev.disabled = ev.w->disabled[q->point & 15];
	bpf_loop(MAX_SELECTORS, evaluate_selector, &ev, 0);
	if (out)
		out->first = ev.first;
	return *vm;
}

static __always_inline struct verdict decide(struct query *q, __u8 enforcer, __u32 caps)
{
	return evaluate(q, enforcer, caps, 0);
}

/* decide, and tell the first matching selector (out->first, -1: none)
 * and the workload (out->w). */
static __always_inline struct verdict decide_first(struct query *q, __u8 enforcer, __u32 caps, struct found *out)
{
	out->first = -1;
	out->w = 0;
	return evaluate(q, enforcer, caps, out);
}

/* Sends what the verdict asks for; the errno to return when it denies,
 * provably in [-4095, 0] as LSM programs must return (6.12's verifier
 * checks). */
static __always_inline int carry_out(struct verdict v)
{
	if (v.kill)
		bpf_send_signal(SIGKILL);
	else if (v.signal)
		bpf_send_signal(v.signal);
	if (!v.deny)
		return 0;
	int err = v.err;
	barrier_var(err);
	if (err <= 0 || err > 4095)
		return -EPERM;
	/* 0 - err as a subtraction: older verifiers lose the bounds of a
	 * BPF_NEG, which clang would emit for -err. */
	int zero = 0;
	barrier_var(zero);
	return zero - err;
}

#endif
