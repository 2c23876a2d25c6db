/* SPDX-License-Identifier: GPL-2.0 */
/* Relayed shells whose network peer has not connected yet: remembered by
 * the relay selector that would act on them (apply, at the relay point),
 * looked up when a process connects (relay_connect in relay.h). */
#ifndef OCIGATE_PENDING_H
#define OCIGATE_PENDING_H

/* A shell recognised at exec whose network peer has not connected yet. */
struct pending_shell {
	__u32 tgid;
	__u32 ppid;
	__u32 profile;
	__u32 selector;		/* the relay selector that would act */
	char comm[16];
	char binary[NAME_LEN];
};

/* Pending shells by the tgid of their parent. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct pending_shell);
} shell_parents SEC(".maps");

/* Pending shells by the pipe or fifo on their stdout or stderr. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);	/* the pipe's identity (fd_pipe) */
	__type(value, struct pending_shell);
} shell_pipes SEC(".maps");

/* Remembers the shell of q (the current process, just exec'd) under its
 * parent and the pipes on its stdout and stderr. */
static __always_inline void remember_shell(const struct query *q, const __u64 out_pipes[2], __u32 selector, __u32 profile)
{
	struct pending_shell ps = { .tgid = bpf_get_current_pid_tgid() >> 32, .ppid = q->ppid,
				    .profile = profile, .selector = selector };
	__u32 ppid = q->ppid;

	__builtin_memcpy(ps.comm, q->comm, sizeof(ps.comm));
	__builtin_memcpy(ps.binary, q->binary, sizeof(ps.binary));
	bpf_map_update_elem(&shell_parents, &ppid, &ps, BPF_ANY);
	for (int i = 0; i < 2; i++) {
		__u64 pipe = out_pipes[i];

		if (pipe)
			bpf_map_update_elem(&shell_pipes, &pipe, &ps, BPF_ANY);
	}
}

#endif
