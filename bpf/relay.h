/* SPDX-License-Identifier: GPL-2.0 */
/* Relayed shells: a shell that reads its commands from a pipe, fifo, pty or
 * unix socket while a process holding a network socket relays between the
 * two — its parent (socat exec:sh,pty; ncat -e; python pty.spawn) or the
 * reader of its stdout (mkfifo + nc; openssl s_client in a pipeline).
 * Whichever comes second recognises the pair: the shell's exec (the peer
 * connected before) or the peer's connect (the shell started first, and
 * is remembered as pending). */
#ifndef OCIGATE_RELAY_H
#define OCIGATE_RELAY_H

#include "task.h"

#define RELAY_ANCESTORS 2	/* parent and grandparent */
#define ARGS_LEN 256		/* argv bytes read to tell a shell's input */
#define PTY_SLAVE_MAJOR_FIRST 136	/* UNIX98 pty slaves: 136-143 */
#define PTY_SLAVE_MAJOR_LAST 143

/* What a standard descriptor is, as far as relaying goes. */
enum stdio_kind {
	STDIO_OTHER = 0,
	STDIO_PIPE = 1,		/* pipe or fifo */
	STDIO_PTY = 2,
	STDIO_UNIX = 3,		/* unix socket */
};

/* Processes of relay-watching workloads that connected a socket. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);	/* tgid */
	__type(value, __u8);
} net_procs SEC(".maps");

/* The pipe or fifo on stdin of a process that connected: its identity
 * (fd_pipe) -> tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);	/* the pipe's identity (fd_pipe) */
	__type(value, __u32);
} net_pipes SEC(".maps");

/* Per-CPU scratch: argv at exec. */
struct relay_scratch {
	char buf[ARGS_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct relay_scratch);
} relay_scratch SEC(".maps");

static __always_inline struct file *task_fd(struct task_struct *task, int fd)
{
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *f = 0;

	if (fd < 0 || fd >= max)
		return 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return 0;
	return f;
}

static __always_inline __u8 file_kind(struct file *f)
{
	if (!f)
		return STDIO_OTHER;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);

	switch (mode & S_IFMT) {
	case S_IFIFO:
		return STDIO_PIPE;
	case S_IFCHR: {
		__u32 major = BPF_CORE_READ(f, f_inode, i_rdev) >> 20;

		return major >= PTY_SLAVE_MAJOR_FIRST && major <= PTY_SLAVE_MAJOR_LAST ? STDIO_PTY : STDIO_OTHER;
	}
	case S_IFSOCK: {
		struct socket *sock = BPF_CORE_READ(f, private_data);

		return BPF_CORE_READ(sock, sk, __sk_common.skc_family) == AF_UNIX ? STDIO_UNIX : STDIO_OTHER;
	}
	}
	return STDIO_OTHER;
}

/* The identity of the pipe or fifo on task's descriptor fd, 0 when it is
 * none: its device and inode number, not the inode's address, which a
 * new pipe can get as soon as an old one is freed (and would meet the
 * old one's stale map entries). */
static __always_inline __u64 fd_pipe(struct task_struct *task, int fd)
{
	struct file *f = task_fd(task, fd);

	if (file_kind(f) != STDIO_PIPE)
		return 0;
	__u64 dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	__u64 ino = BPF_CORE_READ(f, f_inode, i_ino);

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

struct argv_scan {
	__u32 len;
	__u32 flags;
};

static long scan_argv_byte(__u32 i, void *data)
{
	struct argv_scan *st = data;
	__u32 zero = 0;
	struct relay_scratch *as = bpf_map_lookup_elem(&relay_scratch, &zero);

	if (!as || i >= st->len)
		return 1;
	char c = as->buf[i & (ARGS_LEN - 1)];
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
static __always_inline bool reads_commands(struct task_struct *task)
{
	__u32 zero = 0;
	struct relay_scratch *as = bpf_map_lookup_elem(&relay_scratch, &zero);
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	struct argv_scan st = {};

	if (!as)
		return false;
	st.len = end > start ? end - start : 0;
	if (st.len > ARGS_LEN - 1)
		st.len = ARGS_LEN - 1;
	if (bpf_probe_read_user(as->buf, st.len & (ARGS_LEN - 1), (const void *)start))
		return false;
	bpf_loop(ARGS_LEN, scan_argv_byte, &st, 0);
	if (st.flags & ARGV_COMMAND)
		return false;
	return (st.flags & ARGV_INTERACTIVE) || !(st.flags & ARGV_OPERAND);
}

/* The network peer of a shell whose stdio can be relayed: an ancestor that
 * connected, or a connected process reading its stdout or stderr. Sets
 * q->relay and q->peer. */
static __always_inline void relay_peer(struct query *q, struct task_struct *task, const __u64 out_pipes[2])
{
	struct task_struct *anc = BPF_CORE_READ(task, real_parent);

	for (int i = 0; i < RELAY_ANCESTORS; i++) {
		__u32 tgid = BPF_CORE_READ(anc, tgid);

		if (tgid <= 1)
			break;
		if (bpf_map_lookup_elem(&net_procs, &tgid)) {
			q->relay = RELAY_PARENT;
			q->peer = tgid;
			return;
		}
		anc = BPF_CORE_READ(anc, real_parent);
	}
	for (int i = 0; i < 2; i++) {
		__u32 *tgid;

		__u64 pipe = out_pipes[i];

		if (!pipe)
			continue;
		tgid = bpf_map_lookup_elem(&net_pipes, &pipe);
		if (tgid) {
			q->relay = RELAY_PIPE;
			q->peer = *tgid;
			return;
		}
	}
}

/* The connect side: the caller becomes a network peer; if it is the peer
 * of a pending shell, the shell's relay selector acts now. The connect is
 * refused; the shell is killed by the agent (the caller is another
 * process). q is the connect's query, decided already: it is reused for
 * the shell's, the stack has no room for a second (nor for the
 * decision's workload: it is found again, which costs lookups but no
 * frame space, which the selector callback's frame adds to). */
static __always_inline void relay_connect(struct query *q, struct verdict *v, __u8 enforcer)
{
	__u64 workload_cgroup;
	struct workload *w = current_workload(&workload_cgroup);

	if (!w || !(w->flags & WORKLOAD_RELAY))
		return;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 in = fd_pipe(task, 0);
	__u8 one = 1, kind = RELAY_PARENT;

	/* Lookups first: an LRU update takes its lock, most connects repeat. */
	if (!bpf_map_lookup_elem(&net_procs, &tgid))
		bpf_map_update_elem(&net_procs, &tgid, &one, BPF_ANY);
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
		return;
	__builtin_memset(q, 0, sizeof(*q));
	q->point = POINT_RELAY;
	q->relay = kind | RELAY_AT_CONNECT;
	q->peer = tgid;
	q->ppid = ps->ppid;
	q->subject = ps->tgid;
	q->proc = bpf_map_lookup_elem(&procs, &ps->tgid);
	if (!q->proc || ps->profile != w->profile)
		return; /* the shell is gone, or its workload changed profile */
	__builtin_memcpy(q->comm, ps->comm, sizeof(q->comm));
	__builtin_memcpy(q->binary, ps->binary, sizeof(q->binary));
	struct rule_key key = { .profile = ps->profile, .point = POINT_RELAY };
	struct point_rules *r = bpf_map_lookup_elem(&rules, &key);
	__u32 idx = ps->selector;

	if (!r || idx >= r->count || idx >= MAX_SELECTORS)
		return;
	barrier_var(idx);
	idx &= MAX_SELECTORS - 1;
	if ((w->disabled[POINT_RELAY & 15] >> idx) & 1)
		return;
	/* Once: the next connect of the same peer is a new question. */
	if (kind == RELAY_PARENT)
		bpf_map_delete_elem(&shell_parents, &tgid);
	else
		bpf_map_delete_elem(&shell_pipes, &in);
	apply(q, &r->sel[idx], idx, w, workload_cgroup, enforcer, CAN_DENY, v);
}

/* Forgets a process that exits. */
static __always_inline void relay_exit(__u32 tgid)
{
	bpf_map_delete_elem(&net_procs, &tgid);
	bpf_map_delete_elem(&shell_parents, &tgid);
}

#endif
