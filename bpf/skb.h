/* SPDX-License-Identifier: GPL-2.0 */
/* A packet as the kernel's sk_buff holds it, read from kernel memory
 * (the fentry and tracepoint programs; cgroup_skb programs read theirs
 * with bpf_skb_load_bytes, receive.h). */
#ifndef OCIGATE_SKB_H
#define OCIGATE_SKB_H

#include "workload.h"

#define SKB_ETH_P_IP_BE 0x0008	  /* htons(ETH_P_IP) */
#define SKB_ETH_P_IPV6_BE 0xDD86 /* htons(ETH_P_IPV6) */

/* The packet's addresses and ports into q, read from the kernel's skb
 * (network and transport headers are set on the receive path and on the
 * way out): the destination is the packet's (received: the socket's
 * end). Returns 0 when it is not IPv4/IPv6. */
static __always_inline int kskb_query(struct sk_buff *skb, struct query *q)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u16 th = BPF_CORE_READ(skb, transport_header);
	__u16 proto = BPF_CORE_READ(skb, protocol);

	if (proto == SKB_ETH_P_IP_BE) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), head + nh))
			return 0;
		q->family = AF_INET;
		q->protocol = ip.protocol;
		ipv4_mapped(q->saddr, ip.saddr);
		ipv4_mapped(q->daddr, ip.daddr);
		th = nh + (ip.ihl & 0xf) * 4;
	} else if (proto == SKB_ETH_P_IPV6_BE) {
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

#endif
