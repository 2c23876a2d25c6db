//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/* The fallback backend: kernels without BPF LSM or fmod_ret. cgroup socket
 * hooks refuse connects, sends, binds and socket creation; exec is stopped
 * by SIGKILL at sched_process_exec, before the new image runs an
 * instruction in user space. Attached at the root of the cgroup v2 tree;
 * the rule engine scopes every decision to registered workloads.
 * Also here, attached on every kernel: exec tracking (which binary each
 * process of a workload runs, and its exec, clone and exit records for
 * the agent) and close events (cgroup/sock_release). */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "relay.h"
#include "procs.h"
#include "accept.h"
#include "receive.h"
#include "xmit.h"

char LICENSE[] SEC("license") = "GPL";

/* Keep the event layout in BTF for bpf2go's -type event. */
const struct event *unused_event __attribute__((unused));

/* A cgroup hook's answer: allow (1), or refuse with the profile's errno
 * where the kernel can set it (bpf_set_retval, 5.18+), EPERM elsewhere. */
static __always_inline int cgroup_verdict(struct scratch *s)
{
	if (!s->d.v.deny)
		return 1;
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_set_retval))
		bpf_set_retval(negative_errno(s->d.v.err));
	return 0;
}

static __always_inline void sock_query(struct query *q, struct bpf_sock *sk)
{
	if (!sk)
		return;
	q->state = sk->state;
	if (sk->src_port) {
		q->has_saddr = 1;
		q->sport = sk->src_port;
		if (q->family == AF_INET) {
			ipv4_mapped(q->saddr, sk->src_ip4);
		} else {
			__u32 a[4] = { sk->src_ip6[0], sk->src_ip6[1], sk->src_ip6[2], sk->src_ip6[3] };
			__builtin_memcpy(q->saddr, a, 16);
		}
	}
}

/* The user address of ctx into the query: the destination, or for bind
 * the local address. */
static __always_inline int sock_addr(struct bpf_sock_addr *ctx, __u8 point, __u8 family)
{
	struct scratch *s = begin_decision(point, ENFORCER_CGROUP_SOCK_ADDR, CAN_DENY);

	if (!s)
		return 1;
	struct query *q = &s->d.q;
	__u16 port = bpf_ntohs((__u16)ctx->user_port);
	__u8 addr[16];

	q->family = family;
	q->protocol = ctx->protocol;
	q->sock_type = ctx->type;
	if (family == AF_INET) {
		ipv4_mapped(addr, ctx->user_ip4);
	} else {
		__u32 a[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };
		__builtin_memcpy(addr, a, 16);
	}
	if (point == POINT_BIND) {
		q->has_saddr = 1;
		q->sport = port;
		__builtin_memcpy(q->saddr, addr, 16);
	} else {
		sock_query(q, ctx->sk);
		q->has_daddr = 1;
		q->dport = port;
		__builtin_memcpy(q->daddr, addr, 16);
	}
	q->cookie = bpf_get_socket_cookie(ctx);
	decide();
	if (point == POINT_CONNECT)
		relay_connect();
	return cgroup_verdict(s);
}

SEC("cgroup/connect4")
int connect4(struct bpf_sock_addr *ctx)
{
	return sock_addr(ctx, POINT_CONNECT, AF_INET);
}

SEC("cgroup/connect6")
int connect6(struct bpf_sock_addr *ctx)
{
	return sock_addr(ctx, POINT_CONNECT, AF_INET6);
}

SEC("cgroup/sendmsg4")
int sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock_addr(ctx, POINT_SENDMSG, AF_INET);
}

SEC("cgroup/sendmsg6")
int sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock_addr(ctx, POINT_SENDMSG, AF_INET6);
}

SEC("cgroup/bind4")
int bind4(struct bpf_sock_addr *ctx)
{
	return sock_addr(ctx, POINT_BIND, AF_INET);
}

SEC("cgroup/bind6")
int bind6(struct bpf_sock_addr *ctx)
{
	return sock_addr(ctx, POINT_BIND, AF_INET6);
}

SEC("cgroup/sock_create")
int sock_create(struct bpf_sock *sk)
{
	struct scratch *s = begin_decision(POINT_SOCK_CREATE, ENFORCER_CGROUP_SOCK, CAN_DENY);

	if (!s)
		return 1;
	s->d.q.family = sk->family;
	s->d.q.sock_type = sk->type;
	s->d.q.protocol = sk->protocol;
	decide();
	return cgroup_verdict(s);
}

/* Close of an inet socket by a process: reported (tcp_close), never
 * refused; the peer address is known, the local one is not readable here. */
SEC("cgroup/sock_release")
int sock_release(struct bpf_sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);
	__u64 workload_cgroup;
	/* Every socket of the host is released here and few have rules at
	 * close: only those are decided (decide finds the same rules). */
	struct scratch *s = profile_rules(current_workload(&workload_cgroup), POINT_CLOSE) ?
		begin_decision(POINT_CLOSE, ENFORCER_CGROUP_SOCK_RELEASE, 0) : 0;

	if (s) {
		struct query *q = &s->d.q;

		q->family = sk->family;
		q->sock_type = sk->type;
		q->protocol = sk->protocol;
		q->state = sk->state; /* the source address is not readable here */
		if (sk->dst_port) {
			q->has_daddr = 1;
			q->dport = bpf_ntohs((__u16)sk->dst_port);
			if (q->family == AF_INET) {
				ipv4_mapped(q->daddr, sk->dst_ip4);
			} else {
				__u32 a[4] = { sk->dst_ip6[0], sk->dst_ip6[1], sk->dst_ip6[2], sk->dst_ip6[3] };
				__builtin_memcpy(q->daddr, a, 16);
			}
		}
		q->cookie = cookie;
		decide();
	}
	/* UntrackSock. Every socket of the host is released here, and few
	 * are tracked: none before any is (socks_tracked). */
	__u32 zero = 0;
	__u32 *tracked = bpf_map_lookup_elem(&socks_tracked, &zero);

	if (!tracked || *tracked)
		forget(&sock_owners, &cookie);
	return 1;
}

/* TrackSock, on every kernel: the creator of each inet socket of a
 * workload whose profile tracks sockets, keyed by the socket's cookie
 * (generated here, so the LSM and fmod_ret programs can read it). */
SEC("cgroup/sock_create")
int track_sock(struct bpf_sock *sk)
{
	__u64 workload_cgroup;
	struct workload *w = current_workload(&workload_cgroup);

	if (!w || !(w->flags & WORKLOAD_TRACK_SOCKETS))
		return 1;
	__u64 cookie = bpf_get_socket_cookie(sk);
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 zero = 0;
	__u32 *tracked = bpf_map_lookup_elem(&socks_tracked, &zero);

	if (tracked && !*tracked)
		*tracked = 1; /* before the entry: its release must look */
	bpf_map_update_elem(&sock_owners, &cookie, &tgid, BPF_ANY);
	return 1;
}

/* cgroup/sock_create sees only AF_INET and AF_INET6; other families (packet
 * sockets) are checked at the syscall and the caller is killed. */
SEC("tracepoint/syscalls/sys_enter_socket")
int socket_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u8 family = (__u8)ctx->args[0];

	if (family == AF_INET || family == AF_INET6)
		return 0;
	struct scratch *s = begin_decision(POINT_SOCK_CREATE, ENFORCER_TRACEPOINT_SIGKILL, CAN_KILL);

	if (!s)
		return 0;
	s->d.q.family = family;
	s->d.q.sock_type = (__u8)(ctx->args[1] & 0xf);
	s->d.q.protocol = (__u8)ctx->args[2];
	decide();
	carry_out(s);
	return 0;
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm):
 * the new image is mapped, no user instruction of it has run yet. */
SEC("raw_tracepoint/sched_process_exec")
int process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	__u64 workload_cgroup;

	if (!current_workload(&workload_cgroup))
		return 0; /* the path walk is for workloads only */
	struct scratch *s = begin_decision(POINT_EXEC, ENFORCER_TRACEPOINT_SIGKILL, CAN_KILL);

	if (!s)
		return 0;
	exec_query((__u64)BPF_CORE_READ(bprm, file), (__u64)BPF_CORE_READ(bprm, filename));
	exec_caller_at_exec(s, (__u64)bprm);
	read_args(s);
	decide();
	carry_out(s);
	return 0;
}

/* dup2/dup3 (FD redirection), on every kernel: the family of the old
 * descriptor if it is a socket, and the new descriptor. A tracepoint
 * cannot refuse: a refusing selector kills the caller instead. */
static __always_inline int check_dup(int old_fd, int new_fd, __u8 variant)
{
	struct scratch *s = begin_decision(POINT_DUP, ENFORCER_TRACEPOINT, CAN_KILL);

	if (!s)
		return 0;
	s->d.q.old_fd = old_fd;
	s->d.q.new_fd = new_fd;
	s->d.q.variant = variant;
	s->d.q.family = fd_socket_family(old_fd);
	decide();
	carry_out(s);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_dup2")
int dup2_enter(struct trace_event_raw_sys_enter *ctx)
{
	return check_dup((int)ctx->args[0], (int)ctx->args[1], 2);
}

SEC("tracepoint/syscalls/sys_enter_dup3")
int dup3_enter(struct trace_event_raw_sys_enter *ctx)
{
	return check_dup((int)ctx->args[0], (int)ctx->args[1], 3);
}

/* dup and fcntl(F_DUPFD, F_DUPFD_CLOEXEC) pick the new descriptor: the
 * lowest free one (at or above fcntl's argument). Only 0-2 matter here,
 * so it is told at the entry from the descriptor table (the syscall exit
 * tracepoints are avoided: toggling them patches the syscall exit path,
 * which QEMU's TCG has been seen to trip over). */
#define F_DUPFD 0
#define F_DUPFD_CLOEXEC 1030

/* The descriptor dup would return if it is 0, 1 or 2; 3 for "above". */
static __always_inline int lowest_free_stdio(int min)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);

	for (int i = 0; i < 3; i++) {
		struct file *f = 0;

		if (i < min || i >= max)
			continue;
		if (!bpf_probe_read_kernel(&f, sizeof(f), &fds[i]) && !f)
			return i;
	}
	return 3;
}

SEC("tracepoint/syscalls/sys_enter_dup")
int dup_enter(struct trace_event_raw_sys_enter *ctx)
{
	return check_dup((int)ctx->args[0], lowest_free_stdio(0), 1);
}

SEC("tracepoint/syscalls/sys_enter_fcntl")
int fcntl_enter(struct trace_event_raw_sys_enter *ctx)
{
	int cmd = (int)ctx->args[1];
	long min = (long)ctx->args[2];

	if (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC)
		return 0;
	if (min > 2)
		return 0; /* lands above stdio */
	return check_dup((int)ctx->args[0], lowest_free_stdio(min < 0 ? 0 : (int)min), 4);
}

/* memfd_create, on every kernel: reported with its name (the staging of
 * a fileless payload); a refusing selector kills the caller. */
SEC("tracepoint/syscalls/sys_enter_memfd_create")
int memfd_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct scratch *s = begin_decision(POINT_MEMFD, ENFORCER_TRACEPOINT, CAN_KILL);

	if (!s)
		return 0;
	bpf_probe_read_user_str(s->d.q.binary, sizeof(s->d.q.binary), (const void *)ctx->args[0]);
	decide();
	carry_out(s);
	return 0;
}

/* TCP sends (tcp_sendmsg) where the send hook is the fallback's: the
 * cgroup send hooks see UDP only. sock_send_length(sk, ret, flags) runs
 * after the send (kernels 6.3+): it reports, and can only kill. */
SEC("raw_tracepoint/sock_send_length")
int tcp_send(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	__u8 protocol = BPF_CORE_READ(sk, sk_protocol);
	__u8 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (protocol != IPPROTO_TCP || (family != AF_INET && family != AF_INET6))
		return 0;
	struct scratch *s = begin_decision(POINT_SENDMSG, ENFORCER_TRACEPOINT, CAN_KILL);

	if (!s)
		return 0;
	s->d.q.protocol = protocol;
	s->d.q.family = family;
	s->d.q.sock_type = BPF_CORE_READ(sk, sk_type);
	s->d.q.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	sock_addresses(&s->d.q, sk);
	decide();
	carry_out(s);
	return 0;
}

/* Exec tracking, whatever backend enforces: the binary each process of a
 * registered workload runs, for matchBinaries at every point; the exec
 * record for the agent. */
SEC("raw_tracepoint/sched_process_exec")
int track_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = current_task(); /* ctx->args[0] */
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 workload_cgroup = 0;
	struct workload *w = current_workload(&workload_cgroup);
	struct scratch *s;

	if (!w || !(s = get_scratch()))
		return 0;
	save_exec_caller(s, (__u64)bprm);
	resolve_exec((__u64)BPF_CORE_READ(bprm, file), (__u64)BPF_CORE_READ(bprm, filename));
	s->x.exec.workload = workload_cgroup;
	bpf_map_update_elem(&procs, &tgid, &s->x.exec, BPF_ANY);
	ns_record_exec(tgid);
	report_exec(task, &s->x.exec, w, workload_cgroup);
	return 0;
}

/* sched_process_fork(struct task_struct *parent, struct task_struct *child):
 * a new process runs its parent's binary until it execs. No record: a
 * fork that execs at once, as nearly every one does, needs none (its
 * exec record names its parent), and the agent makes the entry of a
 * child that has not exec'd from its parent when an event or its exit
 * first names it. */
SEC("raw_tracepoint/sched_process_fork")
int track_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 cpid = BPF_CORE_READ(child, pid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);

	if (cpid != ctgid)
		return 0; /* a thread */
	struct proc *p = bpf_map_lookup_elem(&procs, &ptgid);
	if (p)
		bpf_map_update_elem(&procs, &ctgid, p, BPF_ANY);
	ns_record_fork(ptgid, ctgid);
	return 0;
}

/* sched_process_exit(struct task_struct *p[, bool group_dead]): current
 * is p. The process record goes, and the agent hears of the exit, when
 * the last thread leaves: not when its leader does, which may be a thread
 * of a process that lives on, as in an exec from another thread, whose
 * de_thread ends the old leader before the new image runs (the exec must
 * still find its caller's record). */
SEC("raw_tracepoint/sched_process_exit")
int track_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = current_task(); /* ctx->args[0] */
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!group_dead(task))
		return 0;
	__u64 workload_cgroup = 0;
	struct workload *w = current_workload(&workload_cgroup);

	if (w)
		report_exit(task, w, workload_cgroup);
	forget(&procs, &tgid);
	ns_forget(tgid);
	relay_exit(tgid);
	return 0;
}

/* Relayed shells, on every kernel, at sched_process_exec where the new
 * image's argv is readable: a shell whose stdin and stdout are pipes,
 * fifos, ptys or unix sockets and that reads its commands from stdin is
 * killed before its first instruction when its network peer is known;
 * otherwise it is remembered until the peer connects (relay_connect). */
SEC("raw_tracepoint/sched_process_exec")
int relay_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	__u64 workload_cgroup;
	struct workload *w = current_workload(&workload_cgroup);

	if (!w || !(w->flags & WORKLOAD_RELAY))
		return 0;
	struct scratch *s = begin_decision(POINT_RELAY, ENFORCER_TRACEPOINT_SIGKILL, CAN_KILL);

	if (s && relay_exec_check((__u64)BPF_CORE_READ(bprm, file), (__u64)BPF_CORE_READ(bprm, filename)))
		carry_out(s);
	return 0;
}
