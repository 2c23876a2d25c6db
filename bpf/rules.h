/* SPDX-License-Identifier: GPL-2.0 */
/* The rule engine: workload scoping and selector evaluation. One copy, used
 * by every backend's programs. Everything it decides comes from maps that
 * the agent writes from compiled profiles. */
#ifndef OCIGATE_RULES_H
#define OCIGATE_RULES_H

#include "common.h"

/* cgroup v2 id -> workload: which cgroups are enforced and how. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct workload);
} workloads SEC(".maps");

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

/* Per-CPU scratch: [0] the exec path, [1] prefix key, [2] postfix key. */
struct scratch {
	struct proc exec;
	struct path_key prefix;
	struct path_key postfix;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

#define DPATH_ROOM 256	/* bytes for a resolved path: [0, DPATH_ROOM) of the buffer */

/* Per-CPU scratch of exec: the resolved path being built, the path the
 * caller passed, argv (dpath.h). */
struct dpath_scratch {
	char buf[2 * DPATH_ROOM];	/* twice the room: masked reads stay in bounds */
	char alias[FULL_PATH_LEN];	/* the path the caller passed */
	__u32 alias_base;		/* offset of its base name */
	char args[ARGS_EV_LEN];		/* argv of the new image (read_args) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dpath_scratch);
} dpath_scratch SEC(".maps");

static __always_inline struct dpath_scratch *get_dpath_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dpath_scratch, &zero);
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

#define WAKEUP_BYTES (64 << 10)	/* records waiting that wake the agent */

/* Submits a record. The agent is woken when WAKEUP_BYTES wait, or at
 * once when it has to act (urgent: a kill or signal left to it); other
 * records wait for its next read, at most a few milliseconds (it polls).
 * At high rates it reads in batches instead of being woken per record,
 * and the programs do not pay for a wakeup per record. */
static __always_inline void submit(void *e, bool urgent)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (urgent || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTER_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* What is being checked: filled by each program from its own context. */
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
	struct proc *proc;	/* the binary's path, when known */
	__u64 cookie;		/* the socket's cookie, 0: none or not generated */
	__s32 old_fd;		/* dup */
	__s32 new_fd;
	__u8 fileless;		/* exec: the file has no link on disk */
	__u8 variant;		/* which call of a shared point (dup: 2 or 3) */
	__u8 relay;		/* relay: enum relay, 0: not relayed */
	__u32 subject;		/* relay at connect: the shell (the event's process), 0: current */
	__u32 peer;		/* relay: the process that holds the network socket */
	__u32 args_len;		/* exec: argv bytes in the dpath scratch, 0: none */
};

/* The tgid that created the socket with this cookie (TrackSock), or 0. */
static __always_inline __u32 sock_owner(__u64 cookie)
{
	__u32 *owner;

	if (!cookie)
		return 0;
	owner = bpf_map_lookup_elem(&sock_owners, &cookie);
	return owner ? *owner : 0;
}

static __always_inline struct scratch *get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += 1;
}

static __always_inline void count_outcome(__u8 point, __u32 outcome)
{
	count(COUNTER_POINT_BASE + (__u32)point * 4 + outcome);
}

/* Finds the workload of the current task: its own cgroup or the closest
 * registered ancestor, so sub-cgroups made inside a container stay
 * covered; failing that, the workload exec tracking recorded for the
 * process, so one that moved itself to a cgroup outside (a container
 * allowed to write cgroup.procs) stays covered too. */
static __always_inline struct workload *current_workload(__u64 *workload_cgroup)
{
	__u64 id = bpf_get_current_cgroup_id();
	struct workload *w = bpf_map_lookup_elem(&workloads, &id);
	struct workload *found = 0;

	*workload_cgroup = 0;

	if (w) {
		*workload_cgroup = id;
		return w;
	}
	for (int level = 1; level < MAX_CGROUP_DEPTH; level++) {
		__u64 anc = bpf_get_current_ancestor_cgroup_id(level);

		if (!anc || anc == id)
			break;
		w = bpf_map_lookup_elem(&workloads, &anc);
		if (w) {
			found = w;
			*workload_cgroup = anc;
		}
	}
	if (found)
		return found;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (!p || !p->workload)
		return 0;
	id = p->workload;
	w = bpf_map_lookup_elem(&workloads, &id);
	if (w)
		*workload_cgroup = id;
	return w;
}

static __always_inline void ipv4_mapped(__u8 *dst, __u32 addr_be)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr_be, 4);
}

/* Normalises ::ffff:a.b.c.d to AF_INET so v4 rules cover v4-mapped peers. */
static __always_inline __u8 effective_family(const struct query *q)
{
	if (q->family != AF_INET6 || !q->has_daddr)
		return q->family;
	for (int i = 0; i < 10; i++)
		if (q->daddr[i])
			return AF_INET6;
	if (q->daddr[10] == 0xff && q->daddr[11] == 0xff)
		return AF_INET;
	return AF_INET6;
}

static __always_inline bool addr_in_set(__u32 set, const __u8 *addr)
{
	struct addr_key key = { .prefixlen = 32 + 128, .set = set };

	__builtin_memcpy(key.addr, addr, 16);
	return bpf_map_lookup_elem(&addr_sets, &key) != 0;
}

static __always_inline bool port_in_set(__u32 set, __u16 port)
{
	struct port_bitmap *b = bpf_map_lookup_elem(&port_sets, &set);

	if (!b)
		return false;
	return (b->bits[(port >> 6) & (PORT_WORDS - 1)] >> (port & 63)) & 1;
}

/* name is NUL-padded to len (the query is zeroed before it is filled),
 * so the key is a plain copy: no per-byte loop for the verifier. */
static __always_inline bool name_in_set(__u32 set, const char *name, int len)
{
	struct name_key key = { .set = set };

	if (len == NAME_LEN)
		__builtin_memcpy(key.name, name, NAME_LEN);
	else
		__builtin_memcpy(key.name, name, 16);
	return bpf_map_lookup_elem(&name_sets, &key) != 0;
}

static __always_inline bool bin_in_set(__u32 set, const struct proc *p)
{
	struct bin_key key = { .set = set, .hash = p->hash };

	if (bpf_map_lookup_elem(&bin_sets, &key))
		return true;
	if (!p->alias_hash)
		return false;
	key.hash = p->alias_hash; /* /bin/sh in a profile still names what /bin/sh runs */
	return bpf_map_lookup_elem(&bin_sets, &key) != 0;
}

static __always_inline bool path_in_prefixes(__u32 set, struct path_key *key)
{
	key->prefixlen = 32 + 8 * PREFIX_LEN;
	key->set = set;
	return bpf_map_lookup_elem(&path_prefixes, key) != 0;
}

/* Builds the Prefix and (reversed) Postfix lookup keys of the path. */
static __always_inline void path_keys(const struct proc *p, struct scratch *sc, __u32 uses)
{
	if (uses & (MATCH_BIN_PREFIX | MATCH_BIN_PREFIX_NOT))
		__builtin_memcpy(sc->prefix.path, p->path, PREFIX_LEN);
	/* reversed once, when the exec was tracked (reverse_path) */
	if (uses & (MATCH_BIN_POSTFIX | MATCH_BIN_POSTFIX_NOT))
		__builtin_memcpy(sc->postfix.path, p->rpath, PREFIX_LEN);
}

static __always_inline bool in_mask32(__u32 mask, __u8 v)
{
	return v < 32 && ((mask >> v) & 1);
}

/* in/not-in test: true when the predicate fails. */
#define FAILS(m, IN, NOT, in) ((((m) & (IN)) && !(in)) || (((m) & (NOT)) && (in)))

static __always_inline bool selector_matches(const struct selector *s, const struct query *q, __u8 family,
					     struct scratch *sc)
{
	__u32 m = s->match;

	if ((m & MATCH_FAMILY) && !in_mask32(s->families, family))
		return false;
	if ((m & MATCH_PROTOCOL) && !((s->protocols[(q->protocol >> 6) & 3] >> (q->protocol & 63)) & 1))
		return false;
	if ((m & MATCH_TYPE) && !in_mask32(s->types, q->sock_type))
		return false;
	if ((m & MATCH_STATE) && !in_mask32(s->states, q->state))
		return false;
	if (m & (MATCH_DADDR | MATCH_DADDR_NOT)) {
		if (!q->has_daddr || FAILS(m, MATCH_DADDR, MATCH_DADDR_NOT, addr_in_set(s->daddr_set, q->daddr)))
			return false;
	}
	if (m & (MATCH_SADDR | MATCH_SADDR_NOT)) {
		if (!q->has_saddr || FAILS(m, MATCH_SADDR, MATCH_SADDR_NOT, addr_in_set(s->saddr_set, q->saddr)))
			return false;
	}
	if (m & (MATCH_DPORT | MATCH_DPORT_NOT)) {
		if (!q->has_daddr || FAILS(m, MATCH_DPORT, MATCH_DPORT_NOT, port_in_set(s->dport_set, q->dport)))
			return false;
	}
	if (m & (MATCH_SPORT | MATCH_SPORT_NOT)) {
		if (!q->has_saddr || FAILS(m, MATCH_SPORT, MATCH_SPORT_NOT, port_in_set(s->sport_set, q->sport)))
			return false;
	}
	if (m & (MATCH_NAME | MATCH_NAME_NOT)) {
		bool in = name_in_set(s->name_set, q->binary, NAME_LEN) || name_in_set(s->name_set, q->comm, 16);
		if (FAILS(m, MATCH_NAME, MATCH_NAME_NOT, in))
			return false;
	}
	if (m & MATCH_ANY_BIN) {
		/* A process whose binary is unknown (it predates tracking)
		 * matches no binary predicate, positive or negative. */
		if (!q->proc || !sc)
			return false;
		if ((m & (MATCH_BIN | MATCH_BIN_NOT)) &&
		    FAILS(m, MATCH_BIN, MATCH_BIN_NOT, bin_in_set(s->bin_set, q->proc)))
			return false;
		if ((m & (MATCH_BIN_PREFIX | MATCH_BIN_PREFIX_NOT)) &&
		    FAILS(m, MATCH_BIN_PREFIX, MATCH_BIN_PREFIX_NOT, path_in_prefixes(s->prefix_set, &sc->prefix)))
			return false;
		if ((m & (MATCH_BIN_POSTFIX | MATCH_BIN_POSTFIX_NOT)) &&
		    FAILS(m, MATCH_BIN_POSTFIX, MATCH_BIN_POSTFIX_NOT, path_in_prefixes(s->postfix_set, &sc->postfix)))
			return false;
	}
	if ((m & MATCH_STDIO_INET) && !q->stdio_inet)
		return false;
	if ((m & MATCH_NEWFD) && (q->new_fd < 0 || !in_mask32(s->fds, (__u8)q->new_fd)))
		return false;
	if ((m & MATCH_FILELESS) && !q->fileless)
		return false;
	if ((m & MATCH_VARIANT) && s->variant != q->variant)
		return false;
	if ((m & MATCH_RELAYED) && !q->relay)
		return false;
	return true;
}

#include "verdict.h"

#endif
