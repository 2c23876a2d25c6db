/* SPDX-License-Identifier: GPL-2.0 */
/* Packets delivered to a workload's socket (Tetragon's sk_filter_trim_cap,
 * whose cgroup hook is cgroup_skb/ingress): reported for the socket's
 * workload, in softirq, with the datagram's addresses. The process is the
 * socket's creator where the profile tracks sockets (TrackSock), as in
 * Tetragon; the current task is nobody's. It reports only. */
#ifndef OCIGATE_RECEIVE_H
#define OCIGATE_RECEIVE_H

#include "verdict.h"

#define ETH_P_IP_BE 0x0008	/* htons(ETH_P_IP) */
#define ETH_P_IPV6_BE 0xDD86	/* htons(ETH_P_IPV6) */

/* The closest registered cgroup of the packet's socket; 0: none. */
static __always_inline __u64 skb_workload_cgroup(struct __sk_buff *skb)
{
	__u64 id = bpf_skb_cgroup_id(skb);
	__u64 found = 0;

	if (bpf_map_lookup_elem(&workloads, &id))
		return id;
	for (int level = 1; level < MAX_CGROUP_DEPTH; level++) {
		__u64 anc = bpf_skb_ancestor_cgroup_id(skb, level);

		if (!anc || anc == id)
			break;
		if (bpf_map_lookup_elem(&workloads, &anc))
			found = anc;
	}
	return found;
}

/* The packet's addresses and ports into q: the destination is the
 * socket's end. Returns 0 when the packet is not IPv4 or IPv6. */
static __always_inline int skb_query(struct __sk_buff *skb, struct query *q)
{
	__u32 off;

	if (skb->protocol == ETH_P_IP_BE) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 0;
		q->family = AF_INET;
		q->protocol = ip.protocol;
		ipv4_mapped(q->saddr, ip.saddr);
		ipv4_mapped(q->daddr, ip.daddr);
		off = (ip.ihl & 0xf) * 4;
	} else if (skb->protocol == ETH_P_IPV6_BE) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 0;
		q->family = AF_INET6;
		q->protocol = ip6.nexthdr;
		__builtin_memcpy(q->saddr, &ip6.saddr, 16);
		__builtin_memcpy(q->daddr, &ip6.daddr, 16);
		off = sizeof(ip6);
	} else {
		return 0;
	}
	q->has_saddr = 1;
	q->has_daddr = 1;
	if (q->protocol == IPPROTO_UDP || q->protocol == IPPROTO_TCP) {
		__be16 ports[2];

		if (!bpf_skb_load_bytes(skb, off, ports, sizeof(ports))) {
			q->sport = bpf_ntohs(ports[0]);
			q->dport = bpf_ntohs(ports[1]);
		}
	}
	return 1;
}

SEC("cgroup_skb/ingress")
int recv_skb(struct __sk_buff *skb)
{
	__u64 cgroup = skb_workload_cgroup(skb);

	if (!cgroup)
		return 1;
	__u32 zero = 0;
	__u32 *level = bpf_map_lookup_elem(&scratch_level, &zero);

	if (!level || *level)
		return 1;
	*level = 1;
	struct scratch *s = begin_decision(POINT_RECEIVE, ENFORCER_CGROUP_SKB, 0);

	if (s && skb_query(skb, &s->d.q)) {
		struct bpf_sock *sk = skb->sk;

		s->d.q.sk_cgroup = cgroup;
		if (sk)
			sk = bpf_sk_fullsock(sk);
		if (sk) {
			s->d.q.sock_type = sk->type;
			s->d.q.state = sk->state;
		}
		s->d.q.cookie = bpf_get_socket_cookie(skb);
		s->d.q.subject = sock_owner(s->d.q.cookie); /* TrackSock: matchBinaries, the event's process */
		decide();
	}
	*level = 0;
	return 1;
}

#endif
