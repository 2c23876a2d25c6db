package agent

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/profiles"
)

var tetragonActions = map[profiles.Action]string{
	profiles.ActionPost:     events.ActionPost,
	profiles.ActionOverride: events.ActionOverride,
	profiles.ActionSigkill:  events.ActionSigkill,
	profiles.ActionSignal:   events.ActionSignal,
	// NotifyEnforcer: the refusal itself, as Tetragon's enforcer does it.
	profiles.ActionNotifyEnforcer: events.ActionNotifyEnforcer,
}

// convert turns a kernel record into a Tetragon-shaped event.
func (a *Agent) convert(raw *bpf.RawEvent, at time.Time) *events.Event {
	og := &events.Ocigate{
		Point: raw.Point.String(), Enforced: raw.Enforced, Backend: raw.Backend,
		Mechanism: raw.Mechanism, CgroupID: raw.CgroupID, Selector: raw.Selector, Verdict: verdict(raw),
		Relay: raw.Relay.String(), PeerPid: raw.Peer,
	}
	kp := &events.Kprobe{Action: tetragonActions[raw.Action], Args: eventArgs(raw)}
	if raw.Action == profiles.ActionOverride && raw.Enforced {
		og.Errno = raw.Errno
	}
	if p, ok := a.profileByID(raw.Profile); ok {
		og.Profile, og.Mode = p.Name, string(p.Mode)
		if sels := p.Points[raw.Point]; raw.Selector < len(sels) {
			kp.FunctionName, kp.PolicyName = sels[raw.Selector].Call, sels[raw.Selector].Policy
		}
	}
	if kp.FunctionName == "" {
		kp.FunctionName = raw.Point.String()
	}
	kp.Process = processOf(raw)
	if raw.Owner != 0 && raw.Owner != raw.Tgid {
		// TrackSock: the socket's creator is the event's process.
		og.CallerPid = raw.Tgid
		kp.Process = liveProcess(raw.Owner, raw.UID)
		kp.Process.ExecID = fmt.Sprintf("%d:sock", raw.Owner)
	}
	if w, ok := a.reg.ByCgroup(raw.WorkloadCgroupID); ok {
		og.ContainerID, og.Runtime = w.ContainerID, w.Runtime
		kp.Process.Docker = w.ContainerID
		kp.Process.Pod = &events.Pod{Namespace: w.PodNamespace, Name: w.Pod,
			Container: events.Container{ID: w.ContainerID, Name: w.Name, Image: events.Image{Name: w.Image}}}
		og.Adopted = w.Adopted
	}
	if raw.Ppid != 0 {
		kp.Parent = &events.Process{Pid: events.Value{Value: raw.Ppid}, Binary: exePath(raw.Ppid)}
	}
	return &events.Event{ProcessKprobe: kp, NodeName: a.node, Time: at, Ocigate: og}
}

func verdict(raw *bpf.RawEvent) string {
	switch {
	case raw.Killed || raw.KillPending && raw.Enforced:
		return "killed"
	case raw.Enforced:
		return "denied"
	case raw.Monitor:
		return "would-deny"
	}
	return "reported"
}

func eventArgs(raw *bpf.RawEvent) []events.Arg {
	if raw.Point == profiles.PointExec || raw.Point == profiles.PointRelay {
		path := raw.Path
		if path == "" {
			path = raw.Binary
		}
		args := []events.Arg{{FileArg: &events.FileArg{Path: path}}}
		for fd := 0; fd < 3; fd++ {
			if raw.StdioInet&(1<<fd) != 0 {
				args = append(args, events.Arg{IntArg: &events.IntArg{Value: int64(fd)}})
			}
		}
		return args
	}
	if raw.Point == profiles.PointMemfd {
		return []events.Arg{{FileArg: &events.FileArg{Path: "memfd:" + raw.Binary}}}
	}
	if raw.Point == profiles.PointDup {
		return []events.Arg{{IntArg: &events.IntArg{Value: int64(raw.OldFD)}}, {IntArg: &events.IntArg{Value: int64(raw.NewFD)}}}
	}
	sa := &events.SockArg{
		Family: events.FamilyName(raw.Family), Type: events.SockTypeName(raw.SockType),
		Protocol: events.ProtocolName(raw.Protocol),
	}
	if raw.HasAddr {
		sa.Daddr, sa.Dport = raw.Daddr.String(), uint32(raw.Dport)
	}
	if raw.Saddr.IsValid() {
		sa.Saddr, sa.Sport = raw.Saddr.String(), uint32(raw.Sport)
	}
	sa.State = events.StateName(raw.State)
	return []events.Arg{{SockArg: sa}}
}

// processOf fills what /proc still tells about the process; a process
// killed in the kernel may be gone, then the kernel's names stand.
func processOf(raw *bpf.RawEvent) events.Process {
	// At sched_process_exec (fallback) the process already is the new
	// image, maybe killed: the kernel's path stands. Everywhere else it is
	// still the caller, and /proc tells about it while it lives.
	// A relayed shell is decided at sched_process_exec too, or at its
	// peer's connect (then the agent kills it: /proc may be gone).
	postExec := raw.Point == profiles.PointExec && raw.Backend == bpf.BackendFallback || raw.Point == profiles.PointRelay
	p := events.Process{Pid: events.Value{Value: raw.Tgid}, UID: events.Value{Value: raw.UID}}
	if !postExec {
		p = liveProcess(raw.Tgid, raw.UID)
	}
	p.ExecID = fmt.Sprintf("%d:%d", raw.Tgid, raw.BootNs)
	if p.Binary == "" && (postExec || raw.Point != profiles.PointExec && raw.Point != profiles.PointRelay) {
		p.Binary = raw.Path
	}
	if p.Binary == "" {
		p.Binary = raw.Comm
	}
	if raw.Args != nil {
		// argv as the kernel read it from the new image: argv[0] aside,
		// as Tetragon's arguments
		p.Arguments = strings.Join(raw.Args[1:], " ")
		if raw.ArgsCut {
			p.Arguments += "..."
		}
	}
	return p
}

// liveProcess is what /proc tells about a process that still runs.
func liveProcess(pid, uid uint32) events.Process {
	cwd, _ := os.Readlink("/proc/" + strconv.Itoa(int(pid)) + "/cwd")
	return events.Process{Pid: events.Value{Value: pid}, UID: events.Value{Value: uid},
		Binary: exePath(pid), Arguments: arguments(pid), Cwd: cwd}
}

func exePath(pid uint32) string {
	s, err := os.Readlink("/proc/" + strconv.Itoa(int(pid)) + "/exe")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(s, " (deleted)")
}

func arguments(pid uint32) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/cmdline")
	if err != nil || len(b) == 0 {
		return ""
	}
	parts := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return strings.Join(parts[1:], " ")
}
