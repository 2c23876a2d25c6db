package enforcer

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/profiles"
)

// busyboxFiles are the files the binary tests exec busybox by: real is
// the file itself (symlinks resolved, e.g. /usr/bin/busybox), link a
// symlink to it, and copy another file with the same bytes.
type busyboxFiles struct{ real, link, copy string }

func busyboxPaths(t *testing.T) busyboxFiles {
	t.Helper()
	testenv.NeedTools(t, "/bin/busybox")
	real, err := filepath.EvalSymlinks("/bin/busybox")
	if err != nil {
		t.Fatalf("busybox: %v", err)
	}
	// Busybox runs argv[1] as the applet when its own name starts with
	// "busybox".
	dir := t.TempDir()
	f := busyboxFiles{real: real, link: filepath.Join(dir, "link", "busybox"), copy: filepath.Join(dir, "busybox-copy")}
	if err := os.Mkdir(filepath.Dir(f.link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, f.link); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.copy, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

// (d) matchBinaries: exec tracking and the In, Prefix and Postfix sets, on
// the file's own path (symlinks resolved); In also on the absolute path
// the exec was given.
func TestKernelBinaries(t *testing.T) {
	bb := busyboxPaths(t)
	k := newKernel(t)
	self := helperPath(t)
	dir := filepath.Dir(bb.copy) + "/" // holds the copy and the symlink
	if strings.HasPrefix(self, dir) || strings.HasSuffix(self, "box") {
		t.Skipf("test binary at %s looks like busybox to the selectors", self)
	}
	type try struct {
		path string // busybox path, or "" for the helper
		want syscall.Errno
	}
	tests := []struct {
		name  string
		match profiles.BinaryMatch
		tries []try
	}{
		{"In", profiles.BinaryMatch{Operator: "In", Values: []string{bb.real}},
			[]try{{bb.real, unix.EPERM}, {bb.link, unix.EPERM}, {bb.copy, unix.ECONNREFUSED}, {"", unix.ECONNREFUSED}}},
		{"In by the exec'd path", profiles.BinaryMatch{Operator: "In", Values: []string{bb.link}},
			[]try{{bb.link, unix.EPERM}, {bb.real, unix.ECONNREFUSED}}},
		{"NotIn", profiles.BinaryMatch{Operator: "NotIn", Values: []string{bb.real, "/nonexistent"}},
			[]try{{bb.real, unix.ECONNREFUSED}, {bb.link, unix.ECONNREFUSED}, {bb.copy, unix.EPERM}, {"", unix.EPERM}}},
		{"Prefix", profiles.BinaryMatch{Operator: "Prefix", Values: []string{dir}},
			[]try{{bb.copy, unix.EPERM}, {bb.link, unix.ECONNREFUSED}, {"", unix.ECONNREFUSED}}},
		{"NotPrefix", profiles.BinaryMatch{Operator: "NotPrefix", Values: []string{dir}},
			[]try{{bb.copy, unix.ECONNREFUSED}, {bb.link, unix.EPERM}, {"", unix.EPERM}}},
		{"Postfix", profiles.BinaryMatch{Operator: "Postfix", Values: []string{"box"}},
			[]try{{bb.real, unix.EPERM}, {bb.link, unix.EPERM}, {bb.copy, unix.ECONNREFUSED}, {"", unix.ECONNREFUSED}}},
		{"NotPostfix", profiles.BinaryMatch{Operator: "NotPostfix", Values: []string{"box"}},
			[]try{{bb.link, unix.ECONNREFUSED}, {bb.copy, unix.EPERM}, {"", unix.EPERM}}},
		{"Postfix of the full path", profiles.BinaryMatch{Operator: "Postfix", Values: []string{bb.real}},
			[]try{{bb.link, unix.EPERM}, {bb.copy, unix.ECONNREFUSED}}},
	}
	for _, tt := range tests {
		k.use(connectProfile(profiles.Selector{Policy: tt.name, Daddr: prefixes("127.0.0.2/32"),
			Binaries: []profiles.BinaryMatch{tt.match}, Action: profiles.ActionOverride}), [profiles.NumPoints]uint32{})
		for _, tr := range tt.tries {
			var (
				pid   int
				errno syscall.Errno
				path  = tr.path
			)
			if path == "" {
				pid, errno = k.helper("connect", "tcp4", "127.0.0.2:4444")
				path = self
			} else {
				pid, errno = k.busybox(path, "127.0.0.2", 4444)
			}
			wantErrno(t, tt.name+": "+path, errno, tr.want)
			if tr.want != unix.EPERM {
				k.log.wait(t, 0, of(pid, profiles.PointConnect))
				continue
			}
			ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]
			want := path // the file's own path, as far as the event's field holds it
			if path == bb.link {
				want = bb.real
			}
			if len(want) > PathLen-1 {
				want = want[:PathLen-1]
			}
			if ev.Path != want || !ev.Enforced {
				t.Fatalf("%s: event path %q, want %q: %+v", tt.name, ev.Path, want, ev)
			}
		}
	}
}

// The binary is looked up for a decision when a selector first gets to
// its binary predicates (after its socket predicates held), and for that
// decision only: a selector whose address does not match leaves it to
// the next, and the next connect, by another program, asks again.
func TestKernelBinariesLookedUpWhenNeeded(t *testing.T) {
	bb := busyboxPaths(t)
	k := newKernel(t)
	bin := []profiles.BinaryMatch{{Operator: "In", Values: []string{bb.real}}}
	k.use(connectProfile(
		profiles.Selector{Policy: "elsewhere", Group: 0, Daddr: prefixes("127.0.0.3/32"), Binaries: bin, Action: profiles.ActionOverride},
		profiles.Selector{Policy: "here", Group: 1, Daddr: prefixes("127.0.0.2/32"), Binaries: bin, Action: profiles.ActionOverride},
	), [profiles.NumPoints]uint32{})
	for i := 0; i < 2; i++ {
		_, errno := k.helper("connect", "tcp4", "127.0.0.2:4444")
		wantErrno(t, "the helper", errno, unix.ECONNREFUSED)
		pid, errno := k.busybox(bb.real, "127.0.0.2", 4444)
		wantErrno(t, "busybox", errno, unix.EPERM)
		if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.Selector != 1 || !ev.Enforced {
			t.Fatalf("busybox: event %+v", ev)
		}
	}
}

// PathLen is the size of the event's path field.
const PathLen = len(bpf.FallbackEvent{}.Path)

// A process whose exec was not seen (it joined the workload later) has
// no known binary: neither In nor NotIn matches it.
func TestKernelBinariesUnknownProcess(t *testing.T) {
	testenv.NeedTools(t, "bash") // for /dev/tcp
	k := newKernel(t)
	for _, op := range []string{"In", "NotIn"} {
		k.use(connectProfile(profiles.Selector{Daddr: prefixes("127.0.0.2/32"),
			Binaries: []profiles.BinaryMatch{{Operator: op, Values: []string{"/usr/bin/bash", "/bin/bash"}}},
			Action:   profiles.ActionOverride}), [profiles.NumPoints]uint32{})
		script := "echo $$ > " + filepath.Join(k.dir, "cgroup.procs") + " && exec 3<>/dev/tcp/127.0.0.2/4444"
		cmd := exec.Command("bash", "-c", script)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "Connection refused") {
			t.Fatalf("%s: bash outside tracking: %v %q, want Connection refused", op, err, out)
		}
		if _, ok := k.e.procOf(uint32(cmd.Process.Pid)); ok {
			t.Fatalf("procs has an entry for a process exec'd outside the workload")
		}
		k.log.wait(t, 0, of(cmd.Process.Pid, profiles.PointConnect))
	}
}

// (d) Exec tracking: the exec'd path and its hash; a fork inherits its
// parent's entry; exit removes it.
func TestKernelExecForkTracking(t *testing.T) {
	bb := busyboxPaths(t)
	bin := bb.link // tracked as the file it names
	k := newKernel(t)
	k.use(connectProfile(profiles.Selector{Action: profiles.ActionPost}), [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The subshell forks and runs the read builtin: no exec.
	cmd := k.command(ctx, bin, "sh", "-c", "exec 3<&0; (read x <&3) & echo $!; wait")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("read child pid: %v", err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("child pid %q", line)
	}
	parent := cmd.Process.Pid
	for _, pid := range []int{parent, child} {
		p, ok := k.e.procOf(uint32(pid))
		if !ok {
			t.Fatalf("no procs entry for pid %d (parent %d)", pid, parent)
		}
		if procPath(p) != bb.real || p.Hash != bpf.PathHash(bb.real) || p.Len != uint32(len(bb.real)) || p.AliasHash != bpf.PathHash(bin) {
			t.Fatalf("procs[%d] = %q hash %#x alias %#x len %d, want %q hash %#x alias %#x len %d", pid, procPath(p), p.Hash, p.AliasHash, p.Len,
				bb.real, bpf.PathHash(bb.real), bpf.PathHash(bin), len(bb.real))
		}
	}
	stdin.Close()
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sh: %v", err)
	}
	for _, pid := range []int{parent, child} {
		if _, ok := k.e.procOf(uint32(pid)); ok {
			t.Errorf("procs entry of pid %d left after exit", pid)
		}
	}
	// The helper's own exec is tracked under its path.
	self := helperPath(t)
	pid, _ := k.helper("connect", "tcp4", "127.0.0.3:4444")
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; !strings.HasPrefix(self, ev.Path) || ev.Path == "" {
		t.Fatalf("helper event path %q, want %q", ev.Path, self)
	}
}

// Exec: the fallback kills the new image before it runs; the path
// predicates see the file being exec'd.
func TestKernelExecSigkill(t *testing.T) {
	bb := busyboxPaths(t)
	k := newKernel(t)
	p := &profiles.Profile{Name: "exec", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointExec] = []profiles.Selector{{Policy: "no-busybox", Call: "security_bprm_check",
		Paths: []profiles.BinaryMatch{{Operator: "In", Values: []string{bb.real}}}, Action: profiles.ActionSigkill}}
	k.use(p, [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// By its own path and through a symlink: killed, reported as the file.
	for _, path := range []string{bb.real, bb.link} {
		cmd := k.command(ctx, path, "true")
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("%s true: %v, want killed by SIGKILL", path, err)
		}
		ev := k.log.wait(t, 1, of(cmd.Process.Pid, profiles.PointExec))[0]
		if !ev.Killed || !ev.Enforced || ev.Action != profiles.ActionSigkill || ev.Path != bb.real || ev.Binary != "busybox" ||
			ev.Mechanism != "tracepoint_sigkill" || !slices.Equal(ev.Args, []string{path, "true"}) || ev.ArgsCut {
			t.Fatalf("exec event %+v", ev)
		}
	}
	// Another file runs.
	cmd := k.command(ctx, bb.copy, "true")
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s true: %v", bb.copy, err)
	}
	k.log.wait(t, 0, of(cmd.Process.Pid, profiles.PointExec))
}

// Exec, as Tetragon: matchBinaries names the program that calls exec,
// the path predicates the file exec'd (its own path, or for Equal and
// Prefix the absolute path exec was given).
func TestKernelExecCallerAndPath(t *testing.T) {
	bb := busyboxPaths(t)
	k := newKernel(t)
	p := &profiles.Profile{Name: "exec-caller", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointExec] = []profiles.Selector{
		{Policy: "caller", Call: "bprm_check_security", Binaries: []profiles.BinaryMatch{{Operator: "In", Values: []string{bb.real}}},
			Paths: []profiles.BinaryMatch{{Operator: "In", Values: []string{bb.copy}}}, Action: profiles.ActionSigkill},
		{Policy: "prefix", Call: "sys_execve", Group: 1,
			Paths: []profiles.BinaryMatch{{Operator: "Prefix", Values: []string{filepath.Dir(bb.link) + "/"}}}, Action: profiles.ActionSigkill},
	}
	k.use(p, [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	run := func(caller, script string) error {
		return k.command(ctx, caller, "sh", "-c", script).Run()
	}
	// busybox runs the copy: killed (busybox sh execs a last command
	// itself; a shell that forks reports 137).
	if err := run(bb.real, bb.copy+" true"); !killed(err) {
		t.Fatalf("busybox running the copy: %v, want the copy killed", err)
	}
	// The copy runs the copy: its caller is not busybox.
	if err := run(bb.copy, bb.copy+" true"); err != nil {
		t.Fatalf("the copy running the copy: %v", err)
	}
	// Through a symlink in the prefix directory: the path exec was given
	// is under the prefix, the file's own path is not; Prefix takes both.
	if err := run(bb.copy, bb.link+" true"); !killed(err) {
		t.Fatalf("exec through %s: %v, want killed", bb.link, err)
	}
}

// A Go program's exec often runs on a thread that is not the leader: the
// leader's exit in that exec (de_thread) is not the process's, so exec
// tracking keeps the process's record and matchBinaries still names the
// program calling exec.
func TestKernelExecFromThreadKeepsTheCaller(t *testing.T) {
	bb := busyboxPaths(t)
	k := newKernel(t)
	p := &profiles.Profile{Name: "exec-thread", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointExec] = []profiles.Selector{
		{Policy: "caller", Call: "bprm_check_security", Binaries: []profiles.BinaryMatch{{Operator: "In", Values: []string{helperPath(t)}}},
			Paths: []profiles.BinaryMatch{{Operator: "In", Values: []string{bb.copy}}}, Action: profiles.ActionSigkill},
	}
	k.use(p, [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 5; i++ {
		cmd := k.command(ctx, helperPath(t))
		cmd.Env = append(os.Environ(), execThreadEnv+"="+bb.copy)
		if out, err := cmd.CombinedOutput(); !killed(err) {
			t.Fatalf("run %d: exec of %s from a thread: %v (%s), want killed: the caller was not known", i, bb.copy, err, out)
		}
	}
}

// killed reports whether a command (or the shell it ran) was killed by
// SIGKILL.
func killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws := ee.Sys().(syscall.WaitStatus)
	return ws.Signaled() && ws.Signal() == syscall.SIGKILL || ee.ExitCode() == 128+int(syscall.SIGKILL)
}

// matchCapabilities and matchPIDs, as Tetragon: the caller's effective
// set (root's holds CAP_NET_ADMIN), isNamespaceCapability (only outside
// the host's user namespace), its pid or (followForks) an ancestor's,
// isNamespacePID (a host process has none).
func TestKernelCapsAndPids(t *testing.T) {
	k := newKernel(t)
	p := &profiles.Profile{Name: "caps-pids", Mode: profiles.ModeEnforce}
	deny := func(group int, addr string, s profiles.Selector) profiles.Selector {
		s.Policy, s.Call, s.Group, s.Daddr = "caps-pids", "tcp_connect", group, prefixes(addr+"/32")
		s.Action, s.Errno = profiles.ActionOverride, int(syscall.EACCES)
		return s
	}
	netAdmin := uint64(1) << 12
	p.Points[profiles.PointConnect] = []profiles.Selector{
		deny(0, "127.0.0.5", profiles.Selector{Caps: &profiles.CapsMatch{Mask: netAdmin}}),
		deny(1, "127.0.0.6", profiles.Selector{Caps: &profiles.CapsMatch{Mask: netAdmin, NamespaceOnly: true}}),
		deny(2, "127.0.0.7", profiles.Selector{PIDs: &profiles.PIDMatch{Values: []uint32{uint32(os.Getpid())}, Follow: true}}),
		deny(3, "127.0.0.8", profiles.Selector{PIDs: &profiles.PIDMatch{Values: []uint32{uint32(os.Getpid())}}}),
		deny(4, "127.0.0.9", profiles.Selector{PIDs: &profiles.PIDMatch{Values: []uint32{1}, Namespace: true, Follow: true}}),
		deny(5, "127.0.0.10", profiles.Selector{Caps: &profiles.CapsMatch{Mask: netAdmin, Not: true}}),
	}
	k.use(p, [profiles.NumPoints]uint32{})
	for addr, want := range map[string]syscall.Errno{
		"127.0.0.5":  syscall.EACCES, // root holds CAP_NET_ADMIN
		"127.0.0.6":  0,              // ... in the host's user namespace
		"127.0.0.7":  syscall.EACCES, // the helper is this process's child
		"127.0.0.8":  0,              // ... not this process
		"127.0.0.9":  0,              // host processes have no namespace pid
		"127.0.0.10": 0,
	} {
		if _, errno := k.helper("connect", "tcp4", addr+":4444"); errno != want && !(want == 0 && errno == syscall.ECONNREFUSED) {
			t.Errorf("connect %s: errno %v, want %v", addr, errno, want)
		}
	}
}
