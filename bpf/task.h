/* SPDX-License-Identifier: GPL-2.0 */
/* What the rules need to know about a task and an exec, read with CO-RE;
 * shared by every backend's exec and socket programs. */
#ifndef OCIGATE_TASK_H
#define OCIGATE_TASK_H

#include "dpath.h"

/* The socket family of task's descriptor fd; 0 when it is not a socket. */
static __always_inline __u16 fd_socket_family(struct task_struct *task, int fd)
{
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *f = 0;

	if (fd < 0 || fd >= max)
		return 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk, __sk_common.skc_family);
}

/* Bitmask of fds 0-2 of task that are INET or INET6 sockets. */
static __always_inline __u8 stdio_inet_mask(struct task_struct *task)
{
	__u8 mask = 0;

	for (int i = 0; i < 3; i++) {
		__u16 family = fd_socket_family(task, i);

		if (family == AF_INET || family == AF_INET6)
			mask |= 1 << i;
	}
	return mask;
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

/* The binary the current process runs, as exec tracking recorded it. */
static __always_inline struct proc *current_proc(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	return bpf_map_lookup_elem(&procs, &tgid);
}

/* Reads the exec'd binary into sc->exec: the file's own path in the
 * task's root (symlinks and relative paths resolved), or the path the
 * caller passed when the walk fails; hashed and measured. The path the
 * caller passed, when absolute and another, is hashed as an alias, and
 * its base name (the name a multi-call binary acts as) is kept in the
 * dpath scratch. */
static __always_inline void read_exec_path(struct scratch *sc, struct linux_binprm *bprm, struct task_struct *task)
{
	struct proc *p = &sc->exec;
	struct dpath_scratch *ds = get_dpath_scratch();
	const char *filename = BPF_CORE_READ(bprm, filename);

	if (!ds)
		return;
	p->alias_hash = 0;
	if (bpf_probe_read_kernel_str(ds->alias, sizeof(ds->alias), filename) < 0)
		ds->alias[0] = 0;
	struct hash_state alias = hash_scratch(1);

	ds->alias_base = alias.base;
	if (resolve_path(p, BPF_CORE_READ(bprm, file), task)) {
		if (ds->alias[0] == '/')
			p->alias_hash = alias.hash;
	} else {
		__builtin_memcpy(p->path, ds->alias, sizeof(p->path));
	}
	struct hash_state h = hash_scratch(0);

	p->hash = h.hash;
	p->len = h.len;
	p->base = h.base;
	reverse_path(h.len);
	if (p->alias_hash == p->hash)
		p->alias_hash = 0;
}

/* Fills the exec query: the executed file's own name (symlinks resolved,
 * so /bin/sh -> busybox) and path, the base name of the path the caller
 * passed (the applet name busybox will act as), the stdio sockets and the
 * parent. The path lives in per-CPU scratch until the program returns. */
static __always_inline void exec_query(struct query *q, struct linux_binprm *bprm, struct task_struct *task)
{
	const unsigned char *name = BPF_CORE_READ(bprm, file, f_path.dentry, d_name.name);
	struct scratch *sc = get_scratch();

	q->point = POINT_EXEC;
	bpf_probe_read_kernel_str(q->binary, sizeof(q->binary), name);
	struct dpath_scratch *ds = get_dpath_scratch();

	if (sc && ds) {
		read_exec_path(sc, bprm, task);
		/* Read base back from memory: the register that computed it
		 * carries the path length into pointer arithmetic, and every
		 * length would become a verifier state of its own. */
		__u32 base = *(volatile __u32 *)&ds->alias_base;
		bpf_probe_read_kernel_str(q->comm, sizeof(q->comm), &ds->alias[base & (FULL_PATH_LEN - 1)]);
		q->proc = &sc->exec;
	}
	q->stdio_inet = stdio_inet_mask(task);
	q->ppid = BPF_CORE_READ(task, real_parent, tgid);
	/* memfd_create files and deleted files have no link on disk */
	q->fileless = BPF_CORE_READ(bprm, file, f_inode, __i_nlink) == 0;
}

#endif
