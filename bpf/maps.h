/* SPDX-License-Identifier: GPL-2.0 */
/* Every map of the programs, and the small accessors of each. All but
 * scratch are the agent's state: written from compiled profiles and
 * registrations, or kept by the programs (tracked processes, sockets,
 * relays), pinned so that they outlive the agent. scratch is per program
 * run, never pinned. */
#ifndef OCIGATE_MAPS_H
#define OCIGATE_MAPS_H

#include "types.h"

/* The current task as a typed (BTF) pointer: its fields, and those of
 * what it points to, are read by plain loads (which the JIT guards
 * against faults), where BPF_CORE_READ makes a bpf_probe_read_kernel
 * call per field: measured 1 ns a field against 33 on 6.18 (a helper
 * call, and the kernel's returns are slow under the SRSO mitigation).
 * The per-fork, per-exec and per-decision paths read a few dozen fields
 * of current and its parents this way. A pointer read from it is typed
 * too; an array element at a variable index is not reached so, and
 * such reads stay probe reads (docs/bpf.md). */
static __always_inline struct task_struct *current_task(void)
{
	return bpf_get_current_task_btf();
}

/* The start of task's thread group (boot-based ns): with the tgid, the
 * process's identity. exec keeps it (de_thread copies the leader's).
 * task is typed (current_task, or a pointer read from it). */
static __always_inline __u64 task_start(struct task_struct *task)
{
	return task->group_leader->start_boottime;
}

/* The parent of a process into a record: its real parent's tgid, start
 * and comm. The agent names a parent gone before it reads the record by
 * them (the runtime that started a short-lived container's first
 * process), and makes a child that has not exec'd from its cached parent
 * (forks send no record), which it must find without /proc. task is
 * typed. */
static __always_inline void record_parent(struct event *e, struct task_struct *task)
{
	struct task_struct *parent = task->real_parent;

	e->ppid = parent->tgid;
	e->parent_start_time = task_start(parent);
	__builtin_memcpy(e->ancestor_comm[0], parent->comm, sizeof(e->ancestor_comm[0]));
}

/* Reads the start of the current process's argv (NUL-separated, at most
 * room - 1 bytes; room a power of two) into dst: at sched_process_exec,
 * the new image's. Returns the bytes read, -1 when they cannot be. */
static __always_inline int read_current_argv(void *dst, __u32 room)
{
	struct mm_struct *mm = current_task()->mm;
	unsigned long start = mm->arg_start;
	unsigned long end = mm->arg_end;
	__u32 len = end > start ? end - start : 0;

	if (len > room - 1)
		len = room - 1;
	barrier_var(len); /* keep the mask the verifier bounds the size by */
	if (bpf_probe_read_user(dst, len & (room - 1), (const void *)start))
		return -1;
	return len;
}

/* cgroup v2 id -> workload: which cgroups are enforced and how. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct workload);
} workloads SEC(".maps");

/* Stack traces the device-layer programs take for Post kernelStackTrace
 * and userStackTrace, by id; the agent reads each when it reads the
 * event. A bucket is reused by the next stack that hashes to it. */
struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1024);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, STACK_DEPTH * sizeof(__u64));
} stack_traces SEC(".maps");

/* (profile, point) -> ordered selectors. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct rule_key);
	__type(value, struct point_rules);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct addr_key);
	__type(value, __u8);
} addr_sets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, struct port_bitmap);
} port_sets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct name_key);
	__type(value, __u8);
} name_sets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct bin_key);
	__type(value, __u8);
} bin_sets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct path_key);
	__type(value, __u8);
} path_prefixes SEC(".maps");

/* tgid -> the binary it runs, kept by exec tracking. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct proc);
} procs SEC(".maps");

/* TrackSock: socket cookie -> tgid of the process that created it, for
 * sockets of workloads whose profile tracks them; removed on release. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u32);
} sock_owners SEC(".maps");

/* 1 once a socket has been tracked (sock_owners): until then releases
 * skip the untrack, whose lookup of a new cookie in the table's cold
 * buckets cost ~200 ns for every socket of the host. Set by track_sock,
 * and by the agent when it takes over a sock_owners that holds entries
 * (a build without this flag tracked them); never cleared. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} socks_tracked SEC(".maps");

/* Relays and dialled stdio: processes of relay-watching workloads that
 * connected a socket, and which kinds (enum dialled_kind in exec.h). */
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
	__type(key, __u64);
	__type(value, __u32);
} net_pipes SEC(".maps");

/* Relayed shells whose peer has not connected yet, by their parent's tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct pending_shell);
} shell_parents SEC(".maps");

/* The same, by the pipe or fifo on their stdout or stderr (fd_pipe). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct pending_shell);
} shell_pipes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Per-CPU scratch of one program run (types.h); never pinned. Slot 1
 * is a softirq program's (accept.h): it can interrupt a program in
 * process context on the same CPU, whose slot 0 must survive. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* Per-CPU: 1 while a softirq program (accept.h) uses scratch slot 1. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} scratch_level SEC(".maps");

/* The scratch of this run: the slot scratch_level names. The key is the
 * level in map memory itself, a value the verifier does not track: a key
 * computed here (0 or 1) would be a constant it tracks per path, and
 * older verifiers (6.1) then walk everything after it twice. */
static __always_inline struct scratch *get_scratch(void)
{
	__u32 zero = 0;
	__u32 *level = bpf_map_lookup_elem(&scratch_level, &zero);

	return bpf_map_lookup_elem(&scratch, level ? level : &zero);
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline void count_outcome(__u8 point, __u32 outcome)
{
	count(COUNTER_POINT_BASE + (__u32)(point & 15) * 4 + (outcome & 3));
}

/* Whether the agent's reader sleeps until woken (1) rather than polling
 * (0): it sets this after a while with no records, and clears it at the
 * first record it reads. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} reader_sleeps SEC(".maps");

/* Deletes key from a hash map if it is there. Where most keys asked for
 * are absent (the exits and socket releases of every host process), a
 * lookup first is cheaper: it takes no lock, and the delete of a missing
 * key takes the bucket's. */
static __always_inline void forget(void *map, const void *key)
{
	if (bpf_map_lookup_elem(map, key))
		bpf_map_delete_elem(map, key);
}

#define WAKEUP_BYTES (512 << 10)	/* records waiting that wake the agent */
/* A record's room in the ring: its header and the record, 8-aligned. */
#define RECORD_ROOM ((sizeof(struct event) + 8 + 7) & ~7UL)

/* Submits a record. The agent is woken when WAKEUP_BYTES wait, at once
 * when it has to act (urgent: a kill or signal left to it), or when its
 * reader sleeps (a quiet node: no polling); other records wait for its
 * next read, at most its longest poll interval (it polls while records
 * come: record.MaxPollInterval). At high rates it reads in batches
 * instead of being woken per record, and the programs do not pay for a
 * wakeup per record. WAKEUP_BYTES is an eighth of the ring: a stream of
 * a few thousand records a second (a build's fork+exec+exit) wakes the
 * reader at its poll interval, not every few tens of milliseconds, and
 * a burst still leaves seven eighths of the ring to fill while the
 * reader wakes. The flag is read after the record was reserved: a
 * reader that set it before it waited either sees the reserved record
 * when it starts waiting or is woken.
 *
 * Beyond WAKEUP_BYTES only the records that land the waiting bytes in
 * the first WAKE_WINDOW of a WAKEUP_BYTES step wake it: a reader that
 * is behind is reading already, and a wakeup per record (an IRQ-work
 * interrupt on the producer's CPU, then the reader's wait queue) cost
 * the producers more than the record itself. The window is a few
 * records wide because the waiting bytes are read after the record is
 * filled: producers on other CPUs that reserve in between move them on.
 * With a window of one record's room, two CPUs making 500 000 records
 * a second stepped over one step in five, and the reader woke with
 * 1-3 MiB waiting instead of 512 KiB (19% of its wakeups); with four,
 * under 1%. A step still stepped over is made up at the next one, or
 * by the poll. */
#define WAKE_WINDOW (4 * RECORD_ROOM)
static __always_inline void submit(void *e, bool urgent)
{
	__u64 flags = BPF_RB_NO_WAKEUP;
	__u32 zero = 0;
	__u32 *sleeps = bpf_map_lookup_elem(&reader_sleeps, &zero);
	__u64 avail = urgent ? 0 : bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	if (urgent || (sleeps && *sleeps) || (avail >= WAKEUP_BYTES && (avail & (WAKEUP_BYTES - 1)) < WAKE_WINDOW))
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* A TCP listener of a workload, by its network namespace and port: who
 * listens, for the connections the kernel accepts for it in softirq. */
struct tcp_listener_key {
	__u32 netns;		/* the network namespace's inode */
	__u16 port;		/* local port, host order */
	__u16 pad;
};

struct tcp_listener {
	__u32 tgid;
	__u32 uid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct tcp_listener_key);
	__type(value, struct tcp_listener);
} listeners SEC(".maps");

/* The tgid that created the socket with this cookie (TrackSock), or 0. */
static __always_inline __u32 sock_owner(__u64 cookie)
{
	__u32 *owner;

	if (!cookie)
		return 0;
	owner = bpf_map_lookup_elem(&sock_owners, &cookie);
	return owner ? *owner : 0;
}

#endif
