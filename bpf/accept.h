/* SPDX-License-Identifier: GPL-2.0 */
/* The passive side of TCP: connections the kernel accepts for a
 * workload's listener (Tetragon's tcp_create_openreq_child and
 * tcp_set_state(TCP_SYN_RECV -> TCP_ESTABLISHED)). The kernel does that
 * in softirq, where the current task is whoever the CPU interrupted, so
 * the workload is the socket's cgroup (the listener's, copied to the
 * child) and the process is the listener, recorded when it listened.
 * Everything here comes from the sock:inet_sock_set_state tracepoint,
 * which every kernel has. It reports only: a handshake cannot be refused
 * and no process can be signalled from softirq. */
#ifndef OCIGATE_ACCEPT_H
#define OCIGATE_ACCEPT_H

#include "verdict.h"
#include "exec.h"

#define ACCEPT_CHILD 1		/* LISTEN -> SYN_RECV: the child socket (tcp_create_openreq_child) */
#define ACCEPT_ESTABLISHED 2	/* SYN_RECV -> ESTABLISHED: the handshake done (tcp_set_state) */

static __always_inline struct tcp_listener_key listener_of(struct sock *sk)
{
	struct tcp_listener_key k = {
		.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum),
		.port = BPF_CORE_READ(sk, __sk_common.skc_num),
	};
	return k;
}

/* A listen (process context): who listens on the port, for the
 * connections accepted later; forgotten when the listener closes. */
static __always_inline void track_listener(struct sock *sk, int newstate)
{
	struct tcp_listener_key k = listener_of(sk);

	if (newstate != TCP_LISTEN) {
		bpf_map_delete_elem(&listeners, &k);
		return;
	}
	if (!sock_workload_cgroup(sk))
		return;
	struct tcp_listener l = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.uid = (__u32)bpf_get_current_uid_gid(),
	};
	bpf_get_current_comm(l.comm, sizeof(l.comm));
	bpf_map_update_elem(&listeners, &k, &l, BPF_ANY);
}

/* An accepted connection of a workload's listener, in softirq: decided
 * in scratch slot 1 (maps.h), so that a program it interrupted keeps
 * its own. */
static __always_inline void accept_decision(struct sock *sk, __u64 cgroup, __u8 variant, int oldstate,
					    __u16 family)
{
	__u32 zero = 0;
	__u32 *level = bpf_map_lookup_elem(&scratch_level, &zero);

	if (!level || *level)
		return;
	*level = 1;
	struct scratch *s = begin_decision(POINT_ACCEPT, ENFORCER_TRACEPOINT, 0);

	if (s) {
		struct query *q = &s->d.q;
		struct tcp_listener_key k = listener_of(sk);
		struct tcp_listener *l = bpf_map_lookup_elem(&listeners, &k);

		q->sk_cgroup = cgroup;
		q->variant = variant;
		q->state = oldstate;
		q->family = family;
		q->protocol = IPPROTO_TCP;
		q->sock_type = SOCK_STREAM;
		sock_addresses(q, sk);
		if (l) {
			q->subject = l->tgid;
			q->uid = l->uid;
			__builtin_memcpy(q->comm, l->comm, sizeof(q->comm));
		}
		decide();
	}
	*level = 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int tcp_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	int oldstate = ctx->oldstate, newstate = ctx->newstate;
	__u16 family = ctx->family;
	__u8 variant = 0;

	if (ctx->protocol != IPPROTO_TCP || (family != AF_INET && family != AF_INET6))
		return 0;
	if (newstate == TCP_LISTEN || (oldstate == TCP_LISTEN && newstate == TCP_CLOSE)) {
		track_listener(sk, newstate);
		return 0;
	}
	if (oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV)
		variant = ACCEPT_CHILD;
	else if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED)
		variant = ACCEPT_ESTABLISHED;
	else
		return 0;
	__u64 cgroup = sock_workload_cgroup(sk);

	/* Decided only where the workload has rules at accept (decide
	 * finds the same rules): the connections of a workload without
	 * them cost no decision. */
	if (cgroup && workload_rules(cgroup, POINT_ACCEPT))
		accept_decision(sk, cgroup, variant, oldstate, family);
	return 0;
}

#endif
