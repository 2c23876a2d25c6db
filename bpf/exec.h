/* SPDX-License-Identifier: GPL-2.0 */
/* What the rules need to know about a task, its descriptors and an exec,
 * read with CO-RE; shared by every backend's exec and socket programs. */
#ifndef OCIGATE_EXEC_H
#define OCIGATE_EXEC_H

#include "dpath.h"
#include "workload.h"

/* Descriptors every descriptor table has room for: the kernel's
 * NR_OPEN_DEFAULT (BITS_PER_LONG), the size of the table embedded in
 * files_struct, which an expanded table never falls below. */
#define FDS_ALWAYS 64

/* The file on the current task's descriptor fd, 0 when there is none.
 * The table is reached by plain loads (current_task); the slot, at a
 * variable index, by one probe read. Its size is read only for
 * descriptors beyond FDS_ALWAYS. */
static __always_inline struct file *current_fd(int fd)
{
	struct fdtable *fdt = current_task()->files->fdt;
	struct file **fds = fdt->fd;
	struct file *f = 0;

	if (fd < 0 || !fds || (fd >= FDS_ALWAYS && fd >= fdt->max_fds))
		return 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return 0;
	return f;
}

/* The socket family of the current task's descriptor fd; 0 when it is
 * not a socket. */
static __always_inline __u16 fd_socket_family(int fd)
{
	struct file *f = current_fd(fd);

	if (!f)
		return 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk, __sk_common.skc_family);
}

/* What kind of connection a process dialled (the net_procs value, a
 * bitmask): a stream (TCP) or a datagram socket (a connected UDP one,
 * such as the resolver's). */
enum dialled_kind {
	DIALLED_STREAM = 1,
	DIALLED_DGRAM = 2,
};

static __always_inline __u8 dialled_kind(__u8 sock_type)
{
	return sock_type == SOCK_STREAM ? DIALLED_STREAM : DIALLED_DGRAM;
}

/* Bitmask of fds 0-2 of the current task that are INET or INET6 sockets;
 * *kinds gets the dialled_kind of each. */
static __always_inline __u8 stdio_inet_mask(__u8 *kinds)
{
	__u8 mask = 0;

	for (int i = 0; i < 3; i++) {
		struct file *f = current_fd(i);

		if (!f || (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
			continue;
		struct socket *sock = BPF_CORE_READ(f, private_data);
		__u16 family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);

		if (family != AF_INET && family != AF_INET6)
			continue;
		mask |= 1 << i;
		*kinds |= dialled_kind(BPF_CORE_READ(sock, type));
	}
	return mask;
}

#define DIALLED_ANCESTORS 3	/* the process, its parent and grandparent */

/* The process of task, its parent or grandparent that connected a socket
 * of one of kinds (net_procs: kept for workloads that watch relays or
 * dialled stdio), 0 when none did: whoever dialled the INET socket a
 * program gets on its stdio. An accepted connection (inetd, tcpsvd,
 * socket activation) has no dialler in the lineage, and a server's name
 * lookups (connected UDP sockets) do not make its TCP handlers dialled. */
static __always_inline __u32 stdio_dialler(struct task_struct *task, __u8 kinds)
{
	for (int i = 0; i < DIALLED_ANCESTORS; i++) {
		__u32 tgid = BPF_CORE_READ(task, tgid);

		if (tgid <= 1)
			break;
		__u8 *dialled = bpf_map_lookup_elem(&net_procs, &tgid);

		if (dialled && (*dialled & kinds))
			return tgid;
		task = BPF_CORE_READ(task, real_parent);
	}
	return 0;
}

/* A connected socket's addresses: the peer as daddr, the local end as
 * saddr. */
static __always_inline void sock_addresses(struct query *q, struct sock *sk)
{
	q->has_daddr = 1;
	q->has_saddr = 1;
	q->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	q->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (q->family == AF_INET) {
		ipv4_mapped(q->daddr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
		ipv4_mapped(q->saddr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
	} else {
		BPF_CORE_READ_INTO(&q->daddr, sk, __sk_common.skc_v6_daddr);
		BPF_CORE_READ_INTO(&q->saddr, sk, __sk_common.skc_v6_rcv_saddr);
	}
}

/* Fills the decision's query for an exec by the current task of file
 * (struct file *) called as filename (const char *): the executed file's
 * own name (symlinks resolved, so /bin/sh -> busybox) and path, the base
 * name of the path the caller passed (the applet name busybox will act
 * as), the stdio sockets and the parent. The path stays in scratch until
 * the program returns. A global function, checked once. */
__noinline int exec_query(__u64 file, __u64 filename)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 0;
	struct query *q = &s->d.q;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const unsigned char *name = BPF_CORE_READ((struct file *)file, f_path.dentry, d_name.name);

	q->point = POINT_EXEC;
	bpf_probe_read_kernel_str(q->binary, sizeof(q->binary), name);
	resolve_exec(file, filename);
	__u32 base = s->x.alias_base;

	bpf_probe_read_kernel_str(q->comm, sizeof(q->comm), &s->x.alias[base & (FULL_PATH_LEN - 1)]);
	q->exec_proc = 1;
	__u8 kinds = 0;

	q->stdio_inet = stdio_inet_mask(&kinds);
	if (q->stdio_inet) {
		q->peer = stdio_dialler(task, kinds);
		if (q->peer)
			q->stdio_inet |= STDIO_DIALLED;
	}
	q->ppid = current_task()->real_parent->tgid;
	/* memfd_create files and deleted files have no link on disk */
	q->fileless = BPF_CORE_READ((struct file *)file, f_inode, __i_nlink) == 0;
	return 1;
}

/* The binary the exec's caller runs, for matchBinaries at the exec point:
 * what exec tracking recorded for the current process, into s->x.caller.
 * At bprm_check_security (LSM, fmod_ret) the record is still the
 * caller's. */
static __always_inline void exec_caller(struct scratch *s)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc *p = bpf_map_lookup_elem(&procs, &tgid);

	s->x.caller_valid = p != 0;
	if (p)
		__builtin_memcpy(&s->x.caller, p, sizeof(*p));
}

/* exec_caller at sched_process_exec (the fallback's exec point), which
 * shares the tracepoint with exec tracking: when tracking ran first it
 * replaced the record and saved the caller's for this exec (bprm) in
 * scratch; otherwise the record is still the caller's, and tracking is
 * told (bprm | 1) that it need not save it. The programs of one
 * tracepoint hit run back to back on one CPU. */
static __always_inline void exec_caller_at_exec(struct scratch *s, __u64 bprm)
{
	if (s->x.caller_bprm == bprm) {
		s->x.caller_bprm = 0; /* tracking saved it */
		return;
	}
	exec_caller(s);
	s->x.caller_bprm = bprm | 1;
}

/* Exec tracking's side of exec_caller_at_exec: before it replaces the
 * process's record, the caller's is saved for the exec point, unless the
 * exec point has decided already. */
static __always_inline void save_exec_caller(struct scratch *s, __u64 bprm)
{
	if (s->x.caller_bprm == (bprm | 1)) {
		s->x.caller_bprm = 0;
		return;
	}
	exec_caller(s);
	s->x.caller_bprm = bprm;
}

/* Reads the new image's argv (at sched_process_exec, where the task's mm
 * is the new one) into scratch for the event; sets q->args_len. */
static __always_inline void read_args(struct scratch *s)
{
	int len = read_current_argv(s->x.args, ARGS_EV_LEN);

	if (len > 0)
		s->d.q.args_len = len;
}

#endif
