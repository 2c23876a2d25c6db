package agent

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/profiles/policy"
)

// hookProfile is profile 77: an lsmhook at exec, a raw_syscalls
// tracepoint at dup, an skb hook at connect with a positive Override.
func hookProfile(a *Agent) {
	p := &profiles.Profile{Name: "hooks", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointExec] = []profiles.Selector{{Policy: "lsm", Call: "bprm_check_security", Action: profiles.ActionOverride, Errno: 1,
		Report: profiles.Report{Hook: policy.HookLSM, Args: []profiles.ArgDecl{{Index: 0, Type: "linux_binprm", Label: "bprm"}},
			Message: "no nop", Tags: []string{"exec"}, ImaHash: true}}}
	p.Points[profiles.PointDup] = []profiles.Selector{{Policy: "killer", Call: "raw_syscalls/sys_enter", Action: profiles.ActionSigkill,
		Report: profiles.Report{Hook: policy.HookTracepoint, Args: []profiles.ArgDecl{{Index: 4, Type: "syscall64"}}, Syscall: "sys_dup2"}}}
	p.Points[profiles.PointConnect] = []profiles.Selector{{Policy: "dns", Call: "ip_output", Action: profiles.ActionOverride, Errno: 1, ReturnValue: 1,
		Report: profiles.Report{Args: []profiles.ArgDecl{{Index: 0, Type: "nop"}, {Index: 2, Type: "skb"}}, RateLimit: time.Minute, RateLimitScope: "process"}}}
	a.byID.Store(uint32(77), p)
}

// An lsmhook's decision is a process_lsm with the declared arguments,
// message, tags and the file's hash; a tracepoint's a process_tracepoint.
func TestConvertHookKinds(t *testing.T) {
	a, cg := convertFixture(t)
	hookProfile(a)
	raw := execRaw(cg)
	self, _ := os.Executable()
	raw.Profile, raw.Action, raw.Killed, raw.Tgid, raw.Path = 77, profiles.ActionOverride, false, uint32(os.Getpid()), self
	ev := a.convert(raw, at)
	if !a.afterConvert(raw, ev) || ev.ProcessLsm == nil || ev.ProcessKprobe != nil || ev.Type() != events.TypeLsm {
		t.Fatalf("want a process_lsm: %+v", ev)
	}
	k := ev.ProcessLsm
	if k.FunctionName != "bprm_check_security" || k.Message != "no nop" || len(k.Tags) != 1 || len(k.Args) != 1 ||
		k.Args[0].LinuxBinprmArg == nil || k.Args[0].LinuxBinprmArg.Path != self || k.Args[0].Label != "bprm" ||
		!strings.HasPrefix(k.ImaHash, "sha256:") || len(k.ImaHash) != 7+64 {
		b, _ := json.Marshal(k)
		t.Fatalf("process_lsm %s", b)
	}
	raw = execRaw(cg)
	raw.Profile, raw.Point, raw.OldFD, raw.NewFD = 77, profiles.PointDup, 3, 1
	ev = a.convert(raw, at)
	k = ev.ProcessTracepoint
	if k == nil || k.Subsys != "raw_syscalls" || k.Event != "sys_enter" || k.FunctionName != "" ||
		len(k.Args) != 1 || k.Args[0].SyscallID == nil || *k.Args[0].SyscallID != (events.SyscallID{ID: 33, ABI: "x64"}) {
		b, _ := json.Marshal(ev)
		t.Fatalf("process_tracepoint %s", b)
	}
}

// A positive Override value: returned by fmod_ret, EPERM elsewhere, and
// the event says which; rateLimit drops the window's repeats.
func TestConvertReturnValueAndRateLimit(t *testing.T) {
	a, cg := convertFixture(t)
	hookProfile(a)
	raw := connectRaw(cg)
	raw.Profile = 77
	ev := a.convert(raw, at)
	k := ev.ProcessKprobe
	if len(k.Args) != 1 || k.Args[0].SkbArg == nil || k.Args[0].SkbArg.Daddr != "127.0.0.2" || k.Args[0].SkbArg.Dport != 4444 ||
		!strings.Contains(ev.Ocigate.Note, "cannot return a positive value") || ev.Ocigate.Errno != int32(unix.EPERM) {
		b, _ := json.Marshal(ev)
		t.Fatalf("fallback event %s", b)
	}
	raw.Backend = bpf.BackendFmodRet
	if ev = a.convert(raw, at); ev.Ocigate.Errno != 0 || !strings.Contains(ev.Ocigate.Note, "returned 1 from ip_output") {
		t.Fatalf("fmod_ret event %+v", ev.Ocigate)
	}
	if !a.afterConvert(raw, ev) {
		t.Fatal("the first event of a window is written")
	}
	if a.afterConvert(raw, a.convert(raw, at)) {
		t.Fatal("the same event again within the window is written")
	}
	raw.Dport = 53
	if !a.afterConvert(raw, a.convert(raw, at)) {
		t.Fatal("another destination within the window is dropped")
	}
}

// imaHash reads the executed file inside the container's root: a
// symlink the container made cannot lead to the host's files.
func TestHashFileInRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(root+"/bin", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root+"/bin/x", []byte("abc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", root+"/etc"); err != nil {
		t.Fatal(err)
	}
	var u userActs
	sum, err := u.hashFile(root, "/bin/x")
	if err != nil || sum != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("sha256 of abc: %q %v", sum, err)
	}
	if sum, err := u.hashFile(root, "/etc/hostname"); err == nil {
		t.Fatalf("hashed the host's /etc/hostname through the container's symlink: %s", sum)
	}
}
