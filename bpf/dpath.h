/* SPDX-License-Identifier: GPL-2.0 */
/* The executed file's path as the process sees it: its dentries walked up
 * to the task's root directory, across mounts, so that symlinks, "./sh"
 * and relative paths name the file itself. bpf_d_path is not allowed in
 * the tracepoints that need this, so the walk is done here, one component
 * per bpf_loop iteration, written backwards into per-CPU scratch. */
#ifndef OCIGATE_DPATH_H
#define OCIGATE_DPATH_H

#include "rules.h"

#define DPATH_DEPTH 40	/* components and mount crossings */

/* Walk state. Kernel pointers are plain numbers here (read with
 * bpf_probe_read_kernel), compared and read through, never dereferenced. */
struct path_walk {
	__u64 dentry;
	__u64 mnt;		/* struct vfsmount * */
	__u64 root_dentry;
	__u64 root_mnt;
	__s32 off;		/* the path starts at buf[off] */
	__u32 done;		/* 1: at the root; 2: failed */
};

static long walk_up(__u32 i, void *data)
{
	struct path_walk *w = data;
	struct dentry *d = (struct dentry *)w->dentry;
	struct vfsmount *mnt = (struct vfsmount *)w->mnt;
	struct dpath_scratch *ds = get_dpath_scratch();

	if (!ds) {
		w->done = 2;
		return 1;
	}
	if (w->dentry == w->root_dentry && w->mnt == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	if (d == BPF_CORE_READ(mnt, mnt_root)) {
		/* the root of a mount: continue at its mountpoint */
		struct mount *m = (struct mount *)((void *)mnt - bpf_core_field_offset(struct mount, mnt));
		struct mount *parent = BPF_CORE_READ(m, mnt_parent);

		if (parent == m) {
			w->done = 1; /* the namespace's root: the task's root is elsewhere */
			return 1;
		}
		w->dentry = (__u64)BPF_CORE_READ(m, mnt_mountpoint);
		w->mnt = (__u64)((void *)parent + bpf_core_field_offset(struct mount, mnt));
		return 0;
	}
	struct dentry *up = BPF_CORE_READ(d, d_parent);

	if (up == d) {
		w->done = 1;
		return 1;
	}
	__u32 len = BPF_CORE_READ(d, d_name.len);
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	__s32 off = w->off - (__s32)len - 1;

	if (off < 0 || len >= DPATH_ROOM) {
		w->done = 2; /* too long */
		return 1;
	}
	bpf_probe_read_kernel(&ds->buf[(off + 1) & (DPATH_ROOM - 1)], len & (DPATH_ROOM - 1), name);
	ds->buf[off & (DPATH_ROOM - 1)] = '/';
	w->off = off;
	w->dentry = (__u64)up;
	return 0;
}

/* The path of file relative to task's root into p->path; false when it
 * cannot be told (too deep or too long). */
static __always_inline bool resolve_path(struct proc *p, struct file *file, struct task_struct *task)
{
	struct dpath_scratch *ds = get_dpath_scratch();
	struct path_walk w = { .off = DPATH_ROOM };

	if (!ds || !file)
		return false;
	w.dentry = (__u64)BPF_CORE_READ(file, f_path.dentry);
	w.mnt = (__u64)BPF_CORE_READ(file, f_path.mnt);
	w.root_dentry = (__u64)BPF_CORE_READ(task, fs, root.dentry);
	w.root_mnt = (__u64)BPF_CORE_READ(task, fs, root.mnt);
	bpf_loop(DPATH_DEPTH, walk_up, &w, 0);
	if (w.done != 1)
		return false;
	__u32 off = w.off;

	if (off >= DPATH_ROOM) {
		p->path[0] = '/';
		p->path[1] = 0;
		return true;
	}
	if (off == 0)
		return false; /* no room for the terminator */
	__u32 len = DPATH_ROOM - off;

	bpf_probe_read_kernel(p->path, len & (FULL_PATH_LEN - 1), &ds->buf[off & (DPATH_ROOM - 1)]);
	p->path[len & (FULL_PATH_LEN - 1)] = 0;
	return true;
}

/* FNV-1a (64 bit) of a NUL-terminated string in scratch, its length and
 * the offset of its base name; one byte per bpf_loop iteration. */
struct hash_state {
	__u64 hash;
	__u32 len;
	__u32 base;
	__u32 alias;	/* 0: the proc path in scratch, 1: the alias */
};

static long hash_byte(__u32 i, void *data)
{
	struct hash_state *h = data;
	struct dpath_scratch *ds = get_dpath_scratch();
	struct scratch *sc = get_scratch();
	char c;

	if (!ds || !sc || i >= FULL_PATH_LEN)
		return 1;
	barrier_var(i); /* keep the mask: clang folds it into the test above */
	i &= FULL_PATH_LEN - 1;
	if (h->alias)
		c = ds->alias[i];
	else
		c = sc->exec.path[i];
	if (!c)
		return 1;
	h->hash = (h->hash ^ (__u8)c) * 1099511628211ULL;
	h->len++;
	if (c == '/')
		h->base = h->len;
	return 0;
}

/* sc->exec.rpath[i] = the i-th byte from the end of sc->exec.path. */
static long reverse_byte(__u32 i, void *data)
{
	__u32 len = *(__u32 *)data;
	struct scratch *sc = get_scratch();

	if (!sc || i >= PREFIX_LEN)
		return 1;
	barrier_var(i);
	i &= PREFIX_LEN - 1;
	if (i >= len) {
		sc->exec.rpath[i] = 0;
		return 1;
	}
	sc->exec.rpath[i] = sc->exec.path[(len - 1 - i) & (FULL_PATH_LEN - 1)];
	return 0;
}

static __always_inline void reverse_path(__u32 len)
{
	bpf_loop(PREFIX_LEN, reverse_byte, &len, 0);
}

static __always_inline struct hash_state hash_scratch(__u32 alias)
{
	struct hash_state h = { .hash = 14695981039346656037ULL, .alias = alias };

	bpf_loop(FULL_PATH_LEN, hash_byte, &h, 0);
	return h;
}

/* Reads the new image's argv (at sched_process_exec, where the task's mm
 * is the new one) into the dpath scratch for the event; sets
 * q->args_len. */
static __always_inline void read_args(struct query *q, struct task_struct *task)
{
	struct dpath_scratch *ds = get_dpath_scratch();
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	__u32 len = end > start ? end - start : 0;

	if (!ds || !len)
		return;
	if (len > ARGS_EV_LEN - 1)
		len = ARGS_EV_LEN - 1;
	if (bpf_probe_read_user(ds->args, len & (ARGS_EV_LEN - 1), (const void *)start))
		return;
	q->args_len = len;
}

#endif
