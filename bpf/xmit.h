/* SPDX-License-Identifier: GPL-2.0 */
/* Packets of a workload's sockets at the device layer: leaving through a
 * network device (Tetragon's dev_hard_start_xmit, from the
 * net:net_dev_start_xmit tracepoint it fires per packet) and dropped by
 * the kernel (kfree_skb_reason, from the skb:kfree_skb tracepoint). A
 * packet names a workload only by its socket (skb->sk, a full socket):
 * forwarded packets, ARP, the host's and packets that left their socket
 * (orphaned at a device, or not yet delivered) are not seen. The kernel
 * may work in softirq or another task's context: the process is the
 * current one where it is in the socket's workload, else the socket's
 * creator where the profile tracks sockets (TrackSock). Both report
 * only. */
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

/* The decision on a packet of a workload's socket at point, in scratch
 * slot 1 (maps.h: softirq may interrupt a program of slot 0), with the
 * packet's addresses and its socket, and the rules' uses; NULL when the
 * packet is no workload's, its workload has no rules at point, or slot
 * 1 is taken. The caller adds its own, decides and ends with
 * sock_packet_end. */
static __always_inline struct scratch *sock_packet_begin(struct sk_buff *skb, __u8 point, __u64 *uses)
{
	struct sock *sk = BPF_CORE_READ(skb, sk);

	if (!sk || !full_sock(sk))
		return 0;
	__u64 cgroup = sock_workload_cgroup(sk);

	if (!cgroup)
		return 0;
	struct point_rules *r = workload_rules(cgroup, point);

	if (!r)
		return 0;
	*uses = r->uses;
	__u32 zero = 0;
	__u32 *level = bpf_map_lookup_elem(&scratch_level, &zero);

	if (!level || *level)
		return 0;
	*level = 1;
	struct scratch *s = begin_decision(point, ENFORCER_TRACEPOINT, 0);

	if (!s) {
		*level = 0;
		return 0;
	}
	struct query *q = &s->d.q;
	__u64 current_cgroup = 0;

	kskb_query(skb, q);
	q->sock_type = BPF_CORE_READ(sk, sk_type);
	q->cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	if (!current_workload(&current_cgroup) || current_cgroup != cgroup) {
		q->sk_cgroup = cgroup; /* not the workload's context */
		q->subject = sock_owner(q->cookie);
	}
	return s;
}

/* The stacks the rules' uses ask for (Post kernelStackTrace,
 * userStackTrace), into the query as id + 1. Taken before the decision,
 * which runs without the program's context; the agent reports them with
 * the selectors that ask. The user stack only where the current task is
 * the workload's: elsewhere it would be the stack of whoever the kernel
 * works in. */
static __always_inline void take_stacks(void *ctx, struct scratch *s, __u64 uses)
{
	if (uses & MATCH_KERNEL_STACK) {
		long id = bpf_get_stackid(ctx, &stack_traces, BPF_F_REUSE_STACKID);

		s->d.q.kernel_stack = id >= 0 ? id + 1 : 0;
	}
	if ((uses & MATCH_USER_STACK) && !s->d.q.sk_cgroup) {
		long id = bpf_get_stackid(ctx, &stack_traces, BPF_F_USER_STACK | BPF_F_REUSE_STACKID);

		s->d.q.user_stack = id >= 0 ? id + 1 : 0;
	}
}

static __always_inline void sock_packet_end(void)
{
	__u32 zero = 0;
	__u32 *level = bpf_map_lookup_elem(&scratch_level, &zero);

	if (level)
		*level = 0;
}

SEC("tracepoint/net/net_dev_start_xmit")
int dev_xmit(struct trace_event_raw_net_dev_start_xmit *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->skbaddr;
	__u64 uses = 0;
	struct scratch *s = sock_packet_begin(skb, POINT_XMIT, &uses);

	if (!s)
		return 0;
	struct net_device *dev = BPF_CORE_READ(skb, dev);

	bpf_core_read_str(s->d.q.binary, sizeof(dev->name), &dev->name); /* net_device: the name */
	take_stacks(ctx, s, uses);
	decide();
	sock_packet_end();
	return 0;
}

SEC("tracepoint/skb/kfree_skb")
int skb_drop(struct trace_event_raw_kfree_skb *ctx)
{
	__u64 uses = 0;
	struct scratch *s = sock_packet_begin((struct sk_buff *)ctx->skbaddr, POINT_DROP, &uses);

	if (!s)
		return 0;
	if (bpf_core_field_exists(ctx->reason))
		s->d.q.drop_reason = BPF_CORE_READ(ctx, reason);
	take_stacks(ctx, s, uses);
	decide();
	sock_packet_end();
	return 0;
}

#endif
