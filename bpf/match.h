/* SPDX-License-Identifier: GPL-2.0 */
/* Selector predicates: whether one selector of the workload's profile
 * matches the decision's query. All set predicates must hold (AND); the
 * sets themselves are maps the agent writes from the profile. */
#ifndef OCIGATE_MATCH_H
#define OCIGATE_MATCH_H

#include "workload.h"
#include "nschange.h"

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
 * so the key is a plain copy: no per-byte loop. */
static __always_inline bool name_in_set(__u32 set, const char *name, int len)
{
	struct name_key key = { .set = set };

	if (len == NAME_LEN)
		__builtin_memcpy(key.name, name, NAME_LEN);
	else
		__builtin_memcpy(key.name, name, 16);
	return bpf_map_lookup_elem(&name_sets, &key) != 0;
}

/* A path by its hash, or by the path it was called by (alias, 0: none):
 * /bin/sh in a profile still names what /bin/sh runs. */
static __always_inline bool hash_in_set(__u32 set, __u64 hash, __u64 alias)
{
	struct bin_key key = { .set = set, .hash = hash };

	if (bpf_map_lookup_elem(&bin_sets, &key))
		return true;
	if (!alias)
		return false;
	key.hash = alias;
	return bpf_map_lookup_elem(&bin_sets, &key) != 0;
}

static __always_inline bool path_in_prefixes(__u32 set, struct path_key *key)
{
	key->prefixlen = 32 + 8 * PREFIX_LEN;
	key->set = set;
	return bpf_map_lookup_elem(&path_prefixes, key) != 0;
}

static __always_inline bool in_mask32(__u32 mask, __u8 v)
{
	return v < 32 && ((mask >> v) & 1);
}

/* in/not-in test: true when the predicate fails. */
#define FAILS(m, IN, NOT, in) ((((m) & (IN)) && !(in)) || (((m) & (NOT)) && (in)))

/* Whether the destination is in set, looked up once per decision and set:
 * the selectors of one profile share the set of equal prefix lists (the
 * reverse-shell profile's two at connect), and an LPM lookup is ~60 ns. */
static __always_inline bool daddr_in_set(struct decision *d, __u32 set)
{
	if (d->daddr_set != set) {
		d->daddr_in = addr_in_set(set, d->q.daddr);
		d->daddr_set = set;
	}
	return d->daddr_in;
}

/* The network predicates: family, protocol, type, state, addresses, ports. */
static __always_inline bool socket_matches(const struct selector *s, struct decision *d)
{
	const struct query *q = &d->q;
	__u8 family = d->family;
	__u64 m = s->match;

	if ((m & MATCH_FAMILY) && !in_mask32(s->families, family))
		return false;
	if ((m & MATCH_PROTOCOL) && !((s->protocols[(q->protocol >> 6) & 3] >> (q->protocol & 63)) & 1))
		return false;
	if ((m & MATCH_TYPE) && !in_mask32(s->types, q->sock_type))
		return false;
	if ((m & MATCH_STATE) && !in_mask32(s->states, q->state))
		return false;
	if (m & (MATCH_DADDR | MATCH_DADDR_NOT)) {
		if (!q->has_daddr || FAILS(m, MATCH_DADDR, MATCH_DADDR_NOT, daddr_in_set(d, s->daddr_set)))
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
	return true;
}

/* The executed file's path (matchArgs on a linux_binprm and the like):
 * its own path, or the path exec was given (Prefix too: /proc/self/fd/3
 * names a memfd whose own path is elsewhere). */
static __always_inline bool path_matches(const struct selector *s, struct decision *d)
{
	__u64 m = s->match;

	if (!d->has_path)
		return false;
	if ((m & (MATCH_PATH | MATCH_PATH_NOT)) &&
	    FAILS(m, MATCH_PATH, MATCH_PATH_NOT, hash_in_set(s->path_set, d->path_hash, d->path_alias)))
		return false;
	if (m & (MATCH_PATH_PREFIX | MATCH_PATH_PREFIX_NOT)) {
		bool in = path_in_prefixes(s->path_prefix_set, &d->path_prefix) ||
			  (d->has_alias_prefix && path_in_prefixes(s->path_prefix_set, &d->alias_prefix));

		if (FAILS(m, MATCH_PATH_PREFIX, MATCH_PATH_PREFIX_NOT, in))
			return false;
	}
	if ((m & (MATCH_PATH_POSTFIX | MATCH_PATH_POSTFIX_NOT)) &&
	    FAILS(m, MATCH_PATH_POSTFIX, MATCH_PATH_POSTFIX_NOT, path_in_prefixes(s->path_postfix_set, &d->path_postfix)))
		return false;
	return true;
}

/* matchCapabilities: whether the caller's set holds any of the selector's
 * capabilities (In), or none (Not); with isNamespaceCapability only a
 * caller outside the host's user namespace matches. */
static __always_inline bool caps_match(const struct selector *s, const struct decision *d)
{
	__u64 m = s->match;

	if (!d->has_caps)
		return false;
	if ((m & MATCH_CAPS_USERNS) && d->userns == USER_NS_INIT_INO)
		return false;
	__u64 caps = d->cred_caps[0];

	if (s->caps_type == 1)
		caps = d->cred_caps[1];
	else if (s->caps_type == 2)
		caps = d->cred_caps[2];
	bool in = (caps & s->caps) != 0;

	return !FAILS(m, MATCH_CAPS, MATCH_CAPS_NOT, in);
}

/* One ancestor of the matchPIDs walk (bpf_loop): whether the a-th
 * process of the caller's line (0: the caller) has one of the selector's
 * pids. State in scratch (d->pid_sel, d->pid_in), as every loop's. */
static long pid_step(__u32 a, void *unused)
{
	struct scratch *sc = get_scratch();

	if (!sc || a >= PID_ANCESTORS)
		return 1;
	barrier_var(a);
	a &= PID_SLOTS - 1;
	struct decision *d = &sc->d;
	struct point_rules *r = bpf_map_lookup_elem(&rules, &d->key);

	if (!r)
		return 1;
	const struct selector *s = &r->sel[d->pid_sel & (MAX_SELECTORS - 1)];
	__u32 pid = (s->pid_flags & PID_NS) ? d->nspids[a] : d->pids[a];
	__u32 depth = (s->pid_flags & PID_FOLLOW) ? d->npids : 1;

	if (a >= depth || !pid)
		return 1;
	/* unused values are 0, which no pid compared here is */
	if (pid == s->pids[0] || pid == s->pids[1] || pid == s->pids[2] || pid == s->pids[3]) {
		d->pid_in = 1;
		return 1;
	}
	return 0;
}

/* matchPIDs of selector i of the rules being evaluated (d->key): whether
 * the caller's pid (its pid in its own namespace with isNamespacePID,
 * where a process in the host's has none) is one of the selector's; with
 * followForks an ancestor's up to PID_ANCESTORS, as Tetragon. A global
 * function. */
__noinline int match_pids(__u32 i)
{
	struct scratch *sc = get_scratch();

	if (!sc)
		return 0;
	struct decision *d = &sc->d;
	struct point_rules *r = bpf_map_lookup_elem(&rules, &d->key);

	if (!r || i >= MAX_SELECTORS || !d->has_pids)
		return 0;
	barrier_var(i);
	const struct selector *s = &r->sel[i & (MAX_SELECTORS - 1)];

	if ((s->pid_flags & PID_NS) && !d->nspids[0])
		return 0;
	d->pid_sel = i;
	d->pid_in = 0;
	bpf_loop(PID_ANCESTORS, pid_step, 0, 0);
	return !FAILS(s->match, MATCH_PID, MATCH_PID_NOT, d->pid_in);
}

/* The process predicates: names, binaries, paths, capabilities, pids,
 * stdio, descriptors, relays. */
static __always_inline bool process_matches(const struct selector *s, struct decision *d, __u32 i)
{
	const struct query *q = &d->q;
	__u64 m = s->match;

	if (m & (MATCH_NAME | MATCH_NAME_NOT)) {
		bool in = name_in_set(s->name_set, q->binary, NAME_LEN) || name_in_set(s->name_set, q->comm, 16);
		if (FAILS(m, MATCH_NAME, MATCH_NAME_NOT, in))
			return false;
	}
	if (m & MATCH_ANY_BIN) {
		/* A process whose binary is unknown (it predates tracking)
		 * matches no binary predicate, positive or negative. */
		if (!d->has_bin)
			return false;
		if ((m & (MATCH_BIN | MATCH_BIN_NOT)) && FAILS(m, MATCH_BIN, MATCH_BIN_NOT, hash_in_set(s->bin_set, d->bin_hash, d->bin_alias)))
			return false;
		if ((m & (MATCH_BIN_PREFIX | MATCH_BIN_PREFIX_NOT)) &&
		    FAILS(m, MATCH_BIN_PREFIX, MATCH_BIN_PREFIX_NOT, path_in_prefixes(s->prefix_set, &d->prefix)))
			return false;
		if ((m & (MATCH_BIN_POSTFIX | MATCH_BIN_POSTFIX_NOT)) &&
		    FAILS(m, MATCH_BIN_POSTFIX, MATCH_BIN_POSTFIX_NOT, path_in_prefixes(s->postfix_set, &d->postfix)))
			return false;
	}
	if ((m & MATCH_ANY_PATH) && !path_matches(s, d))
		return false;
	if ((m & (MATCH_CAPS | MATCH_CAPS_NOT)) && !caps_match(s, d))
		return false;
	if ((m & (MATCH_PID | MATCH_PID_NOT)) && !match_pids(i))
		return false;
	if (m & (MATCH_NS_CHANGES | MATCH_NS_CHANGES_NOT)) {
		int changed = ns_changed();

		if (changed < 0 || FAILS(m, MATCH_NS_CHANGES, MATCH_NS_CHANGES_NOT, changed & s->ns_changes))
			return false;
	}
	if ((m & MATCH_STDIO_INET) && !q->stdio_inet)
		return false;
	if ((m & MATCH_STDIO_DIALLED) && !(q->stdio_inet & STDIO_DIALLED))
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

static __always_inline void prepare_bin_keys(struct scratch *s, __u64 uses);

/* Selector i of the rules being evaluated (d->key): 1 when it matches
 * and its group has not been decided yet (the group is then decided, and
 * d->first set if it is the first match), 0 when it does not, -1 past
 * the last selector. A global function: the verifier checks it once,
 * on its own, whatever loop calls it. */
__noinline int match_selector(__u32 i)
{
	struct scratch *s = get_scratch();

	if (!s)
		return -1;
	struct decision *d = &s->d;
	struct point_rules *r = bpf_map_lookup_elem(&rules, &d->key);

	if (!r || i >= r->count || i >= MAX_SELECTORS)
		return -1;
	barrier_var(i);
	i &= MAX_SELECTORS - 1;
	const struct selector *sel = &r->sel[i];
	__u32 group = 1u << (sel->group & 31);

	if ((d->decided & group) || ((d->w.disabled[d->q.point & 15] >> i) & 1))
		return 0;
	if (!socket_matches(sel, d))
		return 0;
	/* The binary's keys at the first selector that gets this far and
	 * looks at them: a procs lookup the socket predicates often spare. */
	if ((sel->match & (MATCH_ANY_BIN | MATCH_ANY_PATH)) && !d->bin_ready)
		prepare_bin_keys(s, r->uses);
	if (!process_matches(sel, d, i))
		return 0;
	d->decided |= group;
	if (d->first < 0)
		d->first = i;
	return 1;
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

/* Fills what the binary predicates look up: the path hashes and the
 * Prefix and (reversed, when exec tracking recorded it) Postfix keys of
 * p. */
static __always_inline void bin_keys(struct decision *d, const struct proc *p, __u64 uses)
{
	d->has_bin = 1;
	d->bin_hash = p->hash;
	d->bin_alias = p->alias_hash;
	if (uses & (MATCH_BIN_PREFIX | MATCH_BIN_PREFIX_NOT))
		__builtin_memcpy(d->prefix.path, p->path, PREFIX_LEN);
	if (uses & (MATCH_BIN_POSTFIX | MATCH_BIN_POSTFIX_NOT))
		__builtin_memcpy(d->postfix.path, p->rpath, PREFIX_LEN);
}

/* Fills what the path predicates look up, from the file being exec'd (or
 * the relay's shell): hashes, the Prefix keys of its own path and of the
 * path exec was given (in scratch while an exec is decided), Postfix. */
static __always_inline void path_keys(struct scratch *s, const struct proc *p, __u64 uses)
{
	struct decision *d = &s->d;

	d->has_path = 1;
	d->has_alias_prefix = 0;
	d->path_hash = p->hash;
	d->path_alias = p->alias_hash;
	if (uses & (MATCH_PATH_PREFIX | MATCH_PATH_PREFIX_NOT)) {
		__builtin_memcpy(d->path_prefix.path, p->path, PREFIX_LEN);
		if (d->q.exec_proc && d->path_alias) {
			__builtin_memcpy(d->alias_prefix.path, s->x.alias, PREFIX_LEN);
			d->has_alias_prefix = 1;
		}
	}
	if (uses & (MATCH_PATH_POSTFIX | MATCH_PATH_POSTFIX_NOT))
		__builtin_memcpy(d->path_postfix.path, p->rpath, PREFIX_LEN);
}

/* The capabilities and user namespace of the current task's credentials
 * into the decision (kernel_cap_t is 64 bits, as one u64 or two u32). */
static __always_inline void prepare_caps(struct decision *d)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const struct cred *cred = BPF_CORE_READ(task, cred);

	d->has_caps = 0;
	if (!cred)
		return;
	bpf_probe_read_kernel(&d->cred_caps[0], 8, __builtin_preserve_access_index(&cred->cap_effective));
	bpf_probe_read_kernel(&d->cred_caps[1], 8, __builtin_preserve_access_index(&cred->cap_inheritable));
	bpf_probe_read_kernel(&d->cred_caps[2], 8, __builtin_preserve_access_index(&cred->cap_permitted));
	d->userns = BPF_CORE_READ(cred, user_ns, ns.inum);
	d->has_caps = 1;
}

/* A task's pid in its own pid namespace, 0 in the host's. */
static __always_inline __u32 ns_pid(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, group_leader, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	if (!pid || !level)
		return 0;
	bpf_probe_read_kernel(&up, sizeof(up), &pid->numbers[level & 31]);
	return up.nr;
}

/* The current process's pids and its ancestors' (real parents), the
 * host's and their own namespaces', into the decision. */
static __always_inline void prepare_pids(struct decision *d)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	d->npids = 0;
	for (__u32 i = 0; i < PID_ANCESTORS; i++) {
		__u32 tgid = BPF_CORE_READ(task, tgid);

		if (!task || !tgid)
			break;
		d->pids[i] = tgid;
		d->nspids[i] = ns_pid(task);
		d->npids = i + 1;
		task = BPF_CORE_READ(task, real_parent);
	}
	d->has_pids = d->npids > 0;
}

/* Fills the lookup keys of the binary and path predicates, once per
 * decision (bin_ready), when a selector first needs them. At the exec
 * point matchBinaries names the program that calls exec (as in Tetragon)
 * and the path predicates the file exec'd; elsewhere both name the
 * process's binary (at the relay point, the shell). */
static __always_inline void prepare_bin_keys(struct scratch *s, __u64 uses)
{
	struct decision *d = &s->d;
	struct proc *p = query_proc(s);

	d->bin_ready = 1;
	if (p && (uses & MATCH_ANY_PATH))
		path_keys(s, p, uses);
	if (!(uses & MATCH_ANY_BIN))
		return;
	if (d->q.point == POINT_EXEC)
		p = s->x.caller_valid ? &s->x.caller : 0;
	if (p)
		bin_keys(d, p, uses);
}

/* Starts a decision's selector predicates: prepares what the rules'
 * capability and pid predicates look at, and forgets the last decision's
 * binary keys and address lookup; the binary's keys wait for the first
 * selector that needs them (prepare_bin_keys). */
static __always_inline void prepare_predicates(struct scratch *s, __u64 uses)
{
	struct decision *d = &s->d;

	d->has_bin = 0;
	d->has_path = 0;
	d->bin_ready = 0;
	d->daddr_set = 0;
	d->has_caps = 0;
	d->has_pids = 0;
	if (uses & (MATCH_CAPS | MATCH_CAPS_NOT))
		prepare_caps(d);
	if (uses & (MATCH_PID | MATCH_PID_NOT))
		prepare_pids(d);
}

#endif
