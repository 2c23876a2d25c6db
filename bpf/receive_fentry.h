/* SPDX-License-Identifier: GPL-2.0 */
/* The receive point (receive.h) where cgroup_skb programs get no
 * current-task helpers (Debian's 6.1 and 6.12): fentry on
 * sk_filter_trim_cap itself, Tetragon's hook, which every packet
 * delivered to a socket passes, the cgroup_skb/ingress hook's caller. The
 * same query and event: the workload from the socket's cgroup, the
 * addresses from the packet, the process from TrackSock, decided in
 * scratch slot 1 (softirq). It reports only. */
#ifndef OCIGATE_RECEIVE_FENTRY_H
#define OCIGATE_RECEIVE_FENTRY_H

#include "verdict.h"
#include "skb.h"

SEC("fentry/sk_filter_trim_cap")
int BPF_PROG(recv_fentry, struct sock *sk, struct sk_buff *skb)
{
	__u64 cgroup = sock_workload_cgroup(sk);

	if (!cgroup || !workload_rules(cgroup, POINT_RECEIVE))
		return 0;
	__u32 zero = 0;
	__u32 *level = bpf_map_lookup_elem(&scratch_level, &zero);

	if (!level || *level)
		return 0;
	*level = 1;
	struct scratch *s = begin_decision(POINT_RECEIVE, ENFORCER_FENTRY, 0);

	if (s && kskb_query(skb, &s->d.q)) {
		s->d.q.sk_cgroup = cgroup;
		s->d.q.sock_type = BPF_CORE_READ(sk, sk_type);
		s->d.q.state = BPF_CORE_READ(sk, __sk_common.skc_state);
		s->d.q.cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
		s->d.q.subject = sock_owner(s->d.q.cookie); /* TrackSock: matchBinaries, the event's process */
		decide();
	}
	*level = 0;
	return 0;
}

#endif
