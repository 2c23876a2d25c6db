package enforcer

import (
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/ocigate/ocigate/bpf"
)

// program is one BPF program of a backend and how it attaches.
type program struct {
	name      string // in the ELF
	mechanism string // as reported
	attach    func(p *ebpf.Program, env *attachEnv) (link.Link, error)
}

// candidate is one backend's way of covering a point.
type candidate struct {
	backend  string
	programs []program
}

func (c candidate) mechanism() string {
	names := make([]string, len(c.programs))
	for i, p := range c.programs {
		names[i] = p.mechanism
	}
	return strings.Join(names, "+")
}

// pointPlan lists a point's backends in order of preference.
type pointPlan struct {
	point      string
	candidates []candidate
	// always: attached whatever backend is forced; these points only
	// report (close) or report and kill (dup) the same on every kernel.
	always bool
	// onDemand: a per-packet point, attached only while a loaded profile
	// needs it (ondemand.go).
	onDemand bool
}

// candidate returns the candidate of backend.
func (p pointPlan) candidate(backend string) (candidate, bool) {
	for _, c := range p.candidates {
		if c.backend == backend && len(c.programs) > 0 {
			return c, true
		}
	}
	return candidate{}, false
}

func (p pointPlan) has(backend string) bool {
	for _, c := range p.candidates {
		if c.backend == backend && len(c.programs) > 0 {
			return true
		}
	}
	return false
}

// optional: the fallback has no hook here; other points must attach.
func (p pointPlan) optional() bool { return !p.has(bpf.BackendFallback) }

func cgroupProgram(name, mech string, typ ebpf.AttachType) program {
	return program{name, mech, func(p *ebpf.Program, env *attachEnv) (link.Link, error) {
		return link.AttachCgroup(link.CgroupOptions{Path: env.cgroupRoot, Attach: typ, Program: p})
	}}
}

func lsmProgram(name, hook string) program {
	return program{name, "lsm/" + hook, func(p *ebpf.Program, env *attachEnv) (link.Link, error) {
		if env.lsmActive != nil {
			return nil, env.lsmActive
		}
		return link.AttachLSM(link.LSMOptions{Program: p})
	}}
}

func fmodRetProgram(name, fn string) program {
	return program{name, "fmod_ret/" + fn, func(p *ebpf.Program, _ *attachEnv) (link.Link, error) {
		return link.AttachTracing(link.TracingOptions{Program: p})
	}}
}

func securityCandidates(lsmName, lsmHook, fmodName, fn string) []candidate {
	return []candidate{
		{bpf.BackendLSM, []program{lsmProgram(lsmName, lsmHook)}},
		{bpf.BackendFmodRet, []program{fmodRetProgram(fmodName, fn)}},
	}
}

// pointPlans: every enforcement point with its backends, LSM > fmod_ret >
// fallback. The point names match profiles.Point.String().
var pointPlans = []pointPlan{
	{point: "connect", candidates: append(securityCandidates("lsm_socket_connect", "socket_connect", "fmod_socket_connect", "security_socket_connect"),
		candidate{bpf.BackendFallback, []program{
			cgroupProgram("connect4", "cgroup/connect4", ebpf.AttachCGroupInet4Connect),
			cgroupProgram("connect6", "cgroup/connect6", ebpf.AttachCGroupInet6Connect),
		}})},
	{point: "sendmsg", candidates: append(securityCandidates("lsm_socket_sendmsg", "socket_sendmsg", "fmod_socket_sendmsg", "security_socket_sendmsg"),
		candidate{bpf.BackendFallback, []program{
			cgroupProgram("sendmsg4", "cgroup/sendmsg4", ebpf.AttachCGroupUDP4Sendmsg),
			cgroupProgram("sendmsg6", "cgroup/sendmsg6", ebpf.AttachCGroupUDP6Sendmsg),
		}})},
	{point: "bind", candidates: append(securityCandidates("lsm_socket_bind", "socket_bind", "fmod_socket_bind", "security_socket_bind"),
		candidate{bpf.BackendFallback, []program{
			cgroupProgram("bind4", "cgroup/bind4", ebpf.AttachCGroupInet4Bind),
			cgroupProgram("bind6", "cgroup/bind6", ebpf.AttachCGroupInet6Bind),
		}})},
	{point: "listen", candidates: append(securityCandidates("lsm_socket_listen", "socket_listen", "fmod_socket_listen", "security_socket_listen"),
		candidate{bpf.BackendFallback, nil})},
	{point: "sock_create", candidates: append(securityCandidates("lsm_socket_create", "socket_create", "fmod_socket_create", "security_socket_create"),
		candidate{bpf.BackendFallback, []program{
			cgroupProgram("sock_create", "cgroup/sock_create", ebpf.AttachCGroupInetSockCreate),
			{"socket_enter", "tracepoint/syscalls/sys_enter_socket+SIGKILL", tracepointProgram("", "sys_enter_socket").attach},
		}})},
	// Close events come from the cgroup hook on every kernel.
	{point: "close", always: true, candidates: []candidate{{bpf.BackendFallback, []program{
		cgroupProgram("sock_release", "cgroup/sock_release", ebpf.AttachCgroupInetSockRelease),
	}}}},
	// Accepted connections come from the sock:inet_sock_set_state
	// tracepoint on every kernel; they are reported, never refused.
	{point: "accept", always: true, candidates: []candidate{{bpf.BackendTracepoint, []program{
		{"tcp_state", "tracepoint/sock/inet_sock_set_state", func(p *ebpf.Program, _ *attachEnv) (link.Link, error) {
			return link.Tracepoint("sock", "inet_sock_set_state", p, nil)
		}},
	}}}},
	// Packets delivered to a workload's socket: sk_filter_trim_cap's
	// cgroup hook where cgroup_skb programs get the current-task helpers
	// (6.18), else fentry on sk_filter_trim_cap (Debian's 6.1 and 6.12);
	// the same event, reported, never dropped.
	{point: "receive", always: true, onDemand: true, candidates: []candidate{
		{bpf.BackendFallback, []program{cgroupProgram("recv_skb", "cgroup_skb/ingress", ebpf.AttachCGroupInetIngress)}},
		{bpf.BackendFentry, []program{{"recv_fentry", "fentry/sk_filter_trim_cap", func(p *ebpf.Program, _ *attachEnv) (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: p})
		}}}},
	}},
	// Packets of a workload's sockets at a device (dev_hard_start_xmit's
	// tracepoint), on every kernel; reported, never dropped.
	{point: "xmit", always: true, onDemand: true, candidates: []candidate{{bpf.BackendTracepoint, []program{
		{"dev_xmit", "tracepoint/net/net_dev_start_xmit", func(p *ebpf.Program, _ *attachEnv) (link.Link, error) {
			return link.Tracepoint("net", "net_dev_start_xmit", p, nil)
		}},
	}}}},
	// Packets of a workload's sockets the kernel drops (kfree_skb_reason's
	// tracepoint), on every kernel; reported.
	{point: "drop", always: true, onDemand: true, candidates: []candidate{{bpf.BackendTracepoint, []program{
		{"skb_drop", "tracepoint/skb/kfree_skb", func(p *ebpf.Program, _ *attachEnv) (link.Link, error) {
			return link.Tracepoint("skb", "kfree_skb", p, nil)
		}},
	}}}},
	{point: "dup", always: true, candidates: []candidate{{bpf.BackendTracepoint, []program{
		tracepointProgram("dup2_enter", "sys_enter_dup2"),
		tracepointProgram("dup3_enter", "sys_enter_dup3"),
		tracepointProgram("dup_enter", "sys_enter_dup"),
		tracepointProgram("fcntl_enter", "sys_enter_fcntl"),
	}}}},
	{point: "memfd", always: true, candidates: []candidate{{bpf.BackendTracepoint, []program{
		tracepointProgram("memfd_enter", "sys_enter_memfd_create"),
	}}}},
	// Relayed shells: argv and the shell's peer are known at
	// sched_process_exec; the peer's connect is checked by the connect
	// programs of every backend.
	{point: "relay", always: true, candidates: []candidate{{bpf.BackendTracepoint, []program{
		rawTracepointProgram("relay_exec", "sched_process_exec"),
	}}}},
	{point: "exec", candidates: append(securityCandidates("lsm_bprm_check", "bprm_check_security", "fmod_bprm_check", "security_bprm_check"),
		candidate{bpf.BackendFallback, []program{
			{"process_exec", "raw_tracepoint/sched_process_exec+SIGKILL", rawTracepointProgram("", "sched_process_exec").attach},
		}})},
}

// trackingPrograms run whatever the backends: exec tracking for
// matchBinaries and process events, socket creators for TrackSock.
var trackingPrograms = []program{
	cgroupProgram("track_sock", "cgroup/sock_create(TrackSock)", ebpf.AttachCGroupInetSockCreate),
	rawTracepointProgram("track_exec", "sched_process_exec"),
	rawTracepointProgram("track_fork", "sched_process_fork"),
	rawTracepointProgram("track_exit", "sched_process_exit"),
}

// PointTracking names the tracking programs in Backends. It is no
// enforcement point, but matchBinaries, TrackSock, relays and process
// events need it.
const PointTracking = "tracking"

// trackingPlan attaches the tracking programs on every kernel.
var trackingPlan = pointPlan{point: PointTracking, always: true,
	candidates: []candidate{{bpf.BackendTracepoint, trackingPrograms}}}

// tcpSendPlan adds TCP sends where the fallback's cgroup send hooks see
// only UDP: the sock_send_length tracepoint (6.3+), which reports after
// the send and can only kill.
var tcpSendPlan = pointPlan{point: "sendmsg", always: true,
	candidates: []candidate{{bpf.BackendTracepoint, []program{rawTracepointProgram("tcp_send", "sock_send_length")}}}}

func tracepointProgram(name, event string) program {
	return program{name, "tracepoint/syscalls/" + event, func(p *ebpf.Program, _ *attachEnv) (link.Link, error) {
		return link.Tracepoint("syscalls", event, p, nil)
	}}
}

func rawTracepointProgram(name, tp string) program {
	return program{name, "raw_tracepoint/" + tp, func(p *ebpf.Program, _ *attachEnv) (link.Link, error) {
		return link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp, Program: p})
	}}
}
