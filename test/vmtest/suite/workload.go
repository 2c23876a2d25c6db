package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupV2Root returns the cgroup2 mount: explicit, /sys/fs/cgroup (pure
// v2) or /sys/fs/cgroup/unified (hybrid).
func cgroupV2Root(explicit string) (string, error) {
	cands := []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}
	if explicit != "" {
		cands = []string{explicit}
	}
	for _, c := range cands {
		var st unix.Statfs_t
		if err := unix.Statfs(c, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return c, nil
		}
	}
	return "", fmt.Errorf("no cgroup2 file system at %v", cands)
}

// removeCgroupTree kills every process in dir and its descendants and
// removes the directories, deepest first.
func removeCgroupTree(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range dirs {
		killCgroup(d)
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var errs []error
	for _, d := range dirs {
		var err error
		for i := 0; i < 50; i++ {
			if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			killCgroup(d)
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func killCgroup(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// --- workloads: a cgroup, a placeholder init, the hook ---

type workload struct {
	s      *suite
	id     string
	dir    string // cgroup directory
	bundle string
	init   *exec.Cmd
	reg    bool
	// annotations are added to the OCI state's (they pick profiles).
	annotations map[string]string
}

// newWorkload creates the cgroup parent/<name>-<n> and a bundle directory
// with a minimal config.json. The cgroup is removed by cleanup.
func (s *suite) newWorkload(r *result, name string) *workload {
	s.seq++
	id := fmt.Sprintf("vm-%s-%d", name, s.seq)
	w := &workload{s: s, id: id, dir: filepath.Join(s.parent, id), bundle: filepath.Join(s.cfg.workdir, "bundles", id)}
	if err := os.Mkdir(w.dir, 0o755); err != nil {
		r.fatalf("creating cgroup %s: %v", w.dir, err)
	}
	if err := os.MkdirAll(w.bundle, 0o755); err != nil {
		r.fatalf("creating bundle: %v", err)
	}
	if err := os.WriteFile(filepath.Join(w.bundle, "config.json"), []byte(`{"ociVersion":"1.0.2"}`), 0o644); err != nil {
		r.fatalf("writing config.json: %v", err)
	}
	return w
}

// startInit starts the placeholder init (suite probe pause) in the cgroup.
func (w *workload) startInit(r *result) {
	fd, err := unix.Open(w.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.fatalf("opening cgroup %s: %v", w.dir, err)
	}
	defer unix.Close(fd)
	w.init = exec.Command(w.s.self, "probe", "pause")
	w.init.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd, Pdeathsig: syscall.SIGKILL}
	if err := w.init.Start(); err != nil {
		r.fatalf("starting the placeholder init in %s: %v", w.dir, err)
	}
}

// stopInit kills the placeholder init.
func (w *workload) stopInit() {
	if w.init != nil && w.init.Process != nil {
		_ = w.init.Process.Kill()
		_ = w.init.Wait()
		w.init = nil
	}
}

func (w *workload) pid() int {
	if w.init == nil || w.init.Process == nil {
		return 0
	}
	return w.init.Process.Pid
}

// hook runs ocigate-hook STAGE with the OCI state on stdin, as runc does.
func (w *workload) hook(stage, status string, pid int) (string, error) {
	annotations := map[string]string{"io.ocigate.vmtest": "1"}
	for k, v := range w.annotations {
		annotations[k] = v
	}
	state := map[string]any{
		"ociVersion": "1.0.2", "id": w.id, "status": status, "bundle": w.bundle,
		"annotations": annotations,
	}
	if pid > 0 {
		state["pid"] = pid
	}
	data, _ := json.Marshal(state)
	ctx, cancel := context.WithTimeout(context.Background(), w.s.cfg.hookTimeout+20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.s.cfg.hook, "--socket", w.s.cfg.socket,
		"--timeout", w.s.cfg.hookTimeout.String(), stage)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	err := cmd.Run()
	return strings.TrimSpace(stderr.String()), err
}

// register starts the placeholder init and runs the createRuntime hook.
func (w *workload) register(r *result) {
	w.startInit(r)
	out, err := w.hook("createRuntime", "created", w.pid())
	if err != nil {
		r.fatalf("ocigate-hook createRuntime for %s: %v: %s", w.id, err, out)
	}
	w.reg = true
}

// unregister runs the poststop hook (which never fails the runtime, so
// its output is returned for the caller to check).
func (w *workload) unregister() (string, error) {
	w.reg = false
	return w.hook("poststop", "stopped", 0)
}

func (w *workload) cleanup(r *result) {
	if w.reg {
		if out, err := w.unregister(); err != nil || out != "" {
			r.failf("poststop for %s: %v %s", w.id, err, out)
		}
	}
	w.stopInit()
	if err := removeCgroupTree(w.dir); err != nil {
		r.failf("cleanup: %v", err)
	}
}

// probeResult is what a scenario process did.
type probeResult struct {
	stdout, stderr string
	pid            int
	exit           int            // exit code, -1 when killed by a signal
	signal         syscall.Signal // the killing signal
	dur            time.Duration
}

func (p probeResult) out() string { return strings.TrimSpace(p.stdout) }

func (p probeResult) String() string {
	how := fmt.Sprintf("exit %d", p.exit)
	if p.signal != 0 {
		how = "killed by " + unix.SignalName(p.signal)
	}
	s := fmt.Sprintf("%s, stdout %q", how, p.out())
	if e := strings.TrimSpace(p.stderr); e != "" {
		s += fmt.Sprintf(", stderr %q", e)
	}
	return s
}

// run starts "suite probe ARGS..." inside the cgroup dir from its first
// instruction and waits for it.
func (s *suite) runIn(r *result, dir string, args ...string) probeResult {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.fatalf("opening cgroup %s: %v", dir, err)
	}
	defer unix.Close(fd)
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.self, append([]string{"probe"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd, Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		r.fatalf("starting probe %v in %s: %v", args, dir, err)
	}
	pid := cmd.Process.Pid
	err = cmd.Wait()
	res := probeResult{stdout: stdout.String(), stderr: stderr.String(), pid: pid, dur: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			res.exit, res.signal = -1, ws.Signal()
		} else {
			res.exit = ws.ExitStatus()
		}
	default:
		r.fatalf("running probe %v in %s: %v", args, dir, err)
	}
	if ctx.Err() != nil {
		r.failf("probe %v timed out after %s", args, probeTimeout)
	}
	return res
}

func (w *workload) run(r *result, args ...string) probeResult {
	return w.s.runIn(r, w.dir, args...)
}
