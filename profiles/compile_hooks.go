package profiles

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/profiles/policy"
)

// hookDef is what a hook becomes: the points it decides at, and what it
// sees there.
type hookDef struct {
	points    []Point
	protocols []uint8 // non-empty: the hook sees these protocols only (tcp_connect: TCP)
	variant   uint8   // dup: which call (1 dup, 2 dup2, 3 dup3, 4 fcntl)
	untrack   bool    // __sk_free: a selector of UntrackSock and NoPost only needs no kernel selector
	raw       bool    // raw_syscalls: the points come from the selector's system calls
	skb       bool    // a packet on its way out: the connect and the send it comes from
	bind      bool    // a sockaddr argument is the local address being bound
}

// The accept point's variants (accept.h): the child socket the kernel
// makes for a connection to a listener, and its handshake done.
const (
	acceptChild       = 1 // LISTEN -> SYN_RECV
	acceptEstablished = 2 // SYN_RECV -> ESTABLISHED
)

var (
	tcp = []uint8{unix.IPPROTO_TCP}
	udp = []uint8{unix.IPPROTO_UDP}
	// egress is where ocigate sees a container's outgoing packets: the
	// connect (TCP, connected UDP) and the send (unconnected UDP, and TCP
	// where the backend sees it).
	egress = []Point{PointConnect, PointSendmsg}
)

// kprobeHooks are the kprobe (and fentry) calls by the points they decide
// at (docs/profiles.md, "Hooks").
var kprobeHooks = map[string]hookDef{
	"tcp_connect":                   {points: []Point{PointConnect}, protocols: tcp},
	"security_socket_connect":       {points: []Point{PointConnect}},
	"sys_connect":                   {points: []Point{PointConnect}},
	"security_socket_sendmsg":       {points: []Point{PointSendmsg}},
	"sys_sendto":                    {points: []Point{PointSendmsg}},
	"sys_sendmsg":                   {points: []Point{PointSendmsg}},
	"sys_sendmmsg":                  {points: []Point{PointSendmsg}},
	"tcp_sendmsg":                   {points: []Point{PointSendmsg}, protocols: tcp},
	"udp_sendmsg":                   {points: egress, protocols: udp},
	"security_socket_bind":          {points: []Point{PointBind}, bind: true},
	"sys_bind":                      {points: []Point{PointBind}, bind: true},
	"inet_csk_listen_start":         {points: []Point{PointListen}, protocols: tcp},
	"security_socket_listen":        {points: []Point{PointListen}},
	"sys_listen":                    {points: []Point{PointListen}},
	"security_socket_create":        {points: []Point{PointSockCreate}},
	"sys_socket":                    {points: []Point{PointSockCreate}},
	"sk_alloc":                      {points: []Point{PointSockCreate}},
	"tcp_close":                     {points: []Point{PointClose}, protocols: tcp},
	"tcp_create_openreq_child":      {points: []Point{PointAccept}, protocols: tcp, variant: acceptChild},
	"tcp_set_state":                 {points: []Point{PointAccept}, protocols: tcp, variant: acceptEstablished},
	"sk_filter_trim_cap":            {points: []Point{PointReceive}, skb: true},
	"dev_hard_start_xmit":           {points: []Point{PointXmit}, skb: true},
	"kfree_skb_reason":              {points: []Point{PointDrop}, skb: true},
	"__sk_free":                     {points: []Point{PointClose}, untrack: true},
	"sk_free":                       {points: []Point{PointClose}, untrack: true},
	"ip_output":                     {points: egress, skb: true},
	"ip6_output":                    {points: egress, skb: true},
	"ip_mc_output":                  {points: egress, skb: true},
	"__cgroup_bpf_run_filter_skb":   {points: egress, skb: true},
	"dev_queue_xmit":                {points: egress, skb: true},
	"ip_send_skb":                   {points: egress, protocols: udp, skb: true},
	"ip6_send_skb":                  {points: egress, protocols: udp, skb: true},
	"dup":                           {points: []Point{PointDup}, variant: 1},
	"sys_dup":                       {points: []Point{PointDup}, variant: 1},
	"dup2":                          {points: []Point{PointDup}, variant: 2},
	"sys_dup2":                      {points: []Point{PointDup}, variant: 2},
	"dup3":                          {points: []Point{PointDup}, variant: 3},
	"sys_dup3":                      {points: []Point{PointDup}, variant: 3},
	"fcntl":                         {points: []Point{PointDup}, variant: 4},
	"memfd_create":                  {points: []Point{PointMemfd}},
	"sys_memfd_create":              {points: []Point{PointMemfd}},
	"security_bprm_check":           {points: []Point{PointExec}},
	"security_bprm_creds_from_file": {points: []Point{PointExec}},
	"sys_execve":                    {points: []Point{PointExec}},
	"sys_execveat":                  {points: []Point{PointExec}},
}

// lsmHookDefs are the LSM hooks by the points they decide at: the same
// as the security_ functions of the same name.
var lsmHookDefs = map[string]hookDef{
	"bprm_check_security":  {points: []Point{PointExec}},
	"bprm_creds_from_file": {points: []Point{PointExec}},
	"socket_connect":       {points: []Point{PointConnect}},
	"socket_sendmsg":       {points: []Point{PointSendmsg}},
	"socket_bind":          {points: []Point{PointBind}, bind: true},
	"socket_listen":        {points: []Point{PointListen}},
	"socket_create":        {points: []Point{PointSockCreate}},
}

// tracepointHooks are the tracepoints by the points they decide at.
var tracepointHooks = map[string]hookDef{
	"raw_syscalls/sys_enter":   {raw: true},
	"sched/sched_process_exec": {points: []Point{PointExec}},
}

// hookOf is what hook k becomes.
func hookOf(k *policy.Kprobe) (hookDef, bool) {
	var h hookDef
	var ok bool
	switch k.Hook {
	case policy.HookLSM:
		h, ok = lsmHookDefs[k.Call]
	case policy.HookTracepoint:
		h, ok = tracepointHooks[k.Call]
	default:
		h, ok = kprobeHooks[k.Call]
	}
	return h, ok
}

// untrackOnly reports whether ps only stops tracking sockets (UntrackSock
// and NoPost on __sk_free): ocigate does that on every socket release
// without a selector.
func (h hookDef) untrackOnly(ps *policy.Selector) bool {
	if !h.untrack || ps.ImplicitPost {
		return false
	}
	for _, a := range ps.Actions {
		if a.Action != "UntrackSock" && a.Action != "NoPost" {
			return false
		}
	}
	return true
}

// target is one place a selector goes: a point, the call variant it
// covers there, the protocols the call sees, the system call (raw_syscalls).
type target struct {
	point     Point
	variant   uint8
	protocols []uint8
	syscall   string
}

// targets are the points a selector of hook k decides at: the hook's, or
// for raw_syscalls those of the system calls its matchArgs names.
func (c *compiler) targets(k *policy.Kprobe, ps *policy.Selector, h hookDef, spath string) []target {
	if !h.raw {
		var out []target
		for _, pt := range h.points {
			out = append(out, target{point: pt, variant: h.variant, protocols: h.protocols})
		}
		return out
	}
	var calls []string
	for _, m := range ps.Args {
		if m.Operator == "NotEqual" || m.Operator == "NotInMap" {
			c.errorf(m.Pos, spath, "refused: %s on the system call would take every other system call, and ocigate enforces only %s", m.Operator, strings.Join(rawSyscalls(), ", "))
			return nil
		}
		calls = append(calls, m.Syscalls...)
	}
	if len(calls) == 0 {
		c.errorf(ps.Pos, spath, "tracepoint raw_syscalls/sys_enter for every system call: refused: outside ocigate's domain (network, exec, FD redirection, memfd): name the system calls with matchArgs Equal or InMap (ocigate enforces %s)", strings.Join(rawSyscalls(), ", "))
		return nil
	}
	var out []target
	for _, sc := range calls {
		d := kprobeHooks[syscallCall(sc)]
		for _, pt := range d.points {
			out = append(out, target{point: pt, variant: d.variant, protocols: d.protocols, syscall: sc})
		}
	}
	return out
}

// syscallCall is the kprobe call a system call of raw_syscalls is.
func syscallCall(sc string) string {
	if sc == "sys_fcntl" {
		return "fcntl"
	}
	return sc
}

// rawSyscalls lists the system calls a raw_syscalls selector may name.
func rawSyscalls() []string {
	var out []string
	for name := range kprobeHooks {
		if strings.HasPrefix(name, "sys_") {
			out = append(out, name)
		}
	}
	out = append(out, "sys_fcntl")
	slices.Sort(out)
	return out
}

// hookNotes notes where hook k is carried out differently from Tetragon.
func (c *compiler) hookNotes(k *policy.Kprobe, h hookDef, kpath string) {
	switch {
	case slices.Contains(h.points, PointDrop):
		c.notef(k.Pos, kpath, "%s: ocigate sees the packets of a workload's sockets the kernel drops (the skb:kfree_skb tracepoint, which this function fires) while the packet still names its socket: on the way out, before a device takes it; a packet orphaned at a device (loopback, veth) or on the receive path before its socket is found names no workload and is not seen; the event's process is the current one where the kernel drops in the workload's context, else the socket's creator where the policy tracks sockets (TrackSock); it only reports", k.Call)
	case h.xmits():
		c.notef(k.Pos, kpath, "%s: ocigate sees the packets of a workload's sockets where they leave through a device (the net:net_dev_start_xmit tracepoint, which this function fires per packet); packets no workload's socket sent (forwarded, ARP, the host's) are not seen; the event's process is the sender where the kernel sends in its context, else the socket's creator where the policy tracks sockets (TrackSock); it only reports", k.Call)
	case slices.Contains(h.points, PointReceive):
		c.notef(k.Pos, kpath, "%s: ocigate sees the packets delivered to a workload's sockets (cgroup_skb/ingress, the filter's cgroup hook, or fentry on sk_filter_trim_cap where cgroup_skb programs lack the current-task helpers), in softirq; the event names the socket's workload, and its creator as the process where the policy tracks sockets (TrackSock); it only reports", k.Call)
	case h.skb:
		c.notef(k.Pos, kpath, "%s: ocigate sees the container's packets where they start: at the connect (TCP, and a connected UDP socket, before any packet) and at the send; both IPv4 and IPv6%s", k.Call, ingressNote(k.Call))
	case h.accepts():
		c.notef(k.Pos, kpath, "%s: ocigate sees the connections the kernel accepts for a workload's listener (tcp_create_openreq_child: the child socket; tcp_set_state: TCP_SYN_RECV to TCP_ESTABLISHED only), in softirq; the event names the socket's workload and the process that listens (as TrackSock would), and only reports", k.Call)
	case k.Call == "udp_sendmsg":
		c.notef(k.Pos, kpath, "udp_sendmsg: a connected UDP socket is decided at its connect, before any datagram")
	case k.Hook == policy.HookTracepoint && k.Call == "raw_syscalls/sys_enter":
		c.notef(k.Pos, kpath, "raw_syscalls/sys_enter: ocigate decides at the points of the system calls named (64-bit calls; fcntl: F_DUPFD only)")
	case k.Hook == policy.HookTracepoint:
		c.notef(k.Pos, kpath, "%s: decided at the exec point, where LSM and fmod_ret refuse the exec; a tracepoint cannot refuse: Sigkill as in Tetragon", k.Call)
	}
	if k.Return && k.ReturnArg != nil && k.ReturnArg.Type != "sock" {
		c.notef(k.Pos, join(kpath, "return"), "ocigate decides before the call runs: the event's return value is ocigate's own refusal, when it refuses")
	}
	if h.untrack && reportsRelease(k, h) {
		c.notef(k.Pos, kpath, "%s: reported at the socket's release (the close point); ocigate stops tracking every socket when it is released", k.Call)
	}
}

// reportsRelease reports whether a selector of k (or its implicit Post)
// does more than stop tracking sockets.
func reportsRelease(k *policy.Kprobe, h hookDef) bool {
	if len(k.Selectors) == 0 {
		return true
	}
	for i := range k.Selectors {
		if !h.untrackOnly(&k.Selectors[i]) {
			return true
		}
	}
	return false
}

// ingressNote is the note's tail for a hook that also sees ingress.
func ingressNote(call string) string {
	if call == "__cgroup_bpf_run_filter_skb" {
		return "; ingress packets are not seen"
	}
	return ""
}

// nsChanges compiles matchNamespaceChanges: one entry per selector (the
// kernel holds one set of types and its operator).
func (c *compiler) nsChanges(ps *policy.Selector, s *Selector, h hookDef, path string) {
	for i, m := range ps.NamespaceChanges {
		field := fmt.Sprintf("%s[%d]", join(path, "matchNamespaceChanges"), i)
		if i > 0 {
			c.errorf(m.Pos, field, "a selector holds one matchNamespaceChanges entry")
			return
		}
		if h.softirq() {
			c.errorf(m.Pos, field, "refused: the kernel handles it in softirq, outside the socket's process, whose namespaces are not at hand")
			return
		}
		nm := &NsChangeMatch{Not: m.Operator == "NotIn"}
		for _, ns := range m.Namespaces {
			nm.Mask |= 1 << slices.Index(NamespaceTypes, ns)
		}
		s.NsChanges = nm
	}
}

// capSets are matchCapabilities' types by the kernel's index.
var capSets = map[string]uint8{"Effective": 0, "Inheritable": 1, "Permitted": 2}

// capabilities compiles matchCapabilities: one entry per selector (as in
// Tetragon, one type).
func (c *compiler) capabilities(ps *policy.Selector, s *Selector, h hookDef, path string) {
	for i, m := range ps.Capabilities {
		field := fmt.Sprintf("%s[%d]", join(path, "matchCapabilities"), i)
		if i > 0 {
			c.errorf(m.Pos, field, "a selector holds one matchCapabilities entry (one capability set), as in Tetragon")
			return
		}
		cm := &CapsMatch{Set: capSets[m.Type], Not: m.Operator == "NotIn", NamespaceOnly: m.IsNamespaceCapability}
		for _, cp := range m.Caps {
			cm.Mask |= 1 << uint(cp)
		}
		s.Caps = cm
		if !slices.Contains(h.points, PointExec) {
			continue
		}
		c.notef(m.Pos, field, "matchCapabilities at an exec hook: the fallback decides after the exec (sched_process_exec), with the new program's capabilities")
	}
}

// pids compiles matchPIDs: its entries are ANDed, so NotIn entries
// merge (none of either); at most one In, and one way to read pids.
func (c *compiler) pids(ps *policy.Selector, s *Selector, path string) {
	for i, m := range ps.PIDs {
		field := fmt.Sprintf("%s[%d]", join(path, "matchPIDs"), i)
		pm := &PIDMatch{Not: m.Operator == "NotIn", Values: slices.Clone(m.Values), Namespace: m.IsNamespacePID, Follow: m.FollowForks}
		switch prev := s.PIDs; {
		case prev == nil:
			s.PIDs = pm
			continue
		case !prev.Not || !pm.Not:
			c.errorf(m.Pos, field, "a selector holds one matchPIDs entry with In; NotIn entries may be several")
			return
		case prev.Namespace != pm.Namespace || prev.Follow != pm.Follow:
			c.errorf(m.Pos, field, "matchPIDs entries of one selector must agree on followForks and isNamespacePID")
			return
		}
		s.PIDs.Values = append(s.PIDs.Values, pm.Values...)
	}
	if s.PIDs != nil && len(s.PIDs.Values) > MaxPIDs {
		c.errorf(ps.PIDs[0].Pos, join(path, "matchPIDs"), "%d pids: the kernel side holds %d per selector", len(s.PIDs.Values), MaxPIDs)
	}
}
