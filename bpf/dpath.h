/* SPDX-License-Identifier: GPL-2.0 */
/* The executed file's path as the process sees it: its dentries walked up
 * to the task's root directory, across mounts, so that symlinks, "./sh"
 * and relative paths name the file itself. bpf_d_path is not allowed in
 * the tracepoints that need this, so the walk is done here, one component
 * per bpf_loop iteration, written backwards into per-CPU scratch. Every
 * loop keeps its state in scratch (types.h says why). */
#ifndef OCIGATE_DPATH_H
#define OCIGATE_DPATH_H

#include "maps.h"

static long walk_up(__u32 i, void *unused)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 1;
	struct path_walk *w = &s->x.walk;
	struct dentry *d = (struct dentry *)w->dentry;
	struct vfsmount *mnt = (struct vfsmount *)w->mnt;

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
	bpf_probe_read_kernel(&s->x.buf[(off + 1) & (DPATH_ROOM - 1)], len & (DPATH_ROOM - 1), name);
	s->x.buf[off & (DPATH_ROOM - 1)] = '/';
	w->off = off;
	w->dentry = (__u64)up;
	return 0;
}

/* The path of file relative to the current task's root into the exec
 * path (s->x.exec.path); false when it cannot be told (too deep or too
 * long). */
static __always_inline bool resolve_path(struct scratch *s, __u64 file)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct path_walk *w = &s->x.walk;
	struct proc *p = &s->x.exec;

	if (!file)
		return false;
	w->off = DPATH_ROOM;
	w->done = 0;
	w->dentry = (__u64)BPF_CORE_READ((struct file *)file, f_path.dentry);
	w->mnt = (__u64)BPF_CORE_READ((struct file *)file, f_path.mnt);
	w->root_dentry = (__u64)BPF_CORE_READ(task, fs, root.dentry);
	w->root_mnt = (__u64)BPF_CORE_READ(task, fs, root.mnt);
	bpf_loop(DPATH_DEPTH, walk_up, 0, 0);
	if (w->done != 1)
		return false;
	__u32 off = w->off;

	if (off >= DPATH_ROOM) {
		p->path[0] = '/';
		p->path[1] = 0;
		return true;
	}
	if (off == 0)
		return false; /* no room for the terminator */
	__u32 len = DPATH_ROOM - off;

	bpf_probe_read_kernel(p->path, len & (FULL_PATH_LEN - 1), &s->x.buf[off & (DPATH_ROOM - 1)]);
	p->path[len & (FULL_PATH_LEN - 1)] = 0;
	return true;
}

static long hash_byte(__u32 i, void *unused)
{
	struct scratch *s = get_scratch();
	char c;

	if (!s || i >= FULL_PATH_LEN)
		return 1;
	barrier_var(i); /* keep the mask: clang folds it into the test above */
	i &= FULL_PATH_LEN - 1;
	struct hash_state *h = &s->x.hash;

	if (h->alias)
		c = s->x.alias[i];
	else
		c = s->x.exec.path[i];
	if (!c)
		return 1;
	h->hash = (h->hash ^ (__u8)c) * 1099511628211ULL;
	h->len++;
	if (c == '/')
		h->base = h->len;
	return 0;
}

/* FNV-1a of the exec path (alias 0) or the alias (1) into s->x.hash. */
static __always_inline void hash_path(struct scratch *s, __u32 alias)
{
	s->x.hash.hash = 14695981039346656037ULL;
	s->x.hash.len = 0;
	s->x.hash.base = 0;
	s->x.hash.alias = alias;
	bpf_loop(FULL_PATH_LEN, hash_byte, 0, 0);
}

/* rpath[i] = the i-th byte from the end of the exec path. */
static long reverse_byte(__u32 i, void *unused)
{
	struct scratch *s = get_scratch();

	if (!s || i >= PREFIX_LEN)
		return 1;
	barrier_var(i);
	i &= PREFIX_LEN - 1;
	__u32 len = s->x.reverse_len;

	if (i >= len) {
		s->x.exec.rpath[i] = 0;
		return 1;
	}
	s->x.exec.rpath[i] = s->x.exec.path[(len - 1 - i) & (FULL_PATH_LEN - 1)];
	return 0;
}

/* Reads the exec'd file into s->x.exec: its own path in the current
 * task's root (symlinks and relative paths resolved), or the path the
 * caller passed (filename) when the walk fails; hashed, measured and
 * reversed for Postfix. The path the caller passed, when absolute and
 * another, is hashed as an alias, and its base name (the name a
 * multi-call binary acts as) is kept in s->x.alias_base. A global
 * function: checked once, whatever calls it. file and filename are
 * kernel addresses (struct file *, const char *). */
__noinline int resolve_exec(__u64 file, __u64 filename)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 0;
	/* Up to three programs of one sched_process_exec hit (exec
	 * tracking, the exec point, the relay check) resolve the same exec,
	 * back to back on this CPU: the first one's result is still in
	 * scratch. Only past the exec's point of no return, where file is
	 * the new image's (mm->exe_file, held while it runs): before it
	 * (bprm_check), an exec that fails can be followed by another of
	 * the same task whose file and name reuse the freed addresses. The
	 * same task's same exec (self_exec_id grows at each) of the same
	 * file and name, within a millisecond. */
	struct task_struct *task = current_task();
	struct resolved *r = &s->x.resolved;
	struct resolved now = {
		.pid_tgid = bpf_get_current_pid_tgid(),
		.exec_id = task->self_exec_id,
		.file = file,
		.filename = filename,
		.at = bpf_ktime_get_ns(),
	};
	bool committed = (__u64)task->mm->exe_file == file;

	if (committed && r->pid_tgid == now.pid_tgid && r->exec_id == now.exec_id && r->file == file &&
	    r->filename == filename && now.at - r->at < 1000000)
		return 1;
	r->at = 0; /* not valid until this resolution is done */
	struct proc *p = &s->x.exec;

	p->alias_hash = 0;
	if (bpf_probe_read_kernel_str(s->x.alias, sizeof(s->x.alias), (const char *)filename) < 0)
		s->x.alias[0] = 0;
	hash_path(s, 1);
	s->x.alias_base = s->x.hash.base;
	__u64 alias_hash = s->x.hash.hash;

	if (resolve_path(s, file)) {
		if (s->x.alias[0] == '/')
			p->alias_hash = alias_hash;
	} else {
		__builtin_memcpy(p->path, s->x.alias, sizeof(p->path));
	}
	hash_path(s, 0);
	p->hash = s->x.hash.hash;
	p->len = s->x.hash.len;
	p->base = s->x.hash.base;
	s->x.reverse_len = p->len;
	bpf_loop(PREFIX_LEN, reverse_byte, 0, 0);
	if (p->alias_hash == p->hash)
		p->alias_hash = 0;
	if (committed)
		*r = now;
	return 1;
}

#endif
