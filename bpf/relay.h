/* SPDX-License-Identifier: GPL-2.0 */
/* Relayed shells: a shell that reads its commands from a pipe, fifo, pty or
 * unix socket while a process holding a network socket relays between the
 * two — its parent (socat exec:sh,pty; ncat -e; python pty.spawn) or the
 * reader of its stdout (mkfifo + nc; openssl s_client in a pipeline).
 * Whichever comes second recognises the pair: the shell's exec (the peer
 * connected before: relay_exec) or the peer's connect (the shell started
 * first, and is remembered as pending: relay_connect). Kept out of the hot
 * path: both sides are global functions, run only for workloads whose
 * profile looks for relays. */
#ifndef OCIGATE_RELAY_H
#define OCIGATE_RELAY_H

#include "verdict.h"
#include "exec.h"

#define RELAY_ANCESTORS 2	/* parent and grandparent */
#define PTY_SLAVE_MAJOR_FIRST 136	/* UNIX98 pty slaves: 136-143 */
#define PTY_SLAVE_MAJOR_LAST 143

/* What a standard descriptor is, as far as relaying goes. */
enum stdio_kind {
	STDIO_OTHER = 0,
	STDIO_PIPE = 1,		/* pipe or fifo */
	STDIO_PTY = 2,
	STDIO_UNIX = 3,		/* unix socket */
};

static __always_inline __u8 file_kind(struct file *f)
{
	struct inode *inode = f ? BPF_CORE_READ(f, f_inode) : 0;

	if (!inode)
		return STDIO_OTHER;
	umode_t mode = BPF_CORE_READ(inode, i_mode);

	switch (mode & S_IFMT) {
	case S_IFIFO:
		return STDIO_PIPE;
	case S_IFCHR: {
		__u32 major = BPF_CORE_READ(inode, i_rdev) >> 20;

		return major >= PTY_SLAVE_MAJOR_FIRST && major <= PTY_SLAVE_MAJOR_LAST ? STDIO_PTY : STDIO_OTHER;
	}
	case S_IFSOCK: {
		struct socket *sock = BPF_CORE_READ(f, private_data);

		return BPF_CORE_READ(sock, sk, __sk_common.skc_family) == AF_UNIX ? STDIO_UNIX : STDIO_OTHER;
	}
	}
	return STDIO_OTHER;
}

/* The identity of the pipe or fifo on the current task's descriptor fd,
 * 0 when it is none: its device and inode number, not the inode's
 * address, which a new pipe can get as soon as an old one is freed (and
 * would meet the old one's stale map entries). */
static __always_inline __u64 fd_pipe(int fd)
{
	struct file *f = current_fd(fd);
	struct inode *inode = f ? BPF_CORE_READ(f, f_inode) : 0;

	/* the mode alone: file_kind's device read tells ptys apart */
	if (!inode || (BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFIFO)
		return 0;
	__u64 dev = BPF_CORE_READ(inode, i_sb, s_dev);
	__u64 ino = BPF_CORE_READ(inode, i_ino);

	return (dev << 32) ^ ino;
}

/* argv scanning state, advanced one byte per bpf_loop iteration. */
enum argv_flag {
	ARGV_COMMAND = 1 << 0,		/* -c: the commands are an argument */
	ARGV_INTERACTIVE = 1 << 1,	/* -i or -s */
	ARGV_OPERAND = 1 << 2,		/* a script file */
	ARGV_ARG_START = 1 << 3,	/* the next byte starts an argument */
	ARGV_SHORT = 1 << 4,		/* in a -xyz option */
	ARGV_SEEN_ARG0 = 1 << 5,	/* past argv[0] */
};

static long scan_argv_byte(__u32 i, void *unused)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 1;
	struct argv_scan *st = &s->x.scan;

	if (i >= st->len)
		return 1;
	char c = s->x.argv[i & (ARGS_LEN - 1)];
	__u32 f = st->flags;

	if (!c) {
		st->flags = (f & ~ARGV_SHORT) | ARGV_ARG_START | ARGV_SEEN_ARG0;
		return 0;
	}
	if (!(f & ARGV_SEEN_ARG0))
		return 0;
	if (f & ARGV_ARG_START) {
		f &= ~ARGV_ARG_START;
		if (c != '-') {
			st->flags = f | ARGV_OPERAND;
			return 1; /* a script, or -c's command */
		}
		st->flags = f | ARGV_SHORT;
		return 0;
	}
	if (!(f & ARGV_SHORT))
		return 0;
	if (c == '-')
		f &= ~ARGV_SHORT; /* --login, --norc: no letters to read */
	else if (c == 'c')
		f |= ARGV_COMMAND;
	else if (c == 'i' || c == 's')
		f |= ARGV_INTERACTIVE;
	st->flags = f;
	return 0;
}

/* Whether the shell just exec'd reads its commands from stdin: no -c and
 * no script operand, or -i / -s. Reads argv from the new image's memory,
 * so only at sched_process_exec. */
static __always_inline bool reads_commands(struct scratch *s)
{
	int len = read_current_argv(s->x.argv, ARGS_LEN);

	if (len < 0)
		return false;
	s->x.scan.len = len;
	s->x.scan.flags = 0;
	bpf_loop(ARGS_LEN, scan_argv_byte, 0, 0);
	__u32 flags = s->x.scan.flags;

	if (flags & ARGV_COMMAND)
		return false;
	return (flags & ARGV_INTERACTIVE) || !(flags & ARGV_OPERAND);
}

#define READER_FDS 256		/* descriptors of a relay peer looked at */
#ifndef FMODE_READ
#define FMODE_READ 0x1
#endif

static long reader_step(__u32 i, void *unused)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 1;
	struct reader_scan *r = &s->x.reader;

	if (i >= r->max)
		return 1;
	struct file **fds = (struct file **)r->fds;
	struct file *f = 0;

	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[i & (READER_FDS - 1)]) || !f)
		return 0;
	if ((__u64)BPF_CORE_READ(f, f_inode) == r->inode && (BPF_CORE_READ(f, f_mode) & FMODE_READ)) {
		r->found = 1;
		return 1;
	}
	return 0;
}

/* Whether the shell's output comes back to anc: its stdout (out) is no
 * pipe or fifo (a pty, a unix socket: a relay's), or anc holds the pipe's
 * read end among its first READER_FDS descriptors. A shell whose output
 * goes elsewhere — the container's own stdout, inherited — is fed a
 * script (curl | sh run by a fetcher, a here-doc while the caller holds
 * a socket), not relayed. */
static __always_inline bool output_reaches(struct task_struct *anc, struct file *out)
{
	struct scratch *s = get_scratch();

	if (!s || file_kind(out) != STDIO_PIPE)
		return true;
	struct reader_scan *r = &s->x.reader;

	r->fds = (__u64)BPF_CORE_READ(anc, files, fdt, fd);
	r->max = BPF_CORE_READ(anc, files, fdt, max_fds);
	r->inode = (__u64)BPF_CORE_READ(out, f_inode);
	r->found = 0;
	bpf_loop(READER_FDS, reader_step, 0, 0);
	return r->found;
}

#define APPLET_SCAN 32	/* bytes of argv[0] looked at for a busybox applet's name */

/* One byte of argv[0] (bpf_loop): the base name starts after its last
 * slash (scan.base). */
static long applet_step(__u32 i, void *unused)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 1;
	char c = s->x.argv[i & (ARGS_LEN - 1)];

	if (!c)
		return 1;
	if (c == '/')
		s->x.scan.base = i + 1;
	return 0;
}

/* A busybox that runs an applet by exec'ing itself (/proc/self/exe or
 * /bin/busybox, as ash does for the commands of a pipeline) is told the
 * applet by argv[0] only: q->comm becomes argv[0]'s base name (read by
 * reads_commands into s->x.argv), so the relay selectors' shell names
 * see "sh" rather than "exe" or "busybox". */
static __always_inline void busybox_applet_name(struct scratch *s)
{
	struct query *q = &s->d.q;
	__u64 name = 0;

	__builtin_memcpy(&name, q->binary, sizeof(name));
	if (name != 0x00786f6279737562ULL) /* "busybox\0", little-endian */
		return;
	s->x.scan.base = 0;
	bpf_loop(APPLET_SCAN, applet_step, 0, 0);
	__u32 base = s->x.scan.base;

	bpf_probe_read_kernel_str(q->comm, sizeof(q->comm), &s->x.argv[base & (ARGS_LEN - 1)]);
}

/* The network peer of a shell whose stdio can be relayed: an ancestor that
 * connected and gets the shell's output back (output_reaches), or a
 * connected process reading its stdout or stderr. Sets q->relay and
 * q->peer. */
static __always_inline void relay_peer(struct query *q, struct task_struct *task, __u64 out1, __u64 out2)
{
	struct task_struct *anc = BPF_CORE_READ(task, real_parent);
	struct file *out = current_fd(1);

	for (int i = 0; i < RELAY_ANCESTORS; i++) {
		__u32 tgid = BPF_CORE_READ(anc, tgid);

		if (tgid <= 1)
			break;
		if (bpf_map_lookup_elem(&net_procs, &tgid) && output_reaches(anc, out)) {
			q->relay = RELAY_PARENT;
			q->peer = tgid;
			return;
		}
		anc = BPF_CORE_READ(anc, real_parent);
	}
	__u32 *tgid = out1 ? bpf_map_lookup_elem(&net_pipes, &out1) : 0;

	if (!tgid && out2)
		tgid = bpf_map_lookup_elem(&net_pipes, &out2);
	if (tgid) {
		q->relay = RELAY_PIPE;
		q->peer = *tgid;
	}
}

/* Remembers the shell of the decision (the current process, just exec'd)
 * under its parent, when its output reaches the parent, and the pipes on
 * its stdout and stderr. */
static __always_inline void remember_shell(struct decision *d, __u64 out1, __u64 out2)
{
	struct pending_shell ps = { .tgid = bpf_get_current_pid_tgid() >> 32, .ppid = d->q.ppid,
				    .profile = d->w.profile, .selector = d->first };
	__u32 ppid = d->q.ppid;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	__builtin_memcpy(ps.comm, d->q.comm, sizeof(ps.comm));
	__builtin_memcpy(ps.binary, d->q.binary, sizeof(ps.binary));
	if (output_reaches(BPF_CORE_READ(task, real_parent), current_fd(1)))
		bpf_map_update_elem(&shell_parents, &ppid, &ps, BPF_ANY);
	if (out1)
		bpf_map_update_elem(&shell_pipes, &out1, &ps, BPF_ANY);
	if (out2)
		bpf_map_update_elem(&shell_pipes, &out2, &ps, BPF_ANY);
}

/* The exec side, at sched_process_exec of file called as filename, for a
 * workload that looks for relays: a shell whose stdin and stdout are
 * pipes, fifos, ptys or unix sockets and that reads its commands from
 * stdin is decided at POINT_RELAY when its network peer is known (the
 * caller carries the verdict out), otherwise remembered until the peer
 * connects. Returns 1 when there is a verdict to carry out. A global
 * function, checked once. */
__noinline int relay_exec_check(__u64 file, __u64 filename)
{
	struct scratch *s = get_scratch();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	if (!s)
		return 0;
	if (file_kind(current_fd(0)) == STDIO_OTHER || file_kind(current_fd(1)) == STDIO_OTHER)
		return 0;
	if (!reads_commands(s))
		return 0;
	exec_query(file, filename);
	busybox_applet_name(s);
	read_args(s);
	struct decision *d = &s->d;
	__u64 out1 = fd_pipe(1), out2 = fd_pipe(2);

	d->q.point = POINT_RELAY;
	relay_peer(&d->q, task, out1, out2);
	if (!d->q.relay)
		d->q.relay = RELAY_PENDING; /* the selectors only match */
	decide();
	if (!(d->q.relay & RELAY_PENDING))
		return 1;
	if (d->first >= 0 && d->has_workload)
		remember_shell(d, out1, out2);
	return 0;
}

/* The connect side, after the connect's own decision (its query and
 * workload are in scratch): the caller becomes a network peer; if it is
 * the peer of a pending shell, the shell's relay selector acts now, into
 * the connect's verdict. The connect is refused; the shell is killed by
 * the agent (the caller is another process). A global function, checked
 * once. */
__noinline int relay_connect(void)
{
	struct scratch *s = get_scratch();

	if (!s)
		return 0;
	struct decision *d = &s->d;

	if (!d->has_workload || !(d->w.flags & WORKLOAD_RELAY))
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 in = fd_pipe(0);
	__u8 kind = RELAY_PARENT, dk = dialled_kind(d->q.sock_type);
	__u8 *dialled = bpf_map_lookup_elem(&net_procs, &tgid);

	/* Lookups first: an LRU update takes its lock, most connects repeat. */
	if (!dialled || !(*dialled & dk)) {
		__u8 v = (dialled ? *dialled : 0) | dk;

		bpf_map_update_elem(&net_procs, &tgid, &v, BPF_ANY);
	}
	if (in) {
		__u32 *holder = bpf_map_lookup_elem(&net_pipes, &in);

		if (!holder || *holder != tgid)
			bpf_map_update_elem(&net_pipes, &in, &tgid, BPF_ANY);
	}
	struct pending_shell *ps = bpf_map_lookup_elem(&shell_parents, &tgid);

	if (!ps && in) {
		ps = bpf_map_lookup_elem(&shell_pipes, &in);
		kind = RELAY_PIPE;
	}
	if (!ps)
		return 0;
	__u32 shell = ps->tgid, idx = ps->selector;

	if (ps->profile != d->w.profile || !bpf_map_lookup_elem(&procs, &shell))
		return 0; /* the shell is gone, or its workload changed profile */
	__builtin_memset(&d->q, 0, sizeof(d->q));
	d->q.point = POINT_RELAY;
	d->q.relay = kind | RELAY_AT_CONNECT;
	d->q.peer = tgid;
	d->q.ppid = ps->ppid;
	d->q.subject = shell;
	__builtin_memcpy(d->q.comm, ps->comm, sizeof(d->q.comm));
	__builtin_memcpy(d->q.binary, ps->binary, sizeof(d->q.binary));
	d->key.profile = ps->profile;
	d->key.point = POINT_RELAY;
	/* Once: the next connect of the same peer is a new question. */
	if (kind == RELAY_PARENT)
		bpf_map_delete_elem(&shell_parents, &tgid);
	else
		bpf_map_delete_elem(&shell_pipes, &in);
	struct point_rules *r = bpf_map_lookup_elem(&rules, &d->key);

	if (!r || idx >= r->count || idx >= MAX_SELECTORS)
		return 0;
	barrier_var(idx);
	idx &= MAX_SELECTORS - 1;
	if ((d->w.disabled[POINT_RELAY & 15] >> idx) & 1)
		return 0;
	d->caps = CAN_DENY;
	apply_selector(idx);
	return 1;
}

/* Forgets a process that exits; few have records. */
static __always_inline void relay_exit(__u32 tgid)
{
	forget(&net_procs, &tgid);
	forget(&shell_parents, &tgid);
}

#endif
