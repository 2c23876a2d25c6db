package cgroupfilter

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeProc creates <root>/<pid>/cgroup (unless cgroup is "-") and the given
// <root>/<pid>/ns entries (odd ones as directories, even ones as files).
func fakeProc(t *testing.T, root string, pid int, cgroup string, ns ...string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
		t.Fatal(err)
	}
	if cgroup != "-" {
		if err := os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cgroup), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range ns {
		p := filepath.Join(dir, "ns", name)
		var err error
		if i%2 == 1 {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func ino(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(fi.Sys().(*syscall.Stat_t).Ino)
}

var allNS = []string{"mnt", "pid", "net", "uts", "ipc", "cgroup", "user", "time"}

func wantErr(t *testing.T, err error, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected error containing %q, got nil", substrs)
	}
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func TestCgroupPath(t *testing.T) {
	tests := []struct {
		name, content, want, err string
	}{
		{"unified", "0::/kubepods/pod1/ctr\n", "/kubepods/pod1/ctr", ""},
		{"root", "0::/\n", "/", ""},
		{"no trailing newline", "0::/a/b", "/a/b", ""},
		{"colon in path", "0::/a:b\n", "/a:b", ""},
		{"hybrid v1 lines first", "12:pids:/x\n4:memory:/y\n1:name=systemd:/z\n0::/system.slice/c.scope\n", "/system.slice/c.scope", ""},
		{"v1 only", "4:memory:/x\n1:name=systemd:/y\n", "", "no cgroup v2 entry"},
		{"empty file", "", "", "no cgroup v2 entry"},
		{"deleted", "0::/kubepods/old (deleted)\n", "", "removed"},
		{"dotdot", "0::/../../other\n", "", `".."`},
		{"empty path", "0::\n", "", "empty cgroup v2 path"},
		{"relative", "0::foo\n", "", "not absolute"},
		{"unclean", "0::/a//b\n", "", "not clean"},
		{"malformed", "garbage\n", "", "malformed"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			pid := 100 + i
			fakeProc(t, root, pid, tc.content)
			got, err := Resolver{ProcRoot: root}.CgroupPath(pid)
			if tc.err != "" {
				wantErr(t, err, tc.err, filepath.Join(root, strconv.Itoa(pid), "cgroup"))
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CgroupPath = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestInvalidPID(t *testing.T) {
	r := Resolver{ProcRoot: t.TempDir(), CgroupRoot: t.TempDir()}
	for _, pid := range []int{0, -1} {
		_, err := r.CgroupPath(pid)
		wantErr(t, err, "invalid pid")
		_, err = r.Namespaces(pid)
		wantErr(t, err, "invalid pid")
		_, err = r.Resolve(pid)
		wantErr(t, err, "invalid pid")
	}
}

func TestProcessGone(t *testing.T) {
	root := t.TempDir()
	r := Resolver{ProcRoot: root, CgroupRoot: t.TempDir()}
	_, err := r.CgroupPath(4242)
	wantErr(t, err, "process 4242 is gone", filepath.Join(root, "4242", "cgroup"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
	_, err = r.Namespaces(4242)
	wantErr(t, err, "process 4242 is gone")
	_, err = r.Resolve(4242)
	wantErr(t, err, "process 4242 is gone")
}

func TestCgroupFileMissing(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 7, "-")
	_, err := Resolver{ProcRoot: root}.CgroupPath(7)
	wantErr(t, err, filepath.Join(root, "7", "cgroup"))
	if strings.Contains(err.Error(), "gone") {
		t.Errorf("process dir exists, but error says gone: %v", err)
	}
}

func TestCgroupID(t *testing.T) {
	root := t.TempDir()
	ctr := filepath.Join(root, "kubepods", "pod1", "ctr")
	if err := os.MkdirAll(ctr, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "cgroup.procs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := Resolver{CgroupRoot: root}
	for p, dir := range map[string]string{"/kubepods/pod1/ctr": ctr, "/": root} {
		got, err := r.CgroupID(p)
		if err != nil {
			t.Fatalf("CgroupID(%q): %v", p, err)
		}
		if want := ino(t, dir); got != want {
			t.Errorf("CgroupID(%q) = %d, want %d", p, got, want)
		}
	}

	_, err := r.CgroupID("/kubepods/missing")
	wantErr(t, err, filepath.Join(root, "kubepods", "missing"), "does not exist")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
	_, err = r.CgroupID("/cgroup.procs")
	wantErr(t, err, filepath.Join(root, "cgroup.procs"), "not a directory")
	_, err = r.CgroupID("/kubepods/../../etc")
	wantErr(t, err, `".."`)
	_, err = r.CgroupID("")
	wantErr(t, err, "empty")
	_, err = r.CgroupID("kubepods")
	wantErr(t, err, "not absolute")
}

func TestNamespaces(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 10, "-", allNS...)
	got, err := Resolver{ProcRoot: root}.Namespaces(10)
	if err != nil {
		t.Fatal(err)
	}
	ns := func(n string) uint64 { return ino(t, filepath.Join(root, "10", "ns", n)) }
	want := NamespaceIDs{ns("mnt"), ns("pid"), ns("net"), ns("uts"), ns("ipc"), ns("cgroup"), ns("user"), ns("time")}
	if got != want {
		t.Errorf("Namespaces = %+v, want %+v", got, want)
	}
	if got.Net == 0 || got.Net == got.Mnt {
		t.Errorf("implausible inode numbers: %+v", got)
	}
}

func TestNamespacesMissing(t *testing.T) {
	root := t.TempDir()
	// No "time" namespace (kernel < 5.6): not an error, Time is 0.
	fakeProc(t, root, 11, "-", "mnt", "pid", "net", "uts", "ipc", "cgroup", "user")
	got, err := Resolver{ProcRoot: root}.Namespaces(11)
	if err != nil {
		t.Fatal(err)
	}
	if got.Time != 0 || got.User == 0 {
		t.Errorf("Namespaces = %+v, want Time 0 and the rest set", got)
	}

	// No "net": required, so an error naming the file.
	fakeProc(t, root, 12, "-", "mnt", "pid", "uts", "ipc", "cgroup", "user", "time")
	_, err = Resolver{ProcRoot: root}.Namespaces(12)
	wantErr(t, err, filepath.Join(root, "12", "ns", "net"))
	if strings.Contains(err.Error(), "gone") {
		t.Errorf("process dir exists, but error says gone: %v", err)
	}
}

func TestResolveFake(t *testing.T) {
	proc, cg := t.TempDir(), t.TempDir()
	fakeProc(t, proc, 20, "3:cpu:/docker/abc\n0::/system.slice/docker-abc.scope\n", allNS...)
	dir := filepath.Join(cg, "system.slice", "docker-abc.scope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	id, err := Resolver{ProcRoot: proc, CgroupRoot: cg}.Resolve(20)
	if err != nil {
		t.Fatal(err)
	}
	if id.CgroupPath != "/system.slice/docker-abc.scope" || id.CgroupID != ino(t, dir) {
		t.Errorf("Resolve = %+v, want path /system.slice/docker-abc.scope, id %d", id, ino(t, dir))
	}
	if id.Namespaces.Pid != ino(t, filepath.Join(proc, "20", "ns", "pid")) {
		t.Errorf("pid namespace = %d, want inode of fake ns/pid", id.Namespaces.Pid)
	}

	b, err := json.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"cgroup_id":`, `"cgroup_path":`, `"namespaces":`, `"mnt":`, `"cgroup":`, `"time":`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}

	// The cgroup was removed after the process was placed in it.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	_, err = Resolver{ProcRoot: proc, CgroupRoot: cg}.Resolve(20)
	wantErr(t, err, "process 20", dir, "does not exist")
}

func requireRealV2(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		t.Skip("no /sys/fs/cgroup on this machine")
	}
	if m := hostMode(); m != modeUnified && m != modeHybrid {
		t.Skipf("cgroup v2 not mounted (mode %s)", modeName(m))
	}
}

func TestResolveRealHost(t *testing.T) {
	requireRealV2(t)
	var r Resolver
	id, err := r.Resolve(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	mount, err := V2Mount()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mount, id.CgroupPath)
	if want := ino(t, dir); id.CgroupID != want {
		t.Errorf("CgroupID = %d, want inode %d of %s", id.CgroupID, want, dir)
	}
	for name, got := range map[string]uint64{"mnt": id.Namespaces.Mnt, "net": id.Namespaces.Net, "user": id.Namespaces.User} {
		if want := ino(t, "/proc/self/ns/"+name); got != want {
			t.Errorf("%s namespace = %d, want %d", name, got, want)
		}
	}
	t.Logf("identity of pid %d: %+v (mount %s)", os.Getpid(), id, mount)
}

func TestProcessGoneRealHost(t *testing.T) {
	if _, err := os.Stat("/proc/self/cgroup"); err != nil {
		t.Skip("no /proc on this machine")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	_, err := Resolver{}.CgroupPath(pid)
	if err == nil {
		t.Skipf("pid %d was reused", pid)
	}
	wantErr(t, err, "process "+strconv.Itoa(pid)+" is gone")
}
