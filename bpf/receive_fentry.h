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

#define RECV_ETH_P_IP_BE 0x0008	  /* htons(ETH_P_IP) */
#define RECV_ETH_P_IPV6_BE 0xDD86 /* htons(ETH_P_IPV6) */

/* The packet's addresses and ports into q, read from the kernel's skb
 * (network and transport headers are set on the receive path): the
 * destination is the socket's end. Returns 0 when it is not IPv4/IPv6. */
static __always_inline int kskb_query(struct sk_buff *skb, struct query *q)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u16 proto = BPF_CORE_READ(skb, protocol);

	if (proto == RECV_ETH_P_IP_BE) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return 0;
		q->family = AF_INET;
		q->protocol = ip.protocol;
		ipv4_mapped(q->saddr, ip.saddr);
		ipv4_mapped(q->daddr, ip.daddr);
		th = nh + (ip.ihl & 0xf) * 4;
	} else if (proto == RECV_ETH_P_IPV6_BE) {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh))
			return 0;
		q->family = AF_INET6;
		q->protocol = ip6.nexthdr;
		__builtin_memcpy(q->saddr, &ip6.saddr, 16);
		__builtin_memcpy(q->daddr, &ip6.daddr, 16);
		if (th == 0xffff || th <= nh) /* unset: no extension headers assumed */
			th = nh + sizeof(ip6);
	} else {
		return 0;
	}
	q->has_saddr = 1;
	q->has_daddr = 1;
	if (q->protocol == IPPROTO_UDP || q->protocol == IPPROTO_TCP) {
		__be16 ports[2];

		if (!bpf_probe_read_kernel(ports, sizeof(ports), head + th)) {
			q->sport = bpf_ntohs(ports[0]);
			q->dport = bpf_ntohs(ports[1]);
		}
	}
	return 1;
}

SEC("fentry/sk_filter_trim_cap")
int BPF_PROG(recv_fentry, struct sock *sk, struct sk_buff *skb)
{
	__u64 cgroup = sock_workload_cgroup(sk);

	if (!cgroup)
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
