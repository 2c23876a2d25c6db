package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// RuncPath is the runc binary used by the harness.
var RuncPath = "/usr/sbin/runc"

// killGrace is how long timeout(1) waits after SIGTERM before SIGKILL: a
// container init (pid 1 in its namespace) may ignore SIGTERM.
const killGrace = 5 * time.Second

// ErrTimeout reports that a bounded command was stopped by its deadline.
var ErrTimeout = errors.New("timed out")

// RunRunc runs the bundle in the foreground as `timeout -k 5 T runc run
// --bundle DIR ID` without a terminal, and always runs `runc delete -f ID`
// afterwards. It returns the container's stdout and stderr (runc's own
// messages, including hook failures, are on stderr) and runc's exit code,
// which is the container's exit status (128+N when killed by signal N).
//
// err is non-nil only when runc could not be run, or when the deadline
// stopped it (err wraps ErrTimeout); a non-zero exit code alone is not an
// error, as several scenarios expect one.
func RunRunc(ctx context.Context, bundleDir, id string, timeout time.Duration) (stdout, stderr string, exitCode int, err error) {
	if timeout <= 0 {
		return "", "", -1, fmt.Errorf("runc run %s: non-positive timeout %v", id, timeout)
	}
	defer func() {
		if derr := RuncDelete(id); derr != nil && err == nil {
			err = derr
		}
	}()
	var outBuf, errBuf bytes.Buffer
	cmd := exec.CommandContext(ctx, "timeout", "-k", seconds(killGrace), seconds(timeout),
		RuncPath, "run", "--bundle", bundleDir, id)
	cmd.Stdin = nil
	cmd.Stdout = &outBuf
	cmd.Stderr = &errBuf
	start := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(start)
	stdout, stderr = outBuf.String(), errBuf.String()
	code, runErr := exitStatus(runErr)
	if timedOut(code, runErr, elapsed, timeout) {
		return stdout, stderr, code, fmt.Errorf("runc run %s: %w after %v (stdout: %q, stderr: %q)",
			id, ErrTimeout, elapsed.Round(time.Millisecond), stdout, stderr)
	}
	if runErr != nil {
		return stdout, stderr, code, fmt.Errorf("runc run %s: %w (stderr: %s)", id, runErr, strings.TrimSpace(stderr))
	}
	return stdout, stderr, code, nil
}

// timedOut reports whether a command run under timeout(1) hit its deadline.
// timeout exits 124 after SIGTERM worked; when it has to send SIGKILL it
// sends it to its whole process group, itself included, so it dies by
// SIGKILL (or exits 137). 137 is also a container killed by SIGKILL, so the
// clock decides.
func timedOut(code int, runErr error, elapsed, timeout time.Duration) bool {
	if code == 124 {
		return true
	}
	return (code == 137 || runErr != nil) && elapsed >= timeout
}

// exitStatus turns the error of cmd.Run into an exit code. It returns a
// nil error for a plain non-zero exit.
func exitStatus(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if code := ee.ExitCode(); code >= 0 {
			return code, nil
		}
		return -1, fmt.Errorf("killed: %v", ee)
	}
	return -1, err
}

func seconds(d time.Duration) string {
	s := d.Seconds()
	if s < 1 {
		s = 1
	}
	return strconv.FormatFloat(s, 'f', -1, 64) + "s"
}

// RuncDelete force-deletes container id. A container that does not exist
// (already deleted, or never created) is not an error.
func RuncDelete(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, RuncPath, "delete", "-f", id).CombinedOutput()
	if err != nil {
		msg := string(out)
		if strings.Contains(msg, "does not exist") || strings.Contains(msg, "not found") {
			return nil
		}
		return fmt.Errorf("runc delete -f %s: %w: %s", id, err, strings.TrimSpace(msg))
	}
	return nil
}

// Runc runs a short runc subcommand (state, exec, kill, ...) bounded by
// timeout and returns its stdout; failures carry stderr.
func Runc(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var outBuf, errBuf bytes.Buffer
	cmd := exec.CommandContext(ctx, RuncPath, args...)
	cmd.Stdout = &outBuf
	cmd.Stderr = &errBuf
	cmd.WaitDelay = killGrace
	if err := cmd.Run(); err != nil {
		return outBuf.String(), fmt.Errorf("runc %s: %w (stderr: %s)", strings.Join(args, " "), err, strings.TrimSpace(errBuf.String()))
	}
	return outBuf.String(), nil
}

// CgroupRoots lists the mounted cgroup hierarchies below /sys/fs/cgroup
// (each v1 controller and the v2 tree, e.g. /sys/fs/cgroup/unified), or
// /sys/fs/cgroup itself on a pure cgroup v2 host.
func CgroupRoots() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("listing cgroup mounts: %w", err)
	}
	var roots []string
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		fields, fsFields := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(fsFields) < 1 {
			continue
		}
		if fsFields[0] == "cgroup" || fsFields[0] == "cgroup2" {
			roots = append(roots, fields[4])
		}
	}
	return roots, nil
}

// CgroupV2Root returns the mount point of the cgroup v2 hierarchy:
// /sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on a unified one.
func CgroupV2Root() (string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("finding cgroup2 mount: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		fields, fsFields := strings.Fields(pre), strings.Fields(post)
		if len(fields) >= 5 && len(fsFields) >= 1 && fsFields[0] == "cgroup2" {
			return fields[4], nil
		}
	}
	return "", errors.New("finding cgroup2 mount: no cgroup2 file system is mounted")
}

// RemoveCgroup removes the cgroup directory rel (e.g. "/ocigate-e2e") and
// every empty cgroup below it from every mounted hierarchy. Directories that
// are missing are skipped; a cgroup that still has processes is reported.
func RemoveCgroup(rel string) error {
	rel = strings.TrimLeft(filepath.Clean("/"+rel), "/")
	if rel == "" {
		return errors.New("removing cgroup: refusing to remove a hierarchy root")
	}
	roots, err := CgroupRoots()
	if err != nil {
		return err
	}
	var errs []error
	for _, root := range roots {
		if err := removeTree(filepath.Join(root, rel)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeTree rmdirs dir after its subdirectories (cgroupfs only allows
// rmdir, never unlink of its files).
func removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing cgroup %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dir, err))
	}
	return errors.Join(errs...)
}
