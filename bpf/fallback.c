//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/* The fallback backend: kernels without BPF LSM or fmod_ret. cgroup socket
 * hooks refuse connects, sends, binds and socket creation; exec is stopped
 * by SIGKILL at sched_process_exec, before the new image runs an
 * instruction in user space. Attached at the root of the cgroup v2 tree;
 * the rule engine scopes every decision to registered workloads. */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "task.h"

char LICENSE[] SEC("license") = "GPL";

/* Keep the event layout in BTF for bpf2go's -type event. */
const struct event *unused_event __attribute__((unused));

static __always_inline int sock_addr4(struct bpf_sock_addr *ctx, __u8 point)
{
	struct query q = { .point = point, .family = AF_INET, .has_addr = 1 };

	q.protocol = ctx->protocol;
	q.sock_type = ctx->type;
	q.dport = bpf_ntohs((__u16)ctx->user_port);
	ipv4_mapped(q.daddr, ctx->user_ip4);
	struct verdict v = decide(&q, ENFORCER_CGROUP_SOCK_ADDR, CAN_DENY);
	return v.deny ? 0 : 1;
}

static __always_inline int sock_addr6(struct bpf_sock_addr *ctx, __u8 point)
{
	struct query q = { .point = point, .family = AF_INET6, .has_addr = 1 };
	__u32 a[4];

	q.protocol = ctx->protocol;
	q.sock_type = ctx->type;
	q.dport = bpf_ntohs((__u16)ctx->user_port);
	a[0] = ctx->user_ip6[0];
	a[1] = ctx->user_ip6[1];
	a[2] = ctx->user_ip6[2];
	a[3] = ctx->user_ip6[3];
	__builtin_memcpy(q.daddr, a, 16);
	struct verdict v = decide(&q, ENFORCER_CGROUP_SOCK_ADDR, CAN_DENY);
	return v.deny ? 0 : 1;
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, POINT_CONNECT);
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, POINT_CONNECT);
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, POINT_SENDMSG);
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, POINT_SENDMSG);
}

SEC("cgroup/bind4")
int bind4(struct bpf_sock_addr *ctx)
{
	return sock_addr4(ctx, POINT_BIND);
}

SEC("cgroup/bind6")
int bind6(struct bpf_sock_addr *ctx)
{
	return sock_addr6(ctx, POINT_BIND);
}

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *sk)
{
	struct query q = { .point = POINT_SOCK_CREATE };

	q.family = sk->family;
	q.sock_type = sk->type;
	q.protocol = sk->protocol;
	struct verdict v = decide(&q, ENFORCER_CGROUP_SOCK, CAN_DENY);
	return v.deny ? 0 : 1;
}

/* cgroup/sock_create sees only AF_INET and AF_INET6; other families (packet
 * sockets) are checked at the syscall and the caller is killed. */
SEC("tracepoint/syscalls/sys_enter_socket")
int socket_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct query q = { .point = POINT_SOCK_CREATE };

	q.family = (__u8)ctx->args[0];
	if (q.family == AF_INET || q.family == AF_INET6)
		return 0;
	q.sock_type = (__u8)(ctx->args[1] & 0xf);
	q.protocol = (__u8)ctx->args[2];
	struct verdict v = decide(&q, ENFORCER_TRACEPOINT_SIGKILL, CAN_KILL);
	if (v.kill)
		bpf_send_signal(SIGKILL);
	return 0;
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm):
 * the new image is mapped, no user instruction of it has run yet. */
SEC("raw_tracepoint/sched_process_exec")
int process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	struct query q = {};

	exec_query(&q, bprm, task);
	struct verdict v = decide(&q, ENFORCER_TRACEPOINT_SIGKILL, CAN_KILL);
	if (v.kill)
		bpf_send_signal(SIGKILL);
	return 0;
}
