//go:build ignore

/* SPDX-License-Identifier: GPL-2.0 */
/* The LSM and fmod_ret backends: the same checks on the kernel's security
 * hooks, refusing with an errno in the caller. BPF LSM programs where `bpf`
 * is in lsm=, fmod_ret programs on the security_* functions elsewhere
 * (x86_64, 5.7+). Each check is one function used by both program kinds;
 * the rule engine is match.h and verdict.h, shared with the fallback. */
#include "headers/vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "relay.h"
#include "receive_fentry.h"

char LICENSE[] SEC("license") = "GPL";

#define SOCK_STREAM 1
#define AF_UNSPEC 0

/* Socket family, type and protocol; false for non-inet sockets. */
static __always_inline bool socket_query(struct query *q, struct socket *sock)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);

	q->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	q->sock_type = BPF_CORE_READ(sock, type);
	q->protocol = BPF_CORE_READ(sk, sk_protocol);
	q->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	q->cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	return q->family == AF_INET || q->family == AF_INET6;
}

/* The socket's bound local address and port. */
static __always_inline void local_addr(struct query *q, struct socket *sock)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);

	q->has_saddr = 1;
	q->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (q->family == AF_INET)
		ipv4_mapped(q->saddr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
	else
		BPF_CORE_READ_INTO(&q->saddr, sk, __sk_common.skc_v6_rcv_saddr);
}

/* The address of a sockaddr; false when it is not inet. */
static __always_inline bool sockaddr_query(struct query *q, struct sockaddr *addr)
{
	__u16 family = BPF_CORE_READ(addr, sa_family);

	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)addr;

		q->dport = bpf_ntohs(BPF_CORE_READ(in, sin_port));
		ipv4_mapped(q->daddr, BPF_CORE_READ(in, sin_addr.s_addr));
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;

		q->dport = bpf_ntohs(BPF_CORE_READ(in6, sin6_port));
		bpf_probe_read_kernel(q->daddr, 16, &in6->sin6_addr);
	} else {
		return false;
	}
	q->has_daddr = 1;
	return true;
}

#define CAN_ALL (CAN_DENY | CAN_KILL)

/* The program's result: fmod_ret returns a positive Override value
 * itself, as Tetragon does; an LSM program can only refuse with an errno
 * (the event says so). enforcer is a constant: the choice is compiled
 * away. */
static __always_inline int finish(struct scratch *s, __u8 enforcer)
{
	if (enforcer == ENFORCER_FMOD_RET)
		return carry_out_value(s);
	return carry_out(s);
}

static __always_inline int check_connect(struct socket *sock, struct sockaddr *address, __u8 enforcer)
{
	struct scratch *s = begin_decision(POINT_CONNECT, enforcer, CAN_ALL);

	if (!s || !socket_query(&s->d.q, sock) || !sockaddr_query(&s->d.q, address))
		return 0;
	local_addr(&s->d.q, sock);
	s->d.q.has_saddr = s->d.q.sport != 0;
	decide();
	relay_connect();
	return finish(s, enforcer);
}

/* Sends: with an explicit destination (on a stream socket that is a TCP
 * Fast Open connect, checked as a connect), or on a connected stream
 * socket (to its peer). */
static __always_inline int check_sendmsg(struct socket *sock, struct msghdr *msg, __u8 enforcer)
{
	struct scratch *s = begin_decision(POINT_SENDMSG, enforcer, CAN_ALL);
	struct sockaddr *name = BPF_CORE_READ(msg, msg_name);

	if (!s || !socket_query(&s->d.q, sock))
		return 0;
	if (!name) {
		/* A send on a connected stream socket (tcp_sendmsg): to its peer. */
		if (s->d.q.sock_type != SOCK_STREAM)
			return 0;
		sock_addresses(&s->d.q, BPF_CORE_READ(sock, sk));
	} else {
		if (!sockaddr_query(&s->d.q, name))
			return 0;
		if (s->d.q.sock_type == SOCK_STREAM)
			s->d.q.point = POINT_CONNECT;
	}
	decide();
	return finish(s, enforcer);
}

/* bind: the address being bound is the local one. */
static __always_inline int check_bind(struct socket *sock, struct sockaddr *address, __u8 enforcer)
{
	struct scratch *s = begin_decision(POINT_BIND, enforcer, CAN_ALL);

	if (!s || !socket_query(&s->d.q, sock) || !sockaddr_query(&s->d.q, address))
		return 0;
	struct query *q = &s->d.q;

	__builtin_memcpy(q->saddr, q->daddr, 16);
	q->sport = q->dport;
	q->has_saddr = 1;
	q->has_daddr = 0;
	q->dport = 0;
	__builtin_memset(q->daddr, 0, 16);
	decide();
	return finish(s, enforcer);
}

/* listen: the socket's bound local address. */
static __always_inline int check_listen(struct socket *sock, __u8 enforcer)
{
	struct scratch *s = begin_decision(POINT_LISTEN, enforcer, CAN_ALL);

	if (!s || !socket_query(&s->d.q, sock))
		return 0;
	local_addr(&s->d.q, sock);
	decide();
	return finish(s, enforcer);
}

static __always_inline int check_socket_create(int family, int type, int protocol, int kern, __u8 enforcer)
{
	if (kern)
		return 0;
	struct scratch *s = begin_decision(POINT_SOCK_CREATE, enforcer, CAN_ALL);

	if (!s)
		return 0;
	s->d.q.family = family;
	s->d.q.sock_type = type & 0xf;
	s->d.q.protocol = protocol;
	decide();
	return finish(s, enforcer);
}

/* Refusing the exec is enough: the caller gets EPERM, nothing new runs. */
static __always_inline int check_exec(struct linux_binprm *bprm, __u8 enforcer)
{
	__u64 workload_cgroup;

	if (!current_workload(&workload_cgroup))
		return 0; /* the path walk is for workloads only */
	struct scratch *s = begin_decision(POINT_EXEC, enforcer, CAN_ALL | DENY_SUFFICES);

	if (!s)
		return 0;
	exec_query((__u64)BPF_CORE_READ(bprm, file), (__u64)BPF_CORE_READ(bprm, filename));
	exec_caller(s);
	decide();
	return finish(s, enforcer);
}

/* BPF LSM. The last argument is the verdict of earlier LSM programs; it is
 * passed on, clamped to what an LSM program may return. */

static __always_inline int lsm_prior(int ret)
{
	return negative_errno(0u - (__u32)ret);
}

SEC("lsm/socket_connect")
int BPF_PROG(lsm_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	return ret ? lsm_prior(ret) : check_connect(sock, address, ENFORCER_LSM);
}

SEC("lsm/socket_sendmsg")
int BPF_PROG(lsm_socket_sendmsg, struct socket *sock, struct msghdr *msg, int size, int ret)
{
	return ret ? lsm_prior(ret) : check_sendmsg(sock, msg, ENFORCER_LSM);
}

SEC("lsm/socket_bind")
int BPF_PROG(lsm_socket_bind, struct socket *sock, struct sockaddr *address, int addrlen, int ret)
{
	return ret ? lsm_prior(ret) : check_bind(sock, address, ENFORCER_LSM);
}

SEC("lsm/socket_listen")
int BPF_PROG(lsm_socket_listen, struct socket *sock, int backlog, int ret)
{
	return ret ? lsm_prior(ret) : check_listen(sock, ENFORCER_LSM);
}

SEC("lsm/socket_create")
int BPF_PROG(lsm_socket_create, int family, int type, int protocol, int kern, int ret)
{
	return ret ? lsm_prior(ret) : check_socket_create(family, type, protocol, kern, ENFORCER_LSM);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(lsm_bprm_check, struct linux_binprm *bprm, int ret)
{
	return ret ? lsm_prior(ret) : check_exec(bprm, ENFORCER_LSM);
}

/* fmod_ret on the security_* functions: a non-zero return skips the
 * function and becomes its result. */

SEC("fmod_ret/security_socket_connect")
int BPF_PROG(fmod_socket_connect, struct socket *sock, struct sockaddr *address, int addrlen)
{
	return check_connect(sock, address, ENFORCER_FMOD_RET);
}

SEC("fmod_ret/security_socket_sendmsg")
int BPF_PROG(fmod_socket_sendmsg, struct socket *sock, struct msghdr *msg, int size)
{
	return check_sendmsg(sock, msg, ENFORCER_FMOD_RET);
}

SEC("fmod_ret/security_socket_bind")
int BPF_PROG(fmod_socket_bind, struct socket *sock, struct sockaddr *address, int addrlen)
{
	return check_bind(sock, address, ENFORCER_FMOD_RET);
}

SEC("fmod_ret/security_socket_listen")
int BPF_PROG(fmod_socket_listen, struct socket *sock, int backlog)
{
	return check_listen(sock, ENFORCER_FMOD_RET);
}

SEC("fmod_ret/security_socket_create")
int BPF_PROG(fmod_socket_create, int family, int type, int protocol, int kern)
{
	return check_socket_create(family, type, protocol, kern, ENFORCER_FMOD_RET);
}

SEC("fmod_ret/security_bprm_check")
int BPF_PROG(fmod_bprm_check, struct linux_binprm *bprm)
{
	return check_exec(bprm, ENFORCER_FMOD_RET);
}
