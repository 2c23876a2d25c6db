/* SPDX-License-Identifier: GPL-2.0 */
/* Types shared between the BPF programs and Go (bpf/abi.go mirrors the
 * enums and flags; bpf2go generates the structs). */
#ifndef OCIGATE_COMMON_H
#define OCIGATE_COMMON_H

#define MAX_SELECTORS 16	/* per point and profile */
#define MAX_GROUPS 8		/* policies per point and profile */
#define MAX_CGROUP_DEPTH 16
#define NAME_LEN 32
#define PATH_LEN 128		/* the binary path carried in events */
#define FULL_PATH_LEN 256	/* paths matched by matchBinaries */
#define PREFIX_LEN 128		/* Prefix/Postfix values */
#define PORT_WORDS 1024		/* 65536 bits */
#define ARGS_EV_LEN 128		/* argv bytes carried in exec events */

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#define SIGKILL 9
#define EPERM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000
#define S_IFCHR 0020000
#define AF_UNIX 1

/* Enforcement points: where a rule applies. */
enum point {
	POINT_CONNECT = 0,
	POINT_SENDMSG = 1,
	POINT_BIND = 2,
	POINT_SOCK_CREATE = 3,
	POINT_EXEC = 4,
	POINT_LISTEN = 5,
	POINT_CLOSE = 6,
	POINT_DUP = 7,		/* dup2/dup3 of a file onto a descriptor */
	POINT_MEMFD = 8,	/* memfd_create: an anonymous file, fileless payloads */
	POINT_RELAY = 9,	/* a shell relayed to a network peer (exec or connect) */
	POINT_ACCEPT = 10,	/* a TCP connection the kernel accepts for a listener (softirq) */
	POINT_RECEIVE = 11,	/* a packet delivered to a workload's socket (softirq) */
	POINT_XMIT = 12,	/* a packet of a workload's socket leaving through a device */
	POINT_DROP = 13,	/* a packet of a workload's socket the kernel drops */
	POINT_MAX = 14,
};

/* What a matching selector does. */
enum action {
	ACTION_NONE = 0,
	ACTION_POST = 1,	/* report, allow */
	ACTION_DENY = 2,	/* refuse with errno (Override) */
	ACTION_SIGKILL = 3,	/* refuse where possible and kill the caller */
	ACTION_SIGNAL = 4,	/* report and send a signal */
};

/* Selector predicates; all set predicates must hold (AND). */
enum match_flag {
	MATCH_FAMILY = 1ULL << 0,
	MATCH_PROTOCOL = 1 << 1,
	MATCH_TYPE = 1 << 2,
	MATCH_STATE = 1 << 3,
	MATCH_DADDR = 1 << 4,
	MATCH_DADDR_NOT = 1 << 5,
	MATCH_SADDR = 1 << 6,
	MATCH_SADDR_NOT = 1 << 7,
	MATCH_DPORT = 1 << 8,
	MATCH_DPORT_NOT = 1 << 9,
	MATCH_SPORT = 1 << 10,
	MATCH_SPORT_NOT = 1 << 11,
	MATCH_BIN = 1 << 12,
	MATCH_BIN_NOT = 1 << 13,
	MATCH_BIN_PREFIX = 1 << 14,
	MATCH_BIN_PREFIX_NOT = 1 << 15,
	MATCH_BIN_POSTFIX = 1 << 16,
	MATCH_BIN_POSTFIX_NOT = 1 << 17,
	MATCH_NAME = 1 << 18,
	MATCH_NAME_NOT = 1 << 19,
	MATCH_STDIO_INET = 1 << 20,
	MATCH_NEWFD = 1 << 21,	/* dup: the new descriptor is in fds */
	MATCH_FILELESS = 1 << 22,	/* exec: the file has no link (memfd, deleted) */
	MATCH_VARIANT = 1 << 23,	/* which call of a shared point (dup2, dup3) */
	MATCH_RELAYED = 1 << 24,	/* relay: the shell's output reaches a network peer */
	/* exec: the file being exec'd (matchArgs on a linux_binprm, file,
	 * path or exec's filename), its own path or the one exec was given */
	MATCH_PATH = 1 << 25,
	MATCH_PATH_NOT = 1 << 26,
	MATCH_PATH_PREFIX = 1 << 27,
	MATCH_PATH_PREFIX_NOT = 1 << 28,
	MATCH_PATH_POSTFIX = 1 << 29,
	MATCH_PATH_POSTFIX_NOT = 1 << 30,
	/* matchCapabilities: the set caps_type of the caller holds any of caps */
	MATCH_CAPS = 1ULL << 31,
	MATCH_CAPS_NOT = 1ULL << 32,
	MATCH_CAPS_USERNS = 1ULL << 33,	/* isNamespaceCapability: only outside the host's user namespace */
	/* matchPIDs: the caller's pid (or, PID_FOLLOW, an ancestor's) is in pids */
	MATCH_PID = 1ULL << 34,
	MATCH_PID_NOT = 1ULL << 35,
	/* matchNamespaceChanges: a namespace of ns_changes differs from the exec's */
	MATCH_NS_CHANGES = 1ULL << 36,
	MATCH_NS_CHANGES_NOT = 1ULL << 37,
	/* exec: a stdio INET socket was dialled (connect) by the process, its
	 * parent or grandparent: a reverse connection, not an accepted one */
	MATCH_STDIO_DIALLED = 1ULL << 38,
	/* Post kernelStackTrace, userStackTrace: no predicate; in the rules'
	 * uses they ask the device-layer programs for the stacks */
	MATCH_KERNEL_STACK = 1ULL << 39,
	MATCH_USER_STACK = 1ULL << 40,
};

#define STACK_DEPTH 64		/* frames a stack trace keeps */

#define MAX_PIDS 4		/* values of a selector's matchPIDs */
#define PID_ANCESTORS 10	/* ancestors followForks looks at, as Tetragon */
#define PID_SLOTS 16		/* room for them: a power of two */
#define USER_NS_INIT_INO 0xEFFFFFFDU	/* the host's user namespace */

/* matchPIDs flags (selector pid_flags). */
enum pid_flag {
	PID_NS = 1 << 0,	/* isNamespacePID: pids in the process's pid namespace */
	PID_FOLLOW = 1 << 1,	/* followForks: the process or its ancestors */
};

#define MATCH_ANY_BIN (MATCH_BIN | MATCH_BIN_NOT | MATCH_BIN_PREFIX | MATCH_BIN_PREFIX_NOT | \
		       MATCH_BIN_POSTFIX | MATCH_BIN_POSTFIX_NOT)
#define MATCH_ANY_PATH (MATCH_PATH | MATCH_PATH_NOT | MATCH_PATH_PREFIX | MATCH_PATH_PREFIX_NOT | \
			MATCH_PATH_POSTFIX | MATCH_PATH_POSTFIX_NOT)

/* Selector flags. */
enum selector_flag {
	SELECTOR_NOPOST = 1 << 0,	/* act without an event */
	SELECTOR_MONITOR = 1 << 1,	/* never deny or kill (policy-mode: monitor) */
};

/* Workload flags. */
enum workload_flag {
	WORKLOAD_MONITOR = 1 << 0,	/* report what would be enforced */
	WORKLOAD_TRACK_SOCKETS = 1 << 1,	/* TrackSock: remember who created each socket */
	WORKLOAD_RELAY = 1 << 2,	/* the profile looks for relayed shells */
	WORKLOAD_NO_PROC_EVENTS = 1 << 3,	/* no exec, clone and exit records */
};

/* How the verdict was carried out. */
enum enforcer {
	ENFORCER_NONE = 0,
	ENFORCER_CGROUP_SOCK_ADDR = 1,
	ENFORCER_CGROUP_SOCK = 2,
	ENFORCER_TRACEPOINT_SIGKILL = 3,
	ENFORCER_LSM = 4,
	ENFORCER_FMOD_RET = 5,
	ENFORCER_CGROUP_SOCK_RELEASE = 6,
	ENFORCER_TRACEPOINT = 7,	/* reports, or kills: cannot refuse */
	ENFORCER_CGROUP_SKB = 8,	/* cgroup_skb/ingress: reports */
	ENFORCER_FENTRY = 9,	/* fentry on the kernel function itself: reports */
};

/* What a program can do with a verdict. */
enum capability {
	CAN_DENY = 1 << 0,	/* refuse the operation */
	CAN_KILL = 1 << 1,	/* bpf_send_signal(SIGKILL) to the caller */
	DENY_SUFFICES = 1 << 2,	/* refusing is the kill (exec: nothing runs) */
};

struct workload {
	__u32 profile;
	__u32 flags;
	__u32 disabled[16];	/* per point: selectors that cannot match this workload */
};

struct rule_key {
	__u32 profile;
	__u32 point;
};

struct selector {
	__u64 match;
	__u32 daddr_set;
	__u32 saddr_set;
	__u32 dport_set;	/* index into port_sets */
	__u32 sport_set;
	__u32 bin_set;
	__u32 prefix_set;
	__u32 postfix_set;
	__u32 name_set;
	__u32 path_set;		/* MATCH_PATH: the executed file's path hashes */
	__u32 path_prefix_set;	/* MATCH_PATH_PREFIX */
	__u32 path_postfix_set;	/* MATCH_PATH_POSTFIX */
	__u32 families;		/* bit per AF_* */
	__u32 types;		/* bit per SOCK_* */
	__u32 states;		/* bit per TCP_* state */
	__u32 fds;		/* bit per descriptor 0-31 (dup's new fd) */
	__u64 protocols[4];	/* bit per IPPROTO_* */
	__u64 caps;		/* MATCH_CAPS: capability bits */
	__u32 pids[MAX_PIDS];	/* MATCH_PID: the pids, npids of them */
	__s32 err;		/* errno for ACTION_DENY, positive */
	__s32 retval;		/* ACTION_DENY: a positive value the call returns instead (fmod_ret); 0: none */
	__u8 action;
	__u8 group;		/* the policy: first match per group decides */
	__u8 signal;		/* ACTION_SIGNAL, or with ACTION_DENY (NotifyEnforcer) */
	__u8 flags;		/* enum selector_flag */
	__u8 variant;		/* MATCH_VARIANT */
	__u8 caps_type;		/* 0 effective, 1 inheritable, 2 permitted */
	__u8 pid_flags;		/* enum pid_flag */
	__u8 npids;
	__u16 ns_changes;	/* MATCH_NS_CHANGES: bit per namespace type (nschange.h) */
	__u8 pad[2];
};

struct point_rules {
	__u32 count;
	__u32 pad;
	__u64 uses;		/* union of the selectors' match flags */
	struct selector sel[MAX_SELECTORS];
};

struct port_bitmap {
	__u64 bits[PORT_WORDS];
};

/* matchBinaries In: the path's FNV-1a hash in a set. */
struct bin_key {
	__u32 set;
	__u32 pad;
	__u64 hash;
};

/* matchBinaries Prefix/Postfix: LPM over the path (reversed for Postfix). */
struct path_key {
	__u32 prefixlen;	/* 32 (set id) + bits of the value */
	__u32 set;
	char path[PREFIX_LEN];
};

/* What exec tracking knows of a process: the binary it runs. */
struct proc {
	__u64 workload;		/* the workload cgroup the process belonged to at exec or fork */
	__u64 hash;
	__u64 alias_hash;	/* the absolute path the caller passed, when another; 0: none */
	__u32 len;
	__u32 base;	/* offset of the base name */
	char path[FULL_PATH_LEN];	/* the file's own path in the task's root */
	char rpath[PREFIX_LEN];		/* its last bytes reversed, for Postfix */
};

/* Address sets: LPM trie, all addresses as 16 bytes, IPv4 as ::ffff:a.b.c.d. */
struct addr_key {
	__u32 prefixlen;	/* 32 (set id) + address bits */
	__u32 set;
	__u8 addr[16];
};

struct name_key {
	__u32 set;
	char name[NAME_LEN];
};

enum event_flag {
	EVENT_ENFORCED = 1 << 0,	/* the verdict was carried out */
	EVENT_KILLED = 1 << 1,		/* SIGKILL sent */
	EVENT_HAS_ADDR = 1 << 2,	/* saddr/daddr/ports are valid */
	EVENT_KILL_PENDING = 1 << 3,	/* SIGKILL asked, left to the agent */
	EVENT_SIGNAL_PENDING = 1 << 4,	/* signal asked, left to the agent */
	EVENT_MONITOR = 1 << 5,		/* would have been enforced */
};

/* What a ring buffer record reports (event kind). */
enum record_kind {
	RECORD_DECISION = 0,	/* a selector matched: the agent's process_kprobe */
	RECORD_EXEC = 1,	/* a workload process exec'd (sched_process_exec) */
	RECORD_CLONE = 2,	/* a workload process started another (fork): sent by older objects only */
	RECORD_EXIT = 3,	/* the last thread of a workload process exited */
};

/* One ring buffer record: a decision, or a process's exec, clone or exit
 * (kind). Process records fill the ids, times, path and argv. */
struct event {
	__u64 ktime_ns;
	__u64 cgroup_id;		/* the process's own cgroup */
	__u64 workload_cgroup_id;	/* the registered cgroup that matched */
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	__u32 uid;
	__u32 profile;
	__s32 err;
	__u8 point;
	__u8 action;
	__u8 selector;
	__u8 flags;
	__u8 enforcer;
	__u8 family;
	__u8 sock_type;
	__u8 protocol;
	__u16 sport;
	__u16 dport;
	__u8 stdio_inet;		/* bit i: fd i is an INET/INET6 socket; bits 3-5: enum relay; bit 6: STDIO_DIALLED; bit 7: fileless exec */
	__u8 signal;
	__u8 state;
	__u8 group;
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
	char binary[NAME_LEN];
	char path[PATH_LEN];	/* the binary (exec: the new one), as far as known */
	__u32 owner;		/* TrackSock: tgid that created the socket, 0: not tracked */
	__s32 old_fd;		/* dup: the descriptor duplicated */
	__s32 new_fd;		/* dup: the descriptor it lands on */
	__u32 peer;		/* relay: tgid of the process that holds the network socket */
	__u32 args_len;		/* exec at sched_process_exec: bytes of args */
	char args[ARGS_EV_LEN];	/* argv, NUL-separated, cut at ARGS_EV_LEN */
	__u32 exit_code;	/* exit: wait status, (code << 8) | signal */
	__u64 start_time;	/* the process's start (start_boottime, ns), 0: unknown */
	__u64 parent_start_time;	/* exec, clone, decisions of a current task: the parent's start */
	char ancestor_comm[2][16];	/* decision: the comm of the process's parent and grandparent
					 * (Tetragon's resolve mm.owner.real_parent[.real_parent].comm) */
	__u8 kind;		/* enum record_kind */
	__u8 pad[3];
	__u32 drop_reason;	/* drop: the kernel's enum skb_drop_reason */
	__s32 kernel_stack;	/* id + 1 in stack_traces of the kernel stack, 0: none */
	__s32 user_stack;	/* id + 1 in stack_traces of the user stack, 0: none */
};

/* How a relayed shell was recognised (event stdio_inet bits 3-5). */
enum relay {
	RELAY_PARENT = 1 << 3,		/* an ancestor of the shell connected */
	RELAY_PIPE = 1 << 4,		/* the reader of the shell's stdout connected */
	RELAY_AT_CONNECT = 1 << 5,	/* the connect came after the shell's exec */
	RELAY_PENDING = 1 << 6,		/* no peer yet (never reported) */
};

/* Exec events, stdio_inet bit 6: the stdio socket was dialled by the
 * process or an ancestor (the peer field names it). Never set together
 * with RELAY_PENDING, which is never reported. */
enum stdio_evidence {
	STDIO_DIALLED = 1 << 6,
};

enum counter {
	COUNTER_EVENTS_LOST = 0,
	/* then per point: evaluated, posted, denied, killed */
	COUNTER_POINT_BASE = 1,
	COUNTER_MAX = COUNTER_POINT_BASE + POINT_MAX * 4,
};

enum outcome {
	OUTCOME_EVALUATED = 0,
	OUTCOME_POSTED = 1,
	OUTCOME_DENIED = 2,
	OUTCOME_KILLED = 3,
};

#endif
