package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// DockerdPath and DockerPath are Debian's docker.io 20.10 (the docker on
// PATH may be another client).
var (
	DockerdPath = "/usr/sbin/dockerd"
	DockerPath  = "/usr/bin/docker"
)

// dockerEnv is a dockerd of the test's own: data root, exec root (where
// it runs a containerd of its own) and socket below a temp dir, no
// bridge, no iptables, the vfs storage driver.
type dockerEnv struct {
	dir, dataRoot, execRoot, socket string
}

// newDockerEnv places a dockerd of t's own (start starts it).
func newDockerEnv(t *testing.T) *dockerEnv {
	t.Helper()
	testenv.NeedTools(t, DockerdPath, DockerPath)
	dir, err := os.MkdirTemp(workDir, "dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	return &dockerEnv{dir: dir, dataRoot: filepath.Join(dir, "data"), execRoot: filepath.Join(dir, "exec"), socket: filepath.Join(dir, "docker.sock")}
}

// start starts the dockerd, whose runtimes (name → path) are runtimes,
// and stops it, unmounting what it mounted, when t ends.
func (d *dockerEnv) start(t *testing.T, runtimes map[string]string) {
	t.Helper()
	dir := d.dir
	args := []string{"--data-root", d.dataRoot, "--exec-root", d.execRoot, "-H", "unix://" + d.socket,
		"--pidfile", filepath.Join(dir, "docker.pid"), "--bridge", "none", "--iptables=false", "--ip6tables=false",
		"--ip-masq=false", "--storage-driver", "vfs", "--exec-opt", "native.cgroupdriver=cgroupfs"}
	names := make([]string, 0, len(runtimes))
	for name := range runtimes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		args = append(args, "--add-runtime", name+"="+runtimes[name])
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(DockerdPath, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { d.stop(t, cmd, done) })
	d.waitReady(t)
}

// waitReady waits until the daemon answers.
func (d *dockerEnv) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if out, err := d.docker("version", "--format", "{{.Server.Version}}"); err == nil {
			t.Logf("dockerd %s ready", strings.TrimSpace(out))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd not ready in 60s:\n%s", agentlog.Tail(filepath.Join(d.dir, "dockerd.log"), 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop ends dockerd (and the containerd it runs), then unmounts what is
// still mounted below its directory.
func (d *dockerEnv) stop(t *testing.T, cmd *exec.Cmd, done chan error) {
	if err := stopProcess(cmd, done, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Logf("cleanup: dockerd: %v", err)
	}
	for _, m := range mountsBelow(d.dir) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
			t.Errorf("cleanup: unmount %s: %v", m, err)
		}
	}
	if t.Failed() {
		t.Logf("dockerd log (tail):\n%s", agentlog.Tail(filepath.Join(d.dir, "dockerd.log"), 30))
	}
}

// mountsBelow lists the mount points below dir, deepest first.
func mountsBelow(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// docker runs the docker client on this daemon, bounded by a minute.
func (d *dockerEnv) docker(args ...string) (string, error) {
	cmd := exec.Command("timeout", append([]string{"-k", "5", "60", DockerPath, "-H", "unix://" + d.socket}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// importImage imports the shared rootfs (busybox and /probe) as ref.
func (d *dockerEnv) importImage(t *testing.T, ref string) {
	t.Helper()
	tarball := rootfsTarball(t)
	if out, err := d.docker("import", tarball, ref); err != nil {
		t.Fatalf("docker import: %v: %s", err, out)
	}
}

// dockerRuntime writes a runtime for dockerd's --add-runtime: the Docker
// wrapper with the hook of this test, dialling socket.
func dockerRuntime(t *testing.T, socket string) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "ocigate-runc")
	body := fmt.Sprintf("#!/bin/sh\nexec %s --ocigate-runc=%s --ocigate-hook=%s --ocigate-socket=%s \"$@\"\n",
		buildWrapper(t), testenv.RuncPath, hookBin, socket)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}
