package policy

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Hook kinds: the section of spec a hook was written in.
const (
	HookKprobe     = "kprobe"     // spec.kprobes
	HookFentry     = "fentry"     // spec.fentries: the kprobes' calls, attached by fentry
	HookLSM        = "lsmhook"    // spec.lsmhooks
	HookTracepoint = "tracepoint" // spec.tracepoints
)

// callSpec is what ocigate supports of one hook: the types each argument
// may be declared as and the types of its return value.
type callSpec struct {
	args    map[int][]string // argument index → the types it may be declared as
	ret     []string         // returnArg types; nil when return probes are not supported
	syscall bool             // a system call (syscall: true in Tetragon's kprobes)
}

// Argument type classes. Tetragon names an integer many ways; any of
// them declares an integer argument.
var intTypes = []string{"int", "sint32", "int32", "uint32", "long", "sint64", "int64", "ulong", "uint64",
	"size_t", "sint16", "int16", "uint16", "sint8", "int8", "uint8"}

var (
	ints     = intTypes
	sockT    = []string{"sock"}
	socketT  = []string{"socket"}
	addrT    = []string{"sockaddr"}
	skbT     = []string{"skb"}
	netDevT  = []string{"net_device"}
	fdT      = append([]string{"fd"}, intTypes...)
	nopT     = []string{"nop"}
	execT    = []string{"linux_binprm", "file", "path", "string"} // the executed file
	strT     = []string{"string", "filename"}
	fileT    = []string{"file", "path"}
	sys64T   = append([]string{"syscall64"}, intTypes...)
	dataLocT = []string{"data_loc", "string", "filename"}
)

// kprobeCalls are the kernel functions and system calls a kprobe (or
// fentry) may name. The calls without syscall are kernel functions; the
// sys_ ones are system calls (syscall: true, Tetragon's default). dup, dup2,
// dup3, fcntl and memfd_create are ocigate's own names for the system
// calls (syscall: false).
var kprobeCalls = map[string]callSpec{
	"tcp_connect":                   {args: map[int][]string{0: sockT}, ret: ints},
	"security_socket_connect":       {args: map[int][]string{0: socketT, 1: addrT, 2: ints}, ret: ints},
	"security_socket_sendmsg":       {args: map[int][]string{0: socketT, 1: nopT, 2: ints}, ret: ints},
	"security_socket_bind":          {args: map[int][]string{0: socketT, 1: addrT, 2: ints}, ret: ints},
	"security_socket_listen":        {args: map[int][]string{0: socketT, 1: ints}, ret: ints},
	"security_socket_create":        {args: map[int][]string{0: ints, 1: ints, 2: ints, 3: ints}, ret: ints},
	"inet_csk_listen_start":         {args: map[int][]string{0: sockT}, ret: ints},
	"tcp_sendmsg":                   {args: map[int][]string{0: sockT, 1: nopT, 2: ints}, ret: ints},
	"udp_sendmsg":                   {args: map[int][]string{0: sockT, 1: nopT, 2: ints}, ret: ints},
	"tcp_close":                     {args: map[int][]string{0: sockT}},
	"tcp_set_state":                 {args: map[int][]string{0: sockT, 1: ints}},
	"sk_filter_trim_cap":            {args: map[int][]string{0: sockT, 1: skbT, 2: ints}, ret: ints},
	"dev_hard_start_xmit":           {args: map[int][]string{0: skbT, 1: netDevT, 2: nopT, 3: nopT}},
	"kfree_skb_reason":              {args: map[int][]string{0: skbT, 1: ints}},
	"tcp_create_openreq_child":      {args: map[int][]string{0: sockT, 1: nopT, 2: nopT}, ret: sockT},
	"sk_alloc":                      {args: map[int][]string{0: nopT, 1: ints, 2: ints, 3: nopT, 4: ints}, ret: sockT},
	"__sk_free":                     {args: map[int][]string{0: sockT}},
	"sk_free":                       {args: map[int][]string{0: sockT}},
	"ip_output":                     {args: map[int][]string{0: nopT, 1: sockT, 2: skbT}, ret: ints},
	"ip6_output":                    {args: map[int][]string{0: nopT, 1: sockT, 2: skbT}, ret: ints},
	"ip_mc_output":                  {args: map[int][]string{0: nopT, 1: sockT, 2: skbT}, ret: ints},
	"ip_send_skb":                   {args: map[int][]string{0: nopT, 1: skbT}, ret: ints},
	"ip6_send_skb":                  {args: map[int][]string{0: skbT}, ret: ints},
	"__cgroup_bpf_run_filter_skb":   {args: map[int][]string{0: sockT, 1: skbT, 2: ints}, ret: ints},
	"dev_queue_xmit":                {args: map[int][]string{0: skbT}, ret: ints},
	"dup2":                          {args: map[int][]string{0: fdT, 1: ints}, ret: ints},
	"dup3":                          {args: map[int][]string{0: fdT, 1: ints, 2: ints}, ret: ints},
	"dup":                           {args: map[int][]string{0: fdT, 1: ints}, ret: ints},
	"fcntl":                         {args: map[int][]string{0: fdT, 1: ints}, ret: ints},
	"memfd_create":                  {args: map[int][]string{0: strT, 1: ints}, ret: ints},
	"security_bprm_check":           {args: map[int][]string{0: execT}, ret: ints},
	"security_bprm_creds_from_file": {args: map[int][]string{0: append([]string{"nop"}, execT...), 1: fileT}, ret: ints},
	"sys_execve":                    {args: map[int][]string{0: strT}, ret: ints, syscall: true},
	"sys_execveat":                  {args: map[int][]string{0: ints, 1: strT}, ret: ints, syscall: true},
	"sys_dup":                       {args: map[int][]string{0: fdT}, ret: ints, syscall: true},
	"sys_dup2":                      {args: map[int][]string{0: fdT, 1: ints}, ret: ints, syscall: true},
	"sys_dup3":                      {args: map[int][]string{0: fdT, 1: ints, 2: ints}, ret: ints, syscall: true},
	"sys_memfd_create":              {args: map[int][]string{0: strT, 1: ints}, ret: ints, syscall: true},
	"sys_connect":                   {args: map[int][]string{0: fdT, 1: addrT, 2: ints}, ret: ints, syscall: true},
	"sys_bind":                      {args: map[int][]string{0: fdT, 1: addrT, 2: ints}, ret: ints, syscall: true},
	"sys_listen":                    {args: map[int][]string{0: fdT, 1: ints}, ret: ints, syscall: true},
	"sys_socket":                    {args: map[int][]string{0: ints, 1: ints, 2: ints}, ret: ints, syscall: true},
	"sys_sendto":                    {args: map[int][]string{0: fdT, 1: nopT, 2: ints, 3: ints, 4: addrT, 5: ints}, ret: ints, syscall: true},
	"sys_sendmsg":                   {args: map[int][]string{0: fdT, 1: nopT, 2: ints}, ret: ints, syscall: true},
	"sys_sendmmsg":                  {args: map[int][]string{0: fdT, 1: nopT, 2: ints, 3: ints}, ret: ints, syscall: true},
}

// lsmHooks are the LSM hooks an lsmhooks entry may name.
var lsmHooks = map[string]callSpec{
	"bprm_check_security":  {args: map[int][]string{0: execT}},
	"bprm_creds_from_file": {args: map[int][]string{0: append([]string{"nop"}, execT...), 1: fileT}},
	"socket_connect":       {args: map[int][]string{0: socketT, 1: addrT, 2: ints}},
	"socket_sendmsg":       {args: map[int][]string{0: socketT, 1: nopT, 2: ints}},
	"socket_bind":          {args: map[int][]string{0: socketT, 1: addrT, 2: ints}},
	"socket_listen":        {args: map[int][]string{0: socketT, 1: ints}},
	"socket_create":        {args: map[int][]string{0: ints, 1: ints, 2: ints, 3: ints}},
}

// tracepointCalls are the tracepoints a tracepoints entry may name, as
// "subsystem/event"; a raw tracepoint (raw: true) is "subsystem/event
// (raw)". Argument indexes are Tetragon's: the fields of the event's
// format, common fields first (raw: the tracepoint's own arguments).
var tracepointCalls = map[string]callSpec{
	"raw_syscalls/sys_enter":         {args: map[int][]string{4: sys64T}},
	"sched/sched_process_exec":       {args: map[int][]string{4: dataLocT, 5: ints, 6: ints}},
	"sched/sched_process_exec (raw)": {args: map[int][]string{0: nopT, 1: ints, 2: execT}},
}

// SupportedCalls lists the kernel functions and system calls a kprobe may
// name, in the order error messages give them.
var SupportedCalls = sortedKeys(kprobeCalls)

// SupportedLSMHooks lists the LSM hooks an lsmhooks entry may name.
var SupportedLSMHooks = sortedKeys(lsmHooks)

// SupportedTracepoints lists the tracepoints a tracepoints entry may name.
var SupportedTracepoints = sortedKeys(tracepointCalls)

// sortedKeys returns the keys of m in byte order.
func sortedKeys(m map[string]callSpec) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// lookupCall finds the spec of a hook of kind; name is a call, an LSM
// hook or a tracepoint's "subsystem/event" ("... (raw)" for raw ones).
// Tetragon's architecture prefixes of system calls (__x64_sys_...) name
// the same calls.
func lookupCall(kind, name string) (callSpec, string, bool) {
	switch kind {
	case HookLSM:
		c, ok := lsmHooks[name]
		return c, name, ok
	case HookTracepoint:
		c, ok := tracepointCalls[name]
		return c, name, ok
	}
	for _, pfx := range []string{"__x64_", "__ia32_", "__se_", "__do_"} {
		if rest, ok := strings.CutPrefix(name, pfx); ok && strings.HasPrefix(rest, "sys_") {
			name = rest
		}
	}
	c, ok := kprobeCalls[name]
	return c, name, ok
}

// describe lists a call's arguments as "0 sock, 1 sockaddr" (the
// first type each may be declared as).
func (c callSpec) describe() string {
	idx := make([]int, 0, len(c.args))
	for i := range c.args {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	parts := make([]string, len(idx))
	for j, i := range idx {
		parts[j] = fmt.Sprintf("%d %s", i, c.args[i][0])
	}
	return strings.Join(parts, ", ")
}

// allows reports whether argument index may be declared as typ.
func (c callSpec) allows(index int, typ string) bool {
	return slices.Contains(c.args[index], typ)
}

// typeClass is the class of a declared argument type: the integer types
// are all "int", "filename" is "string", "data_loc" is "string".
func typeClass(typ string) string {
	switch {
	case slices.Contains(intTypes, typ) && typ != "syscall64":
		return "int"
	case typ == "filename" || typ == "data_loc":
		return "string"
	}
	return typ
}

// domain is why a hook outside ocigate's domain is refused: what it
// is, why ocigate does not do it, and the closest ocigate feature.
type domain struct {
	re      *regexp.Regexp
	what    string
	why     string
	closest string
}

// ocigateDomain is what every refusal says ocigate does.
const ocigateDomain = "ocigate's domain (network, exec, FD redirection, memfd)"

// outOfDomain classifies the calls ocigate does not hook, first match
// wins; the last entry takes every other call.
var outOfDomain = []domain{
	{regexp.MustCompile(`tcp_set_state|openreq|accept|inet_csk_|tcp_rcv|tcp_v[46]_rcv|tcp_retransmit`),
		"TCP's internals (state machine, receive path)",
		"ocigate sees a TCP socket's state change where a workload's connection is accepted, not the kernel's TCP functions in general",
		"tcp_create_openreq_child and tcp_set_state (the accepted connections), inet_csk_listen_start (the listen)"},
	{regexp.MustCompile(`^(dev_|netif_|napi_|__netif|kfree_skb|consume_skb|skb_|sk_filter|nf_|ip_rcv|ip6_rcv|ip_local|udp_rcv|__udp4_lib_rcv|icmp)|recv`),
		"packets at a network device or on the receive path before a socket",
		"ocigate sees a workload's packets by their sockets, where the socket names the workload; on the receive path before the socket is found, or at a device without one, a packet may be forwarded or another namespace's, and names no workload",
		"ip_output or dev_queue_xmit with DAddr, DPort, Protocol (packets a workload sends), dev_hard_start_xmit (its packets at a device, net_device Equal), kfree_skb_reason (its dropped packets), sk_filter_trim_cap (packets delivered to its sockets)"},
	{regexp.MustCompile(`cred|capset|capable|setuid|setgid|setres|setre|setfs|setgroups|user_ns|commit_creds|bprm_committ|cap_`),
		"credentials and capabilities",
		"ocigate does not watch privilege changes",
		"matchNamespaces (User) and the exec point's matchBinaries"},
	{regexp.MustCompile(`module|kernel_read_file|kernel_load_data|kexec`),
		"kernel modules and kernel images",
		"ocigate does not watch the kernel itself",
		"none; the exec point's Prefix/Postfix on the executed file catches module tools (insmod, modprobe)"},
	{regexp.MustCompile(`bpf|perf_event`),
		"the BPF and perf subsystems",
		"ocigate does not watch BPF programs",
		"none; the exec point's matchArgs on the executed file catches bpftool"},
	{regexp.MustCompile(`mount|pivot_root|setns|unshare|chroot|fsopen|fsconfig|fspick|open_tree`),
		"mounts and namespace changes",
		"ocigate does not watch mounts",
		"matchNamespaces, evaluated when the container registers"},
	{regexp.MustCompile(`ptrace|process_vm_`),
		"process tracing (ptrace)",
		"ocigate does not watch ptrace",
		"none"},
	{regexp.MustCompile(`clock|time|adjtimex`),
		"the system clock",
		"ocigate does not watch time changes",
		"none"},
	{regexp.MustCompile(`tty|pty|console`),
		"terminal I/O",
		"ocigate does not read what processes write",
		"StdioSocket and RelayedShell on the exec point: a shell whose terminal is a network socket"},
	{regexp.MustCompile(`mmap|mprotect|madvise|elf|load_elf|loader|library|dlopen`),
		"memory mappings and shared library loading",
		"ocigate does not watch mappings",
		"Fileless on the exec point (memfd and deleted executables)"},
	{regexp.MustCompile(`file|inode|dentry|path|open|read|write|unlink|rename|link|mkdir|rmdir|chmod|chown|truncate|vfs_|fd_install|xattr|getdents|stat|close|sendfile|splice|fsync|lock`),
		"file access",
		"ocigate does not watch file access",
		"the exec point's Equal/Prefix/Postfix on the executed file, and Fileless"},
	{regexp.MustCompile(`kill|signal|exit|fork|clone|wake_up_new_task|sched_`),
		"the process lifecycle",
		"ocigate reports every workload process's exec and exit itself (process_exec, process_exit) and acts on execs only",
		"security_bprm_check / bprm_check_security (the exec point)"},
	{regexp.MustCompile(`.`),
		"", "ocigate hooks no other kernel function", "the calls of the exec, connect, sendmsg, bind, listen, sock_create, dup and memfd points"},
}

// ksymNameLen is the kernel's longest symbol name (KSYM_NAME_LEN).
const ksymNameLen = 512

// refusal is the one-line reason a hook outside the domain is refused.
// what names the hook as written ("kprobe fd_install", "uprobe on
// /bin/bash readline").
func refusal(what, name string) string {
	if len(name) > ksymNameLen { // no kernel symbol: not worth matching
		return what + ": refused: not a kernel function (longer than " + strconv.Itoa(ksymNameLen) + " bytes)"
	}
	for _, d := range outOfDomain {
		if d.re.MatchString(name) {
			if d.what == "" {
				return fmt.Sprintf("%s: refused: %s; closest: %s", what, d.why, d.closest)
			}
			return fmt.Sprintf("%s: refused: %s, outside %s: %s; closest: %s", what, d.what, ocigateDomain, d.why, d.closest)
		}
	}
	return what + ": refused"
}
