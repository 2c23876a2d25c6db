/* SPDX-License-Identifier: GPL-2.0 */
/* Packets of a workload's sockets leaving through a network device
 * (Tetragon's dev_hard_start_xmit), from the net:net_dev_start_xmit
 * tracepoint that function fires for each packet. A packet names a
 * workload only by its socket (skb->sk, a full socket): forwarded
 * packets, ARP and other sockets' packets are not seen. The kernel may
 * send from a queue, in softirq or another task's context: the process
 * is the current one where it is in the socket's workload, else the
 * socket's creator where the profile tracks sockets (TrackSock). It
 * reports only. */
#ifndef OCIGATE_XMIT_H
#define OCIGATE_XMIT_H

#include "verdict.h"
#include "skb.h"

/* sk is a full socket: not a request or timewait mini-socket, whose
 * memory ends before sk_cgrp_data. */
static __always_inline bool full_sock(struct sock *sk)
{
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);

	return state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV;
}

SEC("tracepoint/net/net_dev_start_xmit")
int dev_xmit(struct trace_event_raw_net_dev_start_xmit *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->skbaddr;
	struct sock *sk = BPF_CORE_READ(skb, sk);

	if (!sk || !full_sock(sk))
		return 0;
	__u64 cgroup = sock_workload_cgroup(sk);

	if (!cgroup)
		return 0;
	__u32 zero = 0;
	__u32 *level = bpf_map_lookup_elem(&scratch_level, &zero);

	if (!level || *level)
		return 0;
	*level = 1;
	struct scratch *s = begin_decision(POINT_XMIT, ENFORCER_TRACEPOINT, 0);

	if (s) {
		struct query *q = &s->d.q;
		struct net_device *dev = BPF_CORE_READ(skb, dev);
		__u64 current_cgroup = 0;

		kskb_query(skb, q);
		bpf_core_read_str(q->binary, sizeof(dev->name), &dev->name); /* net_device: the name */
		q->sock_type = BPF_CORE_READ(sk, sk_type);
		q->cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
		if (!current_workload(&current_cgroup) || current_cgroup != cgroup) {
			q->sk_cgroup = cgroup; /* not the sender's context */
			q->subject = sock_owner(q->cookie);
		}
		decide();
	}
	*level = 0;
	return 0;
}

#endif
