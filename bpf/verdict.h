/* SPDX-License-Identifier: GPL-2.0 */
/* Deciding: every policy (group) of the workload's profile is evaluated,
 * the first matching selector of each group acts and reports, and the
 * strongest action wins.
 *
 * Verification is bounded by construction: the decision lives in per-CPU
 * map memory (struct scratch), whose values the verifier does not track,
 * and the work is done by global functions (decide, match_selector,
 * apply_selector), each of which the verifier checks once, on its own,
 * with nothing but that memory to look at. No selector, operator or
 * action combination reaches the calling program's verifier state. */
#ifndef OCIGATE_VERDICT_H
#define OCIGATE_VERDICT_H

#include "match.h"

/* The parent (record_parent) and the grandparent's comm of task into e;
 * task is typed (current_task). */
static __always_inline void ancestor_comms(struct event *e, struct task_struct *task)
{
	record_parent(e, task);
	__builtin_memcpy(e->ancestor_comm[1], task->real_parent->real_parent->comm, sizeof(e->ancestor_comm[1]));
}

/* The event of one matching selector. */
static __always_inline void report(struct scratch *s, const struct selector *sel, __u8 action, __u32 idx,
				   __u8 flags, int err)
{
	struct decision *d = &s->d;
	const struct query *q = &d->q;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!e) {
		count(COUNTER_EVENTS_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ktime_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = q->sk_cgroup ? q->sk_cgroup : bpf_get_current_cgroup_id();
	e->workload_cgroup_id = d->workload_cgroup;
	e->pid = q->sk_cgroup ? 0 : (__u32)pid_tgid;
	e->tgid = q->sk_cgroup ? 0 : pid_tgid >> 32;
	e->uid = q->sk_cgroup ? q->uid : (__u32)bpf_get_current_uid_gid();
	if (q->subject) {
		e->pid = q->subject;
		e->tgid = q->subject;
		__builtin_memcpy(e->comm, q->comm, sizeof(e->comm));
	} else if (!q->sk_cgroup) {
		struct task_struct *task = current_task();

		bpf_get_current_comm(e->comm, sizeof(e->comm));
		/* the process's identity with its pid, for the agent's exec_id */
		e->start_time = task_start(task);
		ancestor_comms(e, task);
	}
	if (q->ppid)
		e->ppid = q->ppid;
	e->profile = d->w.profile;
	e->err = err;
	e->point = q->point;
	e->action = action;
	e->selector = idx;
	e->group = sel->group;
	e->signal = sel->signal;
	e->flags = flags;
	e->enforcer = d->enforcer;
	e->family = q->family;
	e->sock_type = q->sock_type;
	e->protocol = q->protocol;
	e->state = q->state;
	e->dport = q->dport;
	e->sport = q->sport;
	e->stdio_inet = q->stdio_inet | q->relay | (q->fileless ? 0x80 : 0);
	e->peer = q->peer;
	if (q->args_len) {
		e->args_len = q->args_len;
		__builtin_memcpy(e->args, s->x.args, ARGS_EV_LEN);
	}
	if (q->has_daddr) {
		e->flags |= EVENT_HAS_ADDR;
		__builtin_memcpy(e->daddr, q->daddr, 16);
	}
	if (q->has_saddr)
		__builtin_memcpy(e->saddr, q->saddr, 16);
	__builtin_memcpy(e->binary, q->binary, NAME_LEN);
	struct proc *p = query_proc(s);

	if (p)
		__builtin_memcpy(e->path, p->path, PATH_LEN);
	e->owner = sock_owner(q->cookie);
	e->old_fd = q->old_fd;
	e->new_fd = q->new_fd;
	e->drop_reason = q->drop_reason;
	e->kernel_stack = q->kernel_stack;
	e->user_stack = q->user_stack;
	submit(e, flags & (EVENT_KILL_PENDING | EVENT_SIGNAL_PENDING));
}

/* Carries out selector i of the rules being evaluated (d->key) into the
 * verdict and reports it. What the program cannot do (d->caps) is flagged
 * in the event for the agent. A global function, checked once. */
__noinline int apply_selector(__u32 i)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 0;
	struct decision *d = &s->d;
	struct point_rules *r = bpf_map_lookup_elem(&rules, &d->key);

	if (!r || i >= MAX_SELECTORS)
		return 0;
	barrier_var(i);
	i &= MAX_SELECTORS - 1;
	const struct selector *sel = &r->sel[i];
	struct verdict *v = &d->v;
	__u32 caps = d->caps;
	bool monitor = (d->w.flags & WORKLOAD_MONITOR) || (sel->flags & SELECTOR_MONITOR);
	bool denies = sel->action == ACTION_DENY || sel->action == ACTION_SIGKILL;
	/* Refusing an exec is its kill: report what happened, an Override. */
	__u8 action = sel->action == ACTION_SIGKILL && (caps & DENY_SUFFICES) && (caps & CAN_DENY) ? ACTION_DENY
													: sel->action;
	bool can_deny = caps & CAN_DENY;
	bool want_kill = denies && ((sel->action == ACTION_SIGKILL && !(caps & DENY_SUFFICES)) || !can_deny);
	__u8 flags = 0;
	int err = 0;

	if (monitor) {
		flags |= denies ? EVENT_MONITOR : 0;
	} else if (denies) {
		flags |= EVENT_ENFORCED;
		if (can_deny) {
			err = sel->err > 0 ? sel->err : EPERM;
			if (!v->deny) {
				v->deny = 1;
				v->err = err;
				v->retval = sel->retval;
			}
		}
		if (want_kill && (caps & CAN_KILL)) {
			v->kill = 1;
			flags |= EVENT_KILLED;
		} else if (want_kill) {
			flags |= EVENT_KILL_PENDING;
		}
	}
	if (!monitor && sel->signal && !v->signal && sel->action != ACTION_SIGKILL) {
		if (caps & CAN_KILL)
			v->signal = sel->signal;
		else
			flags |= EVENT_SIGNAL_PENDING;
	}
	count_outcome(d->q.point, !(flags & EVENT_ENFORCED) ? OUTCOME_POSTED :
				  (flags & (EVENT_KILLED | EVENT_KILL_PENDING)) ? OUTCOME_KILLED : OUTCOME_DENIED);
	if (!(sel->flags & SELECTOR_NOPOST))
		report(s, sel, action, i, flags, err);
	return 1;
}

/* Runs the rules of the current task's workload on the query in scratch
 * (begin_decision), for a program that can carry out d->caps, into the
 * verdict d->v. Also leaves the workload (d->w, d->has_workload) and the
 * first matching selector (d->first) for callers that act on more. A
 * relayed shell without its peer yet (RELAY_PENDING) is only matched:
 * it acts when the peer connects. Returns 1 when rules were evaluated. */
__noinline int decide(void)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 0;
	struct decision *d = &s->d;
	struct workload *w = query_workload(&d->q, &d->workload_cgroup);

	if (!w)
		return 0;
	__builtin_memcpy(&d->w, w, sizeof(d->w));
	d->has_workload = 1;
	d->key.profile = d->w.profile;
	d->key.point = d->q.point;
	struct point_rules *r = bpf_map_lookup_elem(&rules, &d->key);

	if (!r)
		return 0;
	count_outcome(d->q.point, OUTCOME_EVALUATED);
	prepare_predicates(s, r->uses);
	d->family = effective_family(&d->q);
	for (__u32 i = 0; i < MAX_SELECTORS; i++) {
		int m = match_selector(i);

		if (m < 0)
			break;
		if (m > 0 && !(d->q.relay & RELAY_PENDING))
			apply_selector(i);
	}
	return 1;
}

/* The scratch of a new decision at point for a program of the given
 * enforcer and capabilities: the query zeroed for the program to fill,
 * the verdict empty. NULL only if the per-CPU map is missing. */
static __always_inline struct scratch *begin_decision(__u8 point, __u8 enforcer, __u32 caps)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 0;
	__builtin_memset(&s->d.q, 0, sizeof(s->d.q));
	__builtin_memset(&s->d.v, 0, sizeof(s->d.v));
	s->d.q.point = point;
	s->d.enforcer = enforcer;
	s->d.caps = caps;
	s->d.decided = 0;
	s->d.first = -1;
	s->d.has_workload = 0;
	s->d.has_bin = 0;
	s->d.has_path = 0;
	return s;
}

/* -err as LSM programs must return it, provably in [-4095, -1] for
 * every verifier (6.12's checks LSM return values): the mask bounds the
 * very register that is returned, where a comparison can be made by
 * clang on a copy and leave the returned register unbounded. Errnos
 * come validated from the profile, in [1, 4095]; 0 means EPERM. */
static __always_inline long negative_errno(__u32 err)
{
	__u64 e = err & 4095;
	long zero = 0;

	if (!e)
		e = EPERM;
	/* 0 - e as a subtraction: older verifiers lose the bounds of a
	 * BPF_NEG, which clang would emit for -e. */
	barrier_var(zero);
	return zero - (long)e;
}

/* Sends what the verdict asks for; the errno to return when it denies,
 * negative, 0 when it allows. A positive value the selector returns
 * instead (Override argError > 0) is fmod_ret's: carry_out_value. */
static __always_inline int carry_out(struct scratch *s)
{
	const struct verdict *v = &s->d.v;
	int sig = v->signal;

	if (v->kill)
		bpf_send_signal(SIGKILL);
	else if (sig)
		bpf_send_signal(sig);
	if (!v->deny)
		return 0;
	return negative_errno(v->err);
}

/* carry_out for programs that may return any value (fmod_ret): a
 * refusal with a positive return value returns it, as Tetragon's
 * override does. */
static __always_inline int carry_out_value(struct scratch *s)
{
	int ret = carry_out(s);
	__s32 value = s->d.v.retval;

	if (s->d.v.deny && value > 0)
		return value;
	return ret;
}

#endif
