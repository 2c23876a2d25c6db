package agent

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/internal/eventhub"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/profiles"
)

// fakeProc writes what /proc tells of a process into the fake host's
// proc root: stat (parent, start in ticks), status (uid), exe, cwd and
// cmdline.
func (h *fakeHost) fakeProc(pid, ppid uint32, startTicks uint64, exe, cwd string, argv ...string) {
	h.t.Helper()
	dir := filepath.Join(h.proc, strconv.Itoa(int(pid)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	// 52 fields; comm with a space and a ')' to test the parsing.
	fields := make([]string, 50)
	for i := range fields {
		fields[i] = "0"
	}
	fields[0], fields[1], fields[19] = "S", strconv.Itoa(int(ppid)), strconv.FormatUint(startTicks, 10)
	stat := fmt.Sprintf("%d (a b) c) %s\n", pid, strings.Join(fields, " "))
	files := map[string]string{"stat": stat, "status": "Name:\tx\nUid:\t1000\t1000\t1000\t1000\n",
		"cmdline": strings.Join(argv, "\x00") + "\x00"}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"exe": exe, "cwd": cwd} {
		os.Remove(filepath.Join(dir, name))
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			h.t.Fatal(err)
		}
	}
}

const tick = uint64(10 * time.Millisecond)

// procFixture is an agent reading the fake host's /proc, with container
// c1 (a CRI pod's container) registered on /pods/c1, and the runtime
// (pid 50, outside) that starts its first process (pid 100).
func procFixture(t *testing.T) (*Agent, *fakeHost, uint64) {
	t.Helper()
	h := newFakeHost(t)
	a, err := New(Config{Enforcer: newFakeEnforcer(), Resolver: h.resolver(), Catalog: testCatalog(t), ProcRoot: h.proc})
	if err != nil {
		t.Fatal(err)
	}
	r := h.registration("c1", 100, "/pods/c1")
	r.Annotations = map[string]string{"io.kubernetes.cri.container-name": "web", "io.kubernetes.cri.sandbox-name": "web-7d9",
		"io.kubernetes.cri.sandbox-namespace": "shop", "io.kubernetes.cri.image-name": "docker.io/library/python:3.11"}
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	h.process(50, "/system.slice/containerd.service")
	h.fakeProc(50, 1, 100, "/usr/sbin/runc", "/run/runc", "runc", "init")
	h.fakeProc(100, 50, 200, "/usr/bin/bash", "/srv", "bash", "-c", "x")
	return a, h, r.Identity.CgroupID
}

func execRecord(cg uint64, tgid, ppid uint32, boot, start, parentStart uint64, path string, argv ...string) *record.RawEvent {
	return &record.RawEvent{Kind: record.KindExec, BootNs: boot, CgroupID: cg, WorkloadCgroupID: cg, Pid: tgid, Tgid: tgid, Ppid: ppid,
		UID: 1000, Profile: 1, StartNs: start, ParentStartNs: parentStart, Path: path, Args: argv, Comm: filepath.Base(path)}
}

func wantExecID(t *testing.T, a *Agent, got string, ns uint64, pid uint32) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(got)
	if want := fmt.Sprintf("%s:%d:%d", a.node, ns, pid); err != nil || string(b) != want {
		t.Errorf("exec_id %q = %q, want base64 of %q", got, b, want)
	}
}

// The container's first process: its parent is the runtime, read from
// /proc and marked outside; the pod comes from the registration.
func TestProcessExecOfFirstProcess(t *testing.T) {
	a, _, cg := procFixture(t)
	ev := a.onRecord(execRecord(cg, 100, 50, 1000*tick, 200*tick, 100*tick, "/usr/bin/bash", "bash", "-c", "x"), at)
	if ev == nil || ev.ProcessExec == nil || ev.Type() != events.TypeExec {
		t.Fatalf("event %+v", ev)
	}
	p, parent := ev.ProcessExec.Process, ev.ProcessExec.Parent
	wantExecID(t, a, p.ExecID, 1000*tick, 100)
	if p.Pid.Value != 100 || p.UID.Value != 1000 || p.Binary != "/usr/bin/bash" || p.Arguments != "-c x" || p.Cwd != "/srv" ||
		p.Flags != "execve" || p.Docker != "c1" || !p.StartTime.Equal(a.clock.wall(1000*tick)) {
		t.Errorf("process %+v", p)
	}
	wantPod := events.Pod{Namespace: "shop", Name: "web-7d9",
		Container: events.Container{ID: "c1", Name: "web", Image: events.Image{Name: "docker.io/library/python:3.11"}}}
	if p.Pod == nil || !reflect.DeepEqual(*p.Pod, wantPod) {
		t.Errorf("pod %+v", p.Pod)
	}
	if parent == nil || parent.Binary != "/usr/sbin/runc" || parent.Arguments != "init" || parent.Flags != "procFS" ||
		parent.Pid.Value != 50 || parent.Cwd != "/run/runc" || parent.Docker != "" || parent.Pod != nil || parent.UID.Value != 1000 {
		t.Fatalf("parent %+v", parent)
	}
	wantExecID(t, a, parent.ExecID, 100*tick, 50)
	if p.ParentExecID != parent.ExecID {
		t.Errorf("parent_exec_id %q, parent's %q", p.ParentExecID, parent.ExecID)
	}
	og := ev.Ocigate
	if og.ContainerID != "c1" || og.Profile != "default" || og.Mode != "enforce" || og.Enforced || !og.ParentOutside ||
		og.Backend != "" || og.Point != "" || og.Selector != nil || og.Verdict != "" || og.CgroupID != cg {
		t.Errorf("ocigate %+v", og)
	}
	// The runtime is not cached: its exit is never reported.
	if _, ok := a.procs.Get(50, 0); ok {
		t.Error("the runtime was cached")
	}
}

// The runtime exited before the agent read the first process's exec (a
// short-lived container): the parent is named by the task name the
// record carries, with its pid and start, not left blank.
func TestProcessExecParentGone(t *testing.T) {
	a, _, cg := procFixture(t)
	rec := execRecord(cg, 100, 51, 1000*tick, 200*tick, 100*tick, "/usr/bin/bash", "bash", "-c", "x") // 51: no /proc entry
	rec.AncestorComm[0] = "runc"
	ev := a.onRecord(rec, at)
	if ev == nil || ev.ProcessExec == nil {
		t.Fatalf("event %+v", ev)
	}
	parent := ev.ProcessExec.Parent
	if parent == nil || parent.Binary != "runc" || parent.Pid.Value != 51 || parent.Flags != "" {
		t.Fatalf("parent %+v", parent)
	}
	wantExecID(t, a, parent.ExecID, 100*tick, 51)
}

// Lineage through clone and exec; exec_ids stable across events; late
// events after the exit; exits with signal and status.
func TestProcessLineage(t *testing.T) {
	a, h, cg := procFixture(t)
	bash := a.onRecord(execRecord(cg, 100, 50, 1000*tick, 200*tick, 100*tick, "/usr/bin/bash", "bash", "-c", "x"), at).ProcessExec.Process
	if ev := a.onRecord(&record.RawEvent{Kind: record.KindClone, BootNs: 1001 * tick, WorkloadCgroupID: cg, Tgid: 101, Pid: 101, Ppid: 100,
		StartNs: 300 * tick, ParentStartNs: 200 * tick, Path: "/usr/bin/bash", UID: 1000, Profile: 1}, at); ev != nil {
		t.Fatalf("a clone made an event: %+v", ev)
	}
	// The forked child connects: from the cache, no /proc (it has none).
	connect := childConnect(cg)
	kp := a.convert(connect, at).ProcessKprobe
	wantExecID(t, a, kp.Process.ExecID, 300*tick, 101)
	if kp.Process.Binary != "/usr/bin/bash" || kp.Process.Arguments != "-c x" || kp.Process.Flags != "clone" ||
		kp.Parent == nil || kp.Parent.ExecID != bash.ExecID || kp.Process.ParentExecID != bash.ExecID || kp.Process.Docker != "c1" {
		t.Fatalf("forked child %+v, parent %+v", kp.Process, kp.Parent)
	}
	// After the clone, exec: the parent is the one that forked.
	py := a.onRecord(execRecord(cg, 101, 100, 1003*tick, 300*tick, 200*tick, "/usr/bin/python3.11", "python3", "-c", "pass"), at).ProcessExec
	if py.Parent == nil || py.Parent.ExecID != bash.ExecID || py.Process.Arguments != "-c pass" {
		t.Fatalf("python3 exec %+v parent %+v", py.Process, py.Parent)
	}
	// Exec of an exec: the parent is the program before, as Tetragon has it.
	sh := a.onRecord(execRecord(cg, 101, 100, 1004*tick, 300*tick, 200*tick, "/usr/bin/dash", "/bin/sh", "-i"), at).ProcessExec
	if sh.Parent == nil || sh.Parent.ExecID != py.Process.ExecID || sh.Parent.Binary != "/usr/bin/python3.11" {
		t.Fatalf("sh exec parent %+v", sh.Parent)
	}
	connect.BootNs = 1005 * tick
	kp = a.convert(connect, at).ProcessKprobe
	if kp.Process.ExecID != sh.Process.ExecID || kp.Process.Binary != "/usr/bin/dash" || kp.Parent.ExecID != py.Process.ExecID {
		t.Fatalf("connect of sh: %+v parent %+v", kp.Process, kp.Parent)
	}
	live, liveParent := kp.Process, *kp.Parent
	// Killed: signal, no status.
	exit := a.onRecord(&record.RawEvent{Kind: record.KindExit, BootNs: 1006 * tick, WorkloadCgroupID: cg, CgroupID: cg, Tgid: 101, Pid: 101,
		StartNs: 300 * tick, ExitCode: uint32(unix.SIGKILL), Profile: 1}, at)
	if x := exit.ProcessExit; x == nil || x.Process.ExecID != sh.Process.ExecID || x.Parent.ExecID != py.Process.ExecID ||
		x.Signal != "SIGKILL" || x.Status != 0 || exit.Type() != events.TypeExit || exit.Ocigate.ContainerID != "c1" {
		t.Fatalf("exit %+v", exit.ProcessExit)
	}
	// A late event of the exited process still finds it: the same
	// process and parent as while it ran (the cache keeps it compact).
	connect.BootNs = 1007 * tick
	kp = a.convert(connect, at).ProcessKprobe
	late, lateParent := kp.Process, *kp.Parent
	for _, p := range []*events.Process{&live, &liveParent, &late, &lateParent} {
		p.Thaw()
	}
	if !reflect.DeepEqual(late, live) || !reflect.DeepEqual(lateParent, liveParent) {
		t.Fatalf("late event: %+v parent %+v\nwant %+v parent %+v", late, lateParent, live, liveParent)
	}
	// exit(3)
	exit = a.onRecord(&record.RawEvent{Kind: record.KindExit, BootNs: 1008 * tick, WorkloadCgroupID: cg, Tgid: 100, Pid: 100,
		StartNs: 200 * tick, ExitCode: 3 << 8, Profile: 1}, at)
	if x := exit.ProcessExit; x.Process.ExecID != bash.ExecID || x.Signal != "" || x.Status != 3 || x.Parent.Binary != "/usr/sbin/runc" ||
		!exit.Ocigate.ParentOutside {
		t.Fatalf("exit of bash %+v", x)
	}
	// A process the agent never saw: what the kernel says.
	os.RemoveAll(filepath.Join(h.proc, "100"))
	exit = a.onRecord(&record.RawEvent{Kind: record.KindExit, BootNs: 1009 * tick, WorkloadCgroupID: cg, Tgid: 77, Pid: 77,
		StartNs: 7 * tick, ExitCode: 1 << 8, Path: "/usr/bin/sleep", Profile: 1}, at)
	if x := exit.ProcessExit; x.Process.Binary != "/usr/bin/sleep" || x.Status != 1 || x.Process.Docker != "c1" || x.Parent != nil {
		t.Fatalf("exit of an unknown process %+v", x)
	}
	wantExecID(t, a, exit.ProcessExit.Process.ExecID, 7*tick, 77)
}

// A parent in the workload that started before it was registered (or
// before the agent): read from /proc once, then cached; not outside.
func TestProcessParentInWorkload(t *testing.T) {
	a, h, cg := procFixture(t)
	h.process(90, "/pods/c1/sub")
	h.fakeProc(90, 50, 150, "/usr/bin/tini", "/", "tini", "--", "app")
	ev := a.onRecord(execRecord(cg, 110, 90, 2000*tick, 400*tick, 150*tick, "/usr/bin/app", "app"), at)
	parent := ev.ProcessExec.Parent
	if parent == nil || parent.Binary != "/usr/bin/tini" || parent.Flags != "procFS" || parent.Docker != "c1" || ev.Ocigate.ParentOutside {
		t.Fatalf("parent %+v, outside %v", parent, ev.Ocigate.ParentOutside)
	}
	os.RemoveAll(filepath.Join(h.proc, "90"))
	ev = a.onRecord(execRecord(cg, 111, 90, 2001*tick, 401*tick, 150*tick, "/usr/bin/app", "app"), at)
	if p := ev.ProcessExec.Parent; p == nil || p.ExecID != parent.ExecID || p.Binary != "/usr/bin/tini" {
		t.Fatalf("second child's parent %+v (not cached?)", p)
	}
	// A parent that is gone: its pid and start, nothing made up.
	ev = a.onRecord(execRecord(cg, 112, 91, 2002*tick, 402*tick, 160*tick, "/usr/bin/app", "app"), at)
	if p := ev.ProcessExec.Parent; p == nil || p.Binary != "" || p.Pid.Value != 91 || p.Flags != "" {
		t.Fatalf("gone parent %+v", p)
	} else {
		wantExecID(t, a, p.ExecID, 160*tick, 91)
	}
	// A pid reused since: /proc's start is not the record's.
	h.fakeProc(92, 50, 999, "/usr/bin/other", "/", "other")
	ev = a.onRecord(execRecord(cg, 113, 92, 2003*tick, 403*tick, 170*tick, "/usr/bin/app", "app"), at)
	if p := ev.ProcessExec.Parent; p.Binary != "" {
		t.Fatalf("reused pid read as the parent: %+v", p)
	}
}

// Process events go to the file, the hub and the metrics like decisions;
// a clone is not an event.
func TestRunEventsProcessRecords(t *testing.T) {
	a, _, cg := procFixture(t)
	src := newFakeSource(
		execRecord(cg, 100, 50, 1000*tick, 200*tick, 100*tick, "/usr/bin/bash", "bash"),
		&record.RawEvent{Kind: record.KindClone, BootNs: 1001 * tick, WorkloadCgroupID: cg, Tgid: 101, Ppid: 100, StartNs: 300 * tick,
			ParentStartNs: 200 * tick, Profile: 1},
		&record.RawEvent{Kind: record.KindExit, BootNs: 1002 * tick, WorkloadCgroupID: cg, Tgid: 101, StartNs: 300 * tick, Profile: 1},
	)
	src.drain = true
	var out syncBuffer
	a.RunEvents(context.Background(), src, events.NewWriter(&out))
	var types []string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var ev events.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		types = append(types, ev.Type())
	}
	if strings.Join(types, ",") != "process_exec,process_exit" {
		t.Fatalf("written %v:\n%s", types, out.String())
	}
	if recent, _, _ := a.hub.Subscribe(eventhub.Filter{Types: []string{events.TypeExit}}, -1, false); len(recent) != 1 {
		t.Fatalf("hub has %d exits", len(recent))
	}
	m := scrape(t, a)
	if m[`ocigate_events_total{action="",policy="",type="process_exec"}`] != "1" ||
		m[`ocigate_events_total{action="",policy="",type="process_exit"}`] != "1" {
		t.Fatalf("metrics: %v", m)
	}
}

// --events-types: the file gets the types asked for, the hub every one.
func TestSinkTypes(t *testing.T) {
	h := newFakeHost(t)
	if _, err := New(Config{Enforcer: newFakeEnforcer(), Resolver: h.resolver(), Catalog: testCatalog(t),
		SinkTypes: []string{"process_kprobe", "process_fork"}}); err == nil || !strings.Contains(err.Error(), `"process_fork"`) {
		t.Fatalf("unknown type: %v", err)
	}
	a, err := New(Config{Enforcer: newFakeEnforcer(), Resolver: h.resolver(), Catalog: testCatalog(t), ProcRoot: h.proc,
		SinkTypes: []string{events.TypeKprobe}})
	if err != nil {
		t.Fatal(err)
	}
	r := h.registration("c1", 100, "/pods/c1")
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	cg := r.Identity.CgroupID
	connect := connectRaw(cg)
	connect.Tgid, connect.StartNs = 100, 200*tick
	src := newFakeSource(execRecord(cg, 100, 50, 1000*tick, 200*tick, 100*tick, "/usr/bin/bash", "bash"), connect)
	src.drain = true
	var out syncBuffer
	a.RunEvents(context.Background(), src, events.NewWriter(&out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], `{"process_kprobe":`) {
		t.Fatalf("file: %q", lines)
	}
	if recent, _, _ := a.hub.Subscribe(eventhub.Filter{}, -1, false); len(recent) != 2 {
		t.Fatalf("hub has %d events, want the exec too", len(recent))
	}
	if a.Stats().EventsWritten.Load() != 1 {
		t.Fatalf("written %d", a.Stats().EventsWritten.Load())
	}
}

// readProcFile reads a file whole, refuses one longer than its buffer,
// and names the path of one it cannot open.
func TestReadProcFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stat")
	want := "42 (sh) S 1 42 42 0 -1 4194560 98 0 0 0 0 0 0 0 20 0 1 0 12345 " + strings.Repeat("0 ", 30)
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf [statBufSize]byte
	got, err := readProcFile(path, buf[:])
	if err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	if _, err := readProcFile(path, buf[:16]); err == nil || !strings.Contains(err.Error(), "longer than 16 bytes") {
		t.Fatalf("a file longer than the buffer: got %v", err)
	}
	missing := filepath.Join(dir, "gone")
	if _, err := readProcFile(missing, buf[:]); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("a missing file: got %v", err)
	}
	// The real thing: this process's own stat.
	ppid, ticks, ok := procFS{}.stat(uint32(os.Getpid()))
	if !ok || ppid != uint32(os.Getppid()) || ticks == 0 {
		t.Fatalf("own stat: ppid %d start %d ok %v; want ppid %d", ppid, ticks, ok, os.Getppid())
	}
}

// The kernel sends no clone records: a child that has not exec'd is made
// from its cached parent when an event or its exit first names it, as a
// clone record made it.
func TestForkWithoutCloneRecord(t *testing.T) {
	a, h, cg := procFixture(t)
	bash := a.onRecord(execRecord(cg, 100, 50, 1000*tick, 200*tick, 100*tick, "/usr/bin/bash", "bash", "-c", "x"), at).ProcessExec.Process
	// A connect of child 101 (no parent in the record): /proc names the
	// parent, which runs the same program.
	h.fakeProc(101, 100, 300, "/usr/bin/bash", "/srv", "bash", "-c", "x")
	connect := childConnect(cg)
	kp := a.convert(connect, at).ProcessKprobe
	wantExecID(t, a, kp.Process.ExecID, 300*tick, 101)
	if kp.Process.Binary != "/usr/bin/bash" || kp.Process.Arguments != "-c x" || kp.Process.Flags != "clone" ||
		kp.Parent == nil || kp.Parent.ExecID != bash.ExecID || kp.Process.ParentExecID != bash.ExecID {
		t.Fatalf("forked child %+v, parent %+v", kp.Process, kp.Parent)
	}
	// Child 102 exits without an exec or an event: its exit names it.
	exit := a.onRecord(&record.RawEvent{Kind: record.KindExit, BootNs: 1003 * tick, WorkloadCgroupID: cg, CgroupID: cg, Tgid: 102, Pid: 102,
		Ppid: 100, StartNs: 301 * tick, ParentStartNs: 200 * tick, Profile: 1}, at).ProcessExit
	if exit == nil || exit.Process.Flags != "clone" || exit.Process.Binary != "/usr/bin/bash" || exit.Parent == nil ||
		exit.Parent.ExecID != bash.ExecID {
		t.Fatalf("exit of a forked child %+v, parent %+v", exit.Process, exit.Parent)
	}
	wantExecID(t, a, exit.Process.ExecID, 301*tick, 102)
	// Child 103 runs another program than its parent (its exec record was
	// lost): /proc's word, not a clone.
	h.fakeProc(103, 100, 302, "/usr/bin/python3.11", "/srv", "python3")
	connect.Tgid, connect.Pid, connect.StartNs = 103, 103, 302*tick
	if kp := a.convert(connect, at).ProcessKprobe; kp.Process.Flags != "procFS" || kp.Process.Binary != "/usr/bin/python3.11" {
		t.Fatalf("a child running another program %+v", kp.Process)
	}
}

// childConnect is a Post connect of forked child 101 (started at 300
// ticks) of bash, pid 100, in workload cg.
func childConnect(cg uint64) *record.RawEvent {
	return &record.RawEvent{BootNs: 1002 * tick, WorkloadCgroupID: cg, CgroupID: cg, Tgid: 101, Pid: 101, StartNs: 300 * tick,
		Profile: 1, Point: profiles.PointConnect, Action: profiles.ActionPost, Family: unix.AF_INET, HasAddr: true,
		Daddr: netip.MustParseAddr("127.0.0.1"), Dport: 4444, Comm: "bash"}
}

// A child that forked, acted and died before the agent read its event
// (no /proc left) is still named as its cached parent's clone: the
// decision record carries the parent's pid and start.
func TestForkedChildGoneBeforeItsEvent(t *testing.T) {
	a, _, cg := procFixture(t)
	bash := a.onRecord(execRecord(cg, 100, 50, 1000*tick, 200*tick, 100*tick, "/usr/bin/bash", "bash", "-c", "x"), at).ProcessExec.Process
	connect := childConnect(cg)
	connect.Ppid, connect.ParentStartNs = 100, 200*tick
	kp := a.convert(connect, at).ProcessKprobe
	if kp.Process.Flags != "clone" || kp.Process.Binary != "/usr/bin/bash" || kp.Parent == nil || kp.Parent.ExecID != bash.ExecID {
		t.Fatalf("a gone forked child %+v, parent %+v", kp.Process, kp.Parent)
	}
	// A parent of another start (its pid reused) is not the parent.
	other := childConnect(cg)
	other.Tgid, other.Pid, other.StartNs = 104, 104, 304*tick
	other.Ppid, other.ParentStartNs = 100, 150*tick
	if kp := a.convert(other, at).ProcessKprobe; kp.Process.Flags == "clone" {
		t.Fatalf("a child of a pid's earlier process made a clone of the cached one: %+v", kp.Process)
	}
}
