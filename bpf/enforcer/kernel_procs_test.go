package enforcer

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/profiles"
)

// startTicks is a live process's start as /proc tells it, in clock ticks
// (USER_HZ 100): start_boottime / 10 ms.
func startTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// comm may hold spaces: the fields after it follow the last ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	v, err := strconv.ParseUint(f[19], 10, 64) // field 22 of stat
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const nsPerTick = uint64(time.Second / 100)

// waitRecords waits until match accepts n records of kind, then checks
// after a moment that no more came.
func (v eventView) waitRecords(t *testing.T, kind record.Kind, n int, match func(*record.RawEvent) bool) []*record.RawEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(v.records(kind, match)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d %s records within 5s: %s", len(v.records(kind, match)), n, kind,
				dumpRecords(v.records(kind, func(*record.RawEvent) bool { return true })))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	got := v.records(kind, match)
	if len(got) != n {
		t.Fatalf("%d %s records, want %d: %s", len(got), kind, n, dumpRecords(got))
	}
	return got
}

func dumpRecords(evs []*record.RawEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString("\n  " + ev.Kind.String() + " tgid " + strconv.Itoa(int(ev.Tgid)) + " ppid " + strconv.Itoa(int(ev.Ppid)) +
			" path " + ev.Path + " args " + strings.Join(ev.Args, ",") + " exit " + strconv.Itoa(int(ev.ExitCode)))
	}
	return b.String()
}

func tgidIs(pid uint32) func(*record.RawEvent) bool {
	return func(ev *record.RawEvent) bool { return ev.Tgid == pid }
}

func postAllConnects() *profiles.Profile {
	return connectProfile(profiles.Selector{Action: profiles.ActionPost})
}

// A shell started in the workload: its exec (path, argv, parent = the
// test, which is outside), the fork of a child and the child's exec with
// the shell as parent, and both exits with their status.
func TestKernelProcessRecords(t *testing.T) {
	k := newKernel(t)
	k.use(postAllConnects(), [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := k.command(ctx, "/bin/sh", "-c", "/bin/true; exit 3")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("sh: %v", err)
	}
	sh := uint32(cmd.Process.Pid)
	shFile := shellFile(t)
	trueFile, err := filepath.EvalSymlinks("/bin/true")
	if err != nil {
		t.Fatal(err)
	}

	ex := k.log.waitRecords(t, record.KindExec, 1, tgidIs(sh))[0]
	if ex.Path != shFile || !slices.Equal(ex.Args, []string{"/bin/sh", "-c", "/bin/true; exit 3"}) || ex.ArgsCut {
		t.Errorf("shell exec: path %q args %q (cut %v), want %q", ex.Path, ex.Args, ex.ArgsCut, shFile)
	}
	if ex.Ppid != uint32(os.Getpid()) || ex.ParentStartNs/nsPerTick != startTicks(t, os.Getpid()) {
		t.Errorf("shell exec: parent %d started %d, want the test %d started %d ticks", ex.Ppid, ex.ParentStartNs,
			os.Getpid(), startTicks(t, os.Getpid()))
	}
	if ex.StartNs <= ex.ParentStartNs || ex.BootNs < ex.StartNs || ex.UID != uint32(os.Getuid()) || ex.Pid != sh {
		t.Errorf("shell exec: start %d, parent start %d, at %d, uid %d pid %d", ex.StartNs, ex.ParentStartNs, ex.BootNs, ex.UID, ex.Pid)
	}
	if ex.Point != 0 || ex.Action != 0 || ex.Profile != k.id || ex.CgroupID != k.cg {
		t.Errorf("shell exec: %+v", ex)
	}

	// The fork sends no record (track_fork): the child's exec names its
	// parent.
	childOf := func(ev *record.RawEvent) bool { return ev.Ppid == sh }
	child := k.log.waitRecords(t, record.KindExec, 1, childOf)[0]
	if child.Tgid == sh || child.Pid != child.Tgid || child.StartNs < ex.StartNs || child.ParentStartNs != ex.StartNs ||
		child.Path != trueFile || !slices.Equal(child.Args, []string{"/bin/true"}) {
		t.Errorf("child exec %+v, shell started %d", child, ex.StartNs)
	}
	k.log.waitRecords(t, record.KindClone, 0, func(*record.RawEvent) bool { return true })

	exits := k.log.waitRecords(t, record.KindExit, 2, func(*record.RawEvent) bool { return true })
	byPid := map[uint32]*record.RawEvent{exits[0].Tgid: exits[0], exits[1].Tgid: exits[1]}
	if e := byPid[sh]; e == nil || e.ExitCode != 3<<8 || e.StartNs != ex.StartNs || e.Ppid != uint32(os.Getpid()) {
		t.Errorf("shell exit %+v", e)
	}
	if e := byPid[child.Tgid]; e == nil || e.ExitCode != 0 || e.StartNs != child.StartNs || e.Ppid != sh {
		t.Errorf("child exit %+v", e)
	}
}

// A killed process's exit says the signal; a multi-threaded process (the
// Go helper) has one exec and one exit, no clone for its threads, and its
// decisions carry the start its exec record has.
func TestKernelProcessRecordsSignalAndThreads(t *testing.T) {
	k := newKernel(t)
	k.use(postAllConnects(), [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := k.command(ctx, "/bin/sh", "-c", "kill -9 $$")
	if err := cmd.Run(); err == nil {
		t.Fatal("sh was not killed")
	}
	if e := k.log.waitRecords(t, record.KindExit, 1, tgidIs(uint32(cmd.Process.Pid)))[0]; e.ExitCode != uint32(unix.SIGKILL) {
		t.Errorf("killed shell: exit code %#x, want %d", e.ExitCode, unix.SIGKILL)
	}

	pid, _ := k.helper("connect", "tcp4", "127.0.0.1:9")
	ex := k.log.waitRecords(t, record.KindExec, 1, tgidIs(uint32(pid)))[0]
	k.log.waitRecords(t, record.KindExit, 1, tgidIs(uint32(pid)))
	k.log.waitRecords(t, record.KindClone, 0, func(ev *record.RawEvent) bool { return ev.Ppid == uint32(pid) })
	if ev := k.log.wait(t, 1, of(pid, profiles.PointConnect))[0]; ev.StartNs != ex.StartNs || ev.StartNs == 0 {
		t.Errorf("connect decision start %d, exec record's %d", ev.StartNs, ex.StartNs)
	}
}

// A profile with process events off: decisions only.
func TestKernelProcessRecordsOff(t *testing.T) {
	k := newKernel(t)
	p := postAllConnects()
	p.NoProcessEvents = true
	k.use(p, [profiles.NumPoints]uint32{})
	pid, _ := k.helper("connect", "tcp4", "127.0.0.1:9")
	k.log.wait(t, 1, of(pid, profiles.PointConnect))
	for _, kind := range []record.Kind{record.KindExec, record.KindClone, record.KindExit} {
		k.log.waitRecords(t, kind, 0, func(*record.RawEvent) bool { return true })
	}
}

// Processes whose threads all exit at once (exit_group with every thread
// running, on every CPU) have one exit record each: more than one thread
// sees the group's live count at zero by the time it reaches
// sched_process_exit, and only one of them may report.
func TestKernelProcessExitRecordOncePerProcess(t *testing.T) {
	k := newKernel(t)
	k.use(postAllConnects(), [profiles.NumPoints]uint32{})
	const runs, threads = 300, 8
	pids := make([]uint32, 0, runs)
	for range runs {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := k.command(ctx, helperPath(t))
		cmd.Env = append(os.Environ(), exitThreadsEnv+"="+strconv.Itoa(threads))
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("exit threads helper: %v: %s", err, out)
		}
		pids = append(pids, uint32(cmd.Process.Pid))
	}
	exitsOf := func() map[uint32]int {
		n := map[uint32]int{}
		for _, ev := range k.log.records(record.KindExit, func(*record.RawEvent) bool { return true }) {
			n[ev.Tgid]++
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(exitsOf()) < runs && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	exits, bad := exitsOf(), 0
	for _, pid := range pids {
		if exits[pid] != 1 {
			bad++
			t.Errorf("helper %d: %d exit records, want 1", pid, exits[pid])
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d processes of %d threads had other than one exit record", bad, runs, threads+1)
	}
}
