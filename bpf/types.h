/* SPDX-License-Identifier: GPL-2.0 */
/* The programs' own working types: what a decision is about (query), what
 * it decided (verdict), and the per-CPU scratch that holds both while the
 * global functions of verdict.h, match.h and exec.h work on them. None of
 * these is seen by the agent (common.h holds what is). */
#ifndef OCIGATE_TYPES_H
#define OCIGATE_TYPES_H

#include "common.h"

#define DPATH_ROOM 256	/* bytes for a resolved path: [0, DPATH_ROOM) of the buffer */
#define DPATH_DEPTH 40	/* path components and mount crossings walked */
#define ARGS_LEN 256	/* argv bytes read to tell a shell's input */

/* What is being checked: filled by each program from its own context.
 * Plain values only (no pointers): it lives in map memory, where the
 * verifier tracks nothing, and the global functions read it from there. */
struct query {
	__u8 point;
	__u8 family;
	__u8 protocol;
	__u8 sock_type;
	__u8 state;
	__u8 has_daddr;
	__u8 has_saddr;
	__u8 stdio_inet;
	__u16 dport;
	__u16 sport;
	__u32 ppid;
	__u8 daddr[16];
	__u8 saddr[16];
	char binary[NAME_LEN];	/* exec: the executed file's own name */
	char comm[16];		/* exec: the name it runs as */
	__u64 cookie;		/* the socket's cookie, 0: none or not generated */
	__s32 old_fd;		/* dup */
	__s32 new_fd;
	__u8 fileless;		/* exec: the file has no link on disk */
	__u8 variant;		/* which call of a shared point (dup: 2 or 3) */
	__u8 relay;		/* relay: enum relay, 0: not relayed */
	__u8 exec_proc;		/* the binary is the one being exec'd (scratch), not the tracked one */
	__u32 subject;		/* relay at connect: the shell (the event's process), 0: current */
	__u32 peer;		/* relay: the process that holds the network socket */
	__u32 args_len;		/* exec: argv bytes in the exec scratch, 0: none */
	__u64 sk_cgroup;	/* accept (softirq): the socket's registered cgroup, whose
				 * workload decides; 0: the current task's */
	__u32 uid;		/* accept: the listener's uid (current is not the workload's) */
	__u32 drop_reason;	/* drop: the kernel's enum skb_drop_reason */
	__s32 kernel_stack;	/* stack_traces id + 1, 0: none */
	__s32 user_stack;
	__u32 pad_q;
};

/* Decision of a checked operation. */
struct verdict {
	__u32 deny;
	__u32 kill;
	__s32 err;	/* positive errno when deny */
	__s32 signal;	/* to send to the caller, 0: none */
	__s32 retval;	/* when deny: a positive value to return instead, where the program can (fmod_ret) */
	__u32 pad;
};

/* One decision in progress: the query, the caller's workload, the verdict
 * being built, and the binary's lookup keys. */
struct decision {
	struct query q;
	struct verdict v;
	struct workload w;	/* the caller's workload, when has_workload */
	__u64 workload_cgroup;
	struct rule_key key;	/* the rules being evaluated */
	__u64 bin_hash;		/* the binary's path hash, when has_bin */
	__u64 bin_alias;	/* and the path it was called by, 0: none */
	__u32 decided;		/* groups that have matched */
	__s32 first;		/* the first matching selector, -1: none */
	__u32 caps;		/* enum capability: what the program can carry out */
	__u8 enforcer;
	__u8 family;		/* effective family (v4-mapped v6 as v4) */
	__u8 has_workload;
	__u8 has_bin;
	__u8 has_path;		/* the path keys below are filled */
	__u8 has_alias_prefix;	/* alias_prefix is filled */
	__u8 bin_ready;		/* prepare_bin_keys has run for this decision */
	__u8 daddr_in;		/* the destination is in daddr_set */
	__u32 daddr_set;	/* the address set daddr_in answers for, 0: none yet */
	__u64 path_hash;	/* the executed file's path hash, when has_path */
	__u64 path_alias;	/* and the path exec was given, 0: none */
	struct path_key prefix;	/* matchBinaries Prefix key of the binary's path */
	struct path_key postfix;	/* and Postfix (the path reversed) */
	struct path_key path_prefix;	/* the executed file's path, for MATCH_PATH_PREFIX */
	struct path_key path_postfix;	/* reversed, for MATCH_PATH_POSTFIX */
	struct path_key alias_prefix;	/* the path exec was given, for MATCH_PATH_PREFIX */
	__u64 cred_caps[3];	/* the caller's effective, inheritable, permitted capabilities, when has_caps */
	__u32 userns;		/* and its user namespace's inode */
	__u32 npids;		/* pids and nspids hold the caller and npids - 1 ancestors, when has_pids */
	__u32 pids[PID_SLOTS];
	__u32 nspids[PID_SLOTS];	/* their pids in their own pid namespace, 0 in the host's */
	__u32 pid_sel;		/* match_pids: the selector, */
	__u32 pid_in;		/* and whether a pid of the walk is one of its */
	__u8 has_caps;
	__u8 has_pids;
	__u8 pad2[6];
};

/* The path walk of dpath.h, one component per bpf_loop iteration. Kernel
 * pointers are plain numbers here, compared and read through with
 * bpf_probe_read_kernel, never dereferenced. */
struct path_walk {
	__u64 dentry;
	__u64 mnt;		/* struct vfsmount * */
	__u64 root_dentry;
	__u64 root_mnt;
	__s32 off;		/* the path starts at buf[off] */
	__u32 done;		/* 1: at the root; 2: failed */
};

/* FNV-1a (64 bit) of a string, its length and the offset of its base name. */
struct hash_state {
	__u64 hash;
	__u32 len;
	__u32 base;
	__u32 alias;	/* 0: the exec path, 1: the alias */
	__u32 pad;
};

/* argv scanning state of relay.h, one byte per bpf_loop iteration. */
struct argv_scan {
	__u32 len;
	__u32 flags;
	__u32 base;	/* busybox_applet_name: where argv[0]'s base name starts */
	__u32 pad;
};

/* The scan of a relay peer's descriptors for the read end of a shell's
 * output pipe (relay.h), one descriptor per bpf_loop iteration. */
struct reader_scan {
	__u64 fds;	/* the peer's descriptor array (struct file **) */
	__u64 inode;	/* the pipe's inode */
	__u32 max;	/* the peer's max_fds */
	__u32 found;
};

/* Which exec resolve_exec last resolved into scratch (dpath.h). */
struct resolved {
	__u64 pid_tgid;		/* the exec'ing task */
	__u64 exec_id;		/* its self_exec_id then */
	__u64 file;		/* struct file * */
	__u64 filename;		/* const char * */
	__u64 at;		/* bpf_ktime_get_ns() when resolved */
};

/* What exec tracking and the exec programs work on. */
struct exec_state {
	struct proc exec;		/* the executed file */
	struct proc caller;		/* the binary the exec's caller ran (matchBinaries at exec) */
	__u64 caller_bprm;		/* the exec (struct linux_binprm *) caller is of */
	__u32 caller_valid;		/* caller is known */
	__u32 caller_pad;
	char buf[2 * DPATH_ROOM];	/* the path being built; twice the room: masked reads stay in bounds */
	char alias[FULL_PATH_LEN];	/* the path the caller passed */
	__u32 alias_base;		/* offset of its base name */
	__u32 reverse_len;		/* reverse_byte's input */
	char args[ARGS_EV_LEN];		/* argv of the new image, for the event */
	char argv[ARGS_LEN];		/* argv of the new image, scanned by relay.h */
	struct path_walk walk;
	struct hash_state hash;
	struct argv_scan scan;
	struct reader_scan reader;
	struct resolved resolved;
};

/* Per-CPU scratch of one program run. Every loop callback keeps its state
 * here rather than on the stack: the verifier tracks stack values, and
 * since 6.16 it compares them exactly while a loop is open, so state on
 * the stack multiplies the states it walks; map memory it does not track. */
struct scratch {
	struct decision d;
	struct exec_state x;
};

/* A shell recognised at exec whose network peer has not connected yet. */
struct pending_shell {
	__u32 tgid;
	__u32 ppid;
	__u32 profile;
	__u32 selector;		/* the relay selector that would act */
	char comm[16];
	char binary[NAME_LEN];
};

#endif
