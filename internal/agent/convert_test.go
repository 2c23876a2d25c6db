package agent

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/profiles"
)

var at = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// convertFixture is an agent with container "c1" (CRI name "web")
// registered on a fake cgroup.
func convertFixture(t *testing.T) (*Agent, uint64) {
	t.Helper()
	h := newFakeHost(t)
	a := newTestAgent(t, h, newFakeEnforcer())
	r := h.registration("c1", 100, "/pods/c1")
	r.Runtime = "podman"
	r.Annotations = map[string]string{"io.kubernetes.cri.container-name": "web"}
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	return a, r.Identity.CgroupID
}

// connectRaw is what the kernel reports for `nc 127.0.0.2 4444` refused
// by the default profile; the process is this test process.
func connectRaw(cg uint64) *record.RawEvent {
	return &record.RawEvent{BootNs: 1, CgroupID: cg + 7, WorkloadCgroupID: cg, Pid: uint32(os.Getpid()), Tgid: uint32(os.Getpid()),
		Ppid: uint32(os.Getppid()), Profile: 1, Errno: int32(unix.EPERM), Point: profiles.PointConnect,
		Action: profiles.ActionOverride, Selector: 0, Enforced: true, Backend: bpf.BackendFallback, Mechanism: "cgroup_sock_addr",
		Family: unix.AF_INET, SockType: unix.SOCK_STREAM, Protocol: unix.IPPROTO_TCP, HasAddr: true,
		Daddr: netip.MustParseAddr("127.0.0.2"), Dport: 4444, Comm: "nc"}
}

// execRaw is a shell with stdin and stdout on a socket, killed at exec
// (sched_process_exec: the process already is the new image).
func execRaw(cg uint64) *record.RawEvent {
	return &record.RawEvent{BootNs: 2, StartNs: 1, CgroupID: cg, WorkloadCgroupID: cg, Pid: 999999, Tgid: 999999, Profile: 1,
		Point: profiles.PointExec, Action: profiles.ActionSigkill, Selector: 0, Enforced: true, Killed: true,
		Backend: bpf.BackendFallback, Mechanism: "tracepoint_sigkill", StdioInet: 0b011, Comm: "nc", Binary: "bash", Path: "/bin/bash"}
}

func TestConvertConnect(t *testing.T) {
	a, cg := convertFixture(t)
	ev := a.convert(connectRaw(cg), at)
	kp, og := ev.ProcessKprobe, ev.Ocigate
	if kp == nil || og == nil {
		t.Fatalf("event %+v", ev)
	}
	if kp.FunctionName != "tcp_connect" || kp.Action != events.ActionOverride || kp.PolicyName != "ocigate-default" {
		t.Fatalf("kprobe %q %q %q", kp.FunctionName, kp.Action, kp.PolicyName)
	}
	if len(kp.Args) != 1 || kp.Args[0].SockArg == nil ||
		*kp.Args[0].SockArg != (events.SockArg{Family: "AF_INET", Type: "SOCK_STREAM", Protocol: "IPPROTO_TCP", Daddr: "127.0.0.2", Dport: 4444}) {
		t.Fatalf("args %+v", kp.Args)
	}
	// The parent, the go tool running the test, is not in the workload.
	want := events.Ocigate{ContainerID: "c1", Runtime: "podman", Profile: "default", Mode: "enforce", Point: "connect",
		Enforced: true, Verdict: "denied", Errno: int32(unix.EPERM), Backend: "fallback", Mechanism: "cgroup_sock_addr", CgroupID: cg + 7,
		Selector: og.Selector, ParentOutside: true}
	if !reflect.DeepEqual(*og, want) || og.Selector == nil || *og.Selector != 0 {
		t.Fatalf("ocigate part\n got %+v\nwant %+v", *og, want)
	}
	self, _ := os.Executable()
	cwd, _ := os.Getwd()
	p := kp.Process
	if p.Pid.Value != uint32(os.Getpid()) || p.Binary != self || p.Cwd != cwd || p.Docker != "c1" ||
		p.Pod == nil || p.Pod.Container.ID != "c1" || p.Pod.Container.Name != "web" {
		t.Fatalf("process %+v (pod %+v)", p, p.Pod)
	}
	if want := strings.Join(os.Args[1:], " "); p.Arguments != want {
		t.Fatalf("arguments %q, want %q", p.Arguments, want)
	}
	if kp.Parent == nil || kp.Parent.Pid.Value != uint32(os.Getppid()) || kp.Parent.Binary == "" {
		t.Fatalf("parent %+v", kp.Parent)
	}
	if ev.NodeName != a.node || !ev.Time.Equal(at) {
		t.Fatalf("node %q time %v", ev.NodeName, ev.Time)
	}
}

func TestConvertExec(t *testing.T) {
	a, cg := convertFixture(t)
	ev := a.convert(execRaw(cg), at)
	kp := ev.ProcessKprobe
	if kp.FunctionName != "security_bprm_check" || kp.Action != events.ActionSigkill || kp.Parent != nil {
		t.Fatalf("kprobe %+v", kp)
	}
	if ev.Ocigate.Verdict != "killed" || ev.Ocigate.Errno != 0 || ev.Ocigate.Point != "exec" {
		t.Fatalf("ocigate %+v", ev.Ocigate)
	}
	// The executed file, then one int arg per stdio fd on a socket.
	if len(kp.Args) != 3 || kp.Args[0].FileArg == nil || kp.Args[0].FileArg.Path != "/bin/bash" ||
		kp.Args[1].IntArg == nil || kp.Args[1].IntArg.Value != 0 || kp.Args[2].IntArg == nil || kp.Args[2].IntArg.Value != 1 {
		b, _ := json.Marshal(kp.Args)
		t.Fatalf("args %s", b)
	}
	if kp.Process.Binary != "/bin/bash" || kp.Process.Pid.Value != 999999 || kp.Process.ExecID != a.execID(1, 999999) {
		t.Fatalf("process %+v", kp.Process)
	}
	// Without a path the executed file's name stands.
	raw := execRaw(cg)
	raw.Path = ""
	if args := a.convert(raw, at).ProcessKprobe.Args; args[0].FileArg.Path != "bash" {
		t.Fatalf("file arg without a path: %q", args[0].FileArg.Path)
	}
	// Even when the process lives on, the kernel's path is the new image.
	raw = execRaw(cg)
	raw.Tgid, raw.Killed, raw.Path = uint32(os.Getpid()), false, "/usr/bin/dash"
	if p := a.convert(raw, at).ProcessKprobe.Process; p.Binary != "/usr/bin/dash" || p.Arguments != "" {
		t.Fatalf("exec of a live process: %+v", p)
	}
	// An LSM refuses the exec before it happens: the process is still the
	// caller, /proc names it; when it is gone, its comm.
	raw = execRaw(cg)
	raw.Backend, raw.Mechanism, raw.Killed, raw.Tgid, raw.StartNs = bpf.BackendLSM, "bpf_lsm", false, uint32(os.Getpid()), 0
	self, _ := os.Executable()
	if p := a.convert(raw, at).ProcessKprobe.Process; p.Binary != self {
		t.Fatalf("exec refused by the LSM: %+v, want the caller %s", p, self)
	}
	raw.Tgid = 999999
	if p := a.convert(raw, at).ProcessKprobe.Process; p.Binary != "nc" {
		t.Fatalf("exec refused by the LSM, caller gone: %+v, want its comm", p)
	}
}

func TestConvertFallbacks(t *testing.T) {
	a, cg := convertFixture(t)
	raw := connectRaw(cg)
	raw.Selector = 7 // beyond the profile's selectors
	if ev := a.convert(raw, at); ev.ProcessKprobe.FunctionName != "connect" || ev.Ocigate.Profile != "default" {
		t.Fatalf("selector out of range: %q / %q", ev.ProcessKprobe.FunctionName, ev.Ocigate.Profile)
	}
	a, cg = convertFixture(t) // nothing cached yet
	raw = connectRaw(cg)
	raw.Profile = 42
	raw.WorkloadCgroupID = cg + 1
	ev := a.convert(raw, at)
	if ev.ProcessKprobe.FunctionName != "connect" || ev.ProcessKprobe.PolicyName != "" || ev.Ocigate.Profile != "" ||
		ev.Ocigate.ContainerID != "" || ev.ProcessKprobe.Process.Pod != nil {
		t.Fatalf("unknown profile and workload: %+v %+v", ev.ProcessKprobe, ev.Ocigate)
	}
	// A process that is gone is named by the kernel's comm.
	raw = connectRaw(cg)
	raw.Tgid, raw.Ppid = 999999, 0
	if ev := a.convert(raw, at); ev.ProcessKprobe.Process.Binary != "nc" || ev.ProcessKprobe.Parent != nil {
		t.Fatalf("gone process: %+v", ev.ProcessKprobe.Process)
	}
	// Monitor mode: no errno for a refusal that was not carried out.
	raw = connectRaw(cg)
	raw.Enforced, raw.Monitor, raw.Errno = false, true, 0
	if ev := a.convert(raw, at); ev.Ocigate.Errno != 0 || ev.Ocigate.Verdict != "would-deny" || ev.ProcessKprobe.Action != events.ActionOverride {
		t.Fatalf("monitor: %+v", ev.Ocigate)
	}
}

// bind (and listen) report the local address, as Tetragon's saddr/sport;
// the kernel puts it in Saddr/Sport.
func TestConvertBindUsesSource(t *testing.T) {
	a, cg := convertFixture(t)
	raw := connectRaw(cg)
	raw.Point, raw.HasAddr, raw.Daddr, raw.Dport = profiles.PointBind, false, netip.Addr{}, 0
	raw.Saddr, raw.Sport = netip.MustParseAddr("0.0.0.0"), 8080
	sa := a.convert(raw, at).ProcessKprobe.Args[0].SockArg
	if *sa != (events.SockArg{Family: "AF_INET", Type: "SOCK_STREAM", Protocol: "IPPROTO_TCP", Saddr: "0.0.0.0", Sport: 8080}) {
		t.Fatalf("bind sock_arg %+v", *sa)
	}
	raw.Saddr, raw.Sport = netip.Addr{}, 0
	if sa := a.convert(raw, at).ProcessKprobe.Args[0].SockArg; sa.Saddr != "" || sa.Daddr != "" || sa.Sport != 0 || sa.Dport != 0 {
		t.Fatalf("bind without address %+v", *sa)
	}
	// IPv6 and port 0: the address still shows.
	raw.Family, raw.Saddr = unix.AF_INET6, netip.IPv6Unspecified()
	if sa := a.convert(raw, at).ProcessKprobe.Args[0].SockArg; sa.Saddr != "::" || sa.Sport != 0 || sa.Family != "AF_INET6" {
		t.Fatalf("bind [::]:0 %+v", *sa)
	}
}

// A connect from a bound socket has both ends; close events carry the
// socket's state.
func TestConvertSourceAndState(t *testing.T) {
	a, cg := convertFixture(t)
	raw := connectRaw(cg)
	raw.Saddr, raw.Sport, raw.State = netip.MustParseAddr("10.0.0.5"), 40000, 7
	sa := a.convert(raw, at).ProcessKprobe.Args[0].SockArg
	if *sa != (events.SockArg{Family: "AF_INET", Type: "SOCK_STREAM", Protocol: "IPPROTO_TCP", Saddr: "10.0.0.5", Sport: 40000,
		Daddr: "127.0.0.2", Dport: 4444, State: "TCP_CLOSE"}) {
		t.Fatalf("sock_arg %+v", *sa)
	}
	raw = connectRaw(cg)
	raw.Point, raw.Action, raw.Enforced, raw.Errno, raw.State = profiles.PointClose, profiles.ActionPost, false, 0, 1
	ev := a.convert(raw, at)
	if sa := ev.ProcessKprobe.Args[0].SockArg; sa.State != "TCP_ESTABLISHED" || sa.Daddr != "127.0.0.2" {
		t.Fatalf("close sock_arg %+v", *sa)
	}
	// The default profile has no close selector: the point names the call.
	if ev.ProcessKprobe.FunctionName != "close" || ev.Ocigate.Point != "close" || ev.Ocigate.Verdict != "reported" ||
		ev.ProcessKprobe.Action != events.ActionPost || ev.ProcessKprobe.PolicyName != "" {
		t.Fatalf("close event %+v %+v", ev.ProcessKprobe, ev.Ocigate)
	}
	raw.State = 200
	if sa := a.convert(raw, at).ProcessKprobe.Args[0].SockArg; sa.State != "200" {
		t.Fatalf("unknown state %q", sa.State)
	}
}

// policy_name and function_name come from the selector that matched: one
// profile holds several policies.
func TestConvertPolicyNamePerSelector(t *testing.T) {
	a, cg := convertFixture(t)
	for sel, want := range map[int][2]string{
		0: {"ns-host", "tcp_connect"}, 2: {"ns-host", "tcp_connect"},
		3: {"ns-net", "security_socket_connect"}, 5: {"ns-net", "security_socket_connect"},
	} {
		raw := connectRaw(cg)
		raw.Profile, raw.Selector, raw.Group = 3, sel, sel/3
		ev := a.convert(raw, at)
		if ev.ProcessKprobe.PolicyName != want[0] || ev.ProcessKprobe.FunctionName != want[1] || ev.Ocigate.Profile != "ns" ||
			ev.Ocigate.Selector == nil || *ev.Ocigate.Selector != sel {
			t.Errorf("selector %d: policy %q function %q profile %q, want %v", sel, ev.ProcessKprobe.PolicyName,
				ev.ProcessKprobe.FunctionName, ev.Ocigate.Profile, want)
		}
	}
	// The exec selectors of the internal set belong to their policy.
	raw := execRaw(cg)
	raw.Profile = 3
	if ev := a.convert(raw, at); ev.ProcessKprobe.PolicyName != "ns-net" || ev.ProcessKprobe.FunctionName != "security_bprm_check" {
		t.Errorf("exec: policy %q function %q", ev.ProcessKprobe.PolicyName, ev.ProcessKprobe.FunctionName)
	}
}

// Every action a selector can take has its Tetragon name in the event.
func TestConvertActionNames(t *testing.T) {
	a, cg := convertFixture(t)
	for action, want := range map[profiles.Action]string{
		profiles.ActionPost: events.ActionPost, profiles.ActionOverride: events.ActionOverride,
		profiles.ActionSigkill: events.ActionSigkill, profiles.ActionSignal: "KPROBE_ACTION_SIGNAL",
	} {
		raw := connectRaw(cg)
		raw.Action = action
		if action == profiles.ActionSignal {
			raw.Enforced, raw.Errno, raw.SignalPending, raw.Signal = false, 0, true, int(unix.SIGUSR1)
		}
		ev := a.convert(raw, at)
		if ev.ProcessKprobe.Action != want {
			t.Errorf("%v: kprobe action %q, want %q", action, ev.ProcessKprobe.Action, want)
		}
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		name string
		raw  record.RawEvent
		want string
	}{
		{"killed in kernel", record.RawEvent{Action: profiles.ActionSigkill, Enforced: true, Killed: true}, "killed"},
		{"kill left to agent", record.RawEvent{Action: profiles.ActionSigkill, Enforced: true, KillPending: true}, "killed"},
		{"denied", record.RawEvent{Action: profiles.ActionOverride, Enforced: true}, "denied"},
		{"monitor override", record.RawEvent{Action: profiles.ActionOverride, Monitor: true}, "would-deny"},
		{"monitor sigkill", record.RawEvent{Action: profiles.ActionSigkill, Monitor: true}, "would-deny"},
		{"post", record.RawEvent{Action: profiles.ActionPost}, "reported"},
		{"signal", record.RawEvent{Action: profiles.ActionSignal, SignalPending: true, Signal: 10}, "reported"},
		{"notify enforcer", record.RawEvent{Action: profiles.ActionOverride, Enforced: true, SignalPending: true, Signal: 9}, "denied"},
	}
	for _, tt := range tests {
		if got := verdict(&tt.raw); got != tt.want {
			t.Errorf("%s: verdict %q, want %q", tt.name, got, tt.want)
		}
	}
}

// eventStream renders a mixed stream the way the agent writes it.
func eventStream(t *testing.T) []byte {
	a, cg := convertFixture(t)
	packet := &record.RawEvent{BootNs: 3, WorkloadCgroupID: cg, Pid: 999998, Tgid: 999998, Profile: 1,
		Point: profiles.PointSockCreate, Action: profiles.ActionSigkill, Selector: 0, Enforced: true, Killed: true,
		Mechanism: "tracepoint_sigkill", Family: unix.AF_PACKET, SockType: unix.SOCK_RAW, Comm: "tcpdump"}
	udp6 := &record.RawEvent{BootNs: 4, WorkloadCgroupID: cg, Pid: 999997, Tgid: 999997, Profile: 2,
		Point: profiles.PointSendmsg, Action: profiles.ActionOverride, Mechanism: "cgroup_sock_addr",
		Family: unix.AF_INET6, SockType: unix.SOCK_DGRAM, Protocol: unix.IPPROTO_UDP, HasAddr: true,
		Daddr: netip.MustParseAddr("2001:db8::1"), Dport: 53, Comm: "dig"}
	var buf bytes.Buffer
	w := events.NewWriter(&buf)
	for _, raw := range []*record.RawEvent{connectRaw(cg), execRaw(cg), packet, udp6} {
		if err := w.Write(a.convert(raw, at)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jq runs a filter file of testdata/jq over input and returns its output
// lines, each decoded.
func jq(t *testing.T, filter string, input []byte) []map[string]any {
	t.Helper()
	cmd := exec.Command(testenv.NeedTool(t, "jq"), "-c", "-f", filepath.Join("testdata", "jq", filter))
	cmd.Stdin = bytes.NewReader(input)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("jq -f %s failed: %v\nstderr: %s\ninput:\n%s", filter, err, stderr.Bytes(), input)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("jq -f %s printed %q: %v", filter, line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestSeedJQFilters(t *testing.T) {
	stream := eventStream(t)
	files, err := filepath.Glob(filepath.Join("testdata", "jq", "*.jq"))
	if err != nil || len(files) != 9 {
		t.Fatalf("want the 9 seed filters in testdata/jq, found %d (%v)", len(files), err)
	}
	counts := map[string]int{}
	for _, f := range files {
		counts[filepath.Base(f)] = len(jq(t, filepath.Base(f), stream)) // fails on any jq error
	}
	want := map[string]int{"01.jq": 4, "02.jq": 1, "03.jq": 1, "04.jq": 1, "05.jq": 2, "07.jq": 0, "08.jq": 1, "09.jq": 0}
	for f, n := range want {
		if counts[f] != n {
			t.Errorf("%s selected %d events, want %d", f, counts[f], n)
		}
	}
	if counts["06.jq"] < 1 { // bash; the test binary's path may match too
		t.Errorf("06.jq selected %d events, want the bash exec at least", counts["06.jq"])
	}

	if got := jq(t, "02.jq", stream)[0]; got["ocigate"].(map[string]any)["container_id"] != "c1" {
		t.Errorf("02.jq selected %v", got)
	}
	self, _ := os.Executable()
	five := jq(t, "03.jq", stream)[0]
	wantFive := map[string]any{"process": self, "pid": float64(os.Getpid()), "daddr": "127.0.0.2", "dport": float64(4444), "protocol": "IPPROTO_TCP"}
	for k, v := range wantFive {
		if five[k] == nil || five[k] != v {
			t.Errorf("03.jq %s = %v, want %v", k, five[k], v)
		}
	}
	var execKilled bool
	for _, ev := range jq(t, "05.jq", stream) {
		og := ev["ocigate"].(map[string]any)
		if og["point"] == "exec" && og["verdict"] == "killed" {
			execKilled = true
		}
	}
	if !execKilled {
		t.Error("05.jq did not select the exec Sigkill event")
	}
	if got := jq(t, "08.jq", stream)[0]; got["parent"] == nil || got["dport"] != float64(4444) {
		t.Errorf("08.jq = %v", got)
	}
}
