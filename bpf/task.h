/* SPDX-License-Identifier: GPL-2.0 */
/* What the rules need to know about a task and an exec, read with CO-RE;
 * shared by every backend's exec and socket programs. */
#ifndef OCIGATE_TASK_H
#define OCIGATE_TASK_H

#include "rules.h"

#define FULL_PATH_LEN 256

/* Scratch space for a whole exec path, too big for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[FULL_PATH_LEN]);
} path_scratch SEC(".maps");

/* Bitmask of fds 0-2 of task that are INET or INET6 sockets. */
static __always_inline __u8 stdio_inet_mask(struct task_struct *task)
{
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	__u8 mask = 0;

	for (int i = 0; i < 3; i++) {
		struct file *f = 0;

		if (i >= max)
			break;
		if (bpf_probe_read_kernel(&f, sizeof(f), &fds[i]) || !f)
			continue;
		umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
		if ((mode & S_IFMT) != S_IFSOCK)
			continue;
		struct socket *sock = BPF_CORE_READ(f, private_data);
		__u16 family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
		if (family == AF_INET || family == AF_INET6)
			mask |= 1 << i;
	}
	return mask;
}

/* Fills the exec query: the executed file's own name (symlinks resolved,
 * so /bin/sh -> busybox), the path the caller passed, and its base name
 * (the applet name busybox will act as), the stdio sockets and the parent. */
static __always_inline void exec_query(struct query *q, struct linux_binprm *bprm, struct task_struct *task)
{
	const unsigned char *name = BPF_CORE_READ(bprm, file, f_path.dentry, d_name.name);

	q->point = POINT_EXEC;
	bpf_probe_read_kernel_str(q->binary, sizeof(q->binary), name);
	const char *filename = BPF_CORE_READ(bprm, filename);

	bpf_probe_read_kernel_str(q->filename, sizeof(q->filename), filename);
	/* The base name of the path (what busybox acts as), read again from
	 * the kernel after the last '/' of the first FULL_PATH_LEN bytes. */
	__u32 zero = 0, start = 0;
	char *path = bpf_map_lookup_elem(&path_scratch, &zero);
	if (path && bpf_probe_read_kernel_str(path, FULL_PATH_LEN, filename) > 0) {
		for (int i = 0; i < FULL_PATH_LEN; i++) {
			char c = path[i];

			if (!c)
				break;
			if (c == '/')
				start = i + 1;
		}
	}
	bpf_probe_read_kernel_str(q->comm, sizeof(q->comm), filename + (start & (FULL_PATH_LEN - 1)));
	q->stdio_inet = stdio_inet_mask(task);
	q->ppid = BPF_CORE_READ(task, real_parent, tgid);
}

#endif
