package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupParentName is the directory under the cgroup v2 root that holds
// every workload cgroup of a run.
const cgroupParentName = "ocigate-vm"

// vmtestProfile is the profile every workload gets: the reverse-shell
// protections plus the stand-in attacker 127.0.0.2.
//
//go:embed profiles/vmtest.yaml
var vmtestProfile []byte

// probeTimeout bounds every scenario process.
const probeTimeout = 60 * time.Second

type suite struct {
	cfg     config
	expect  expectation
	out     io.Writer
	markers io.Writer

	self      string // this binary, re-exec'd as the probe
	root      string // cgroup v2 mount
	parent    string // root/ocigate-vm
	agentLog  string
	agentCmd  *exec.Cmd
	agentDone chan error
	events    *eventLog
	backends  []backendEntry
	seq       int
	failed    bool
	// ownProfile: the agent runs on the embedded vmtest profile, so every
	// event must name it.
	ownProfile bool
}

// emit prints a marker line to stdout and the markers file.
func (s *suite) emit(format string, a ...any) {
	line := fmt.Sprintf(format, a...)
	line = strings.NewReplacer("\r", " ", "\n", " | ").Replace(line)
	fmt.Fprintln(s.out, line)
	if s.markers != nil {
		fmt.Fprintln(s.markers, line)
	}
}

// logf prints a diagnostic line (stdout only).
func (s *suite) logf(format string, a ...any) {
	fmt.Fprintf(s.out, "vmtest: "+format+"\n", a...)
}

// result collects one scenario's verdict.
type result struct {
	name   string
	fails  []string
	notes  []string
	diag   []string
	killed bool // the scenario could not continue
}

func (r *result) failf(format string, a ...any) { r.fails = append(r.fails, fmt.Sprintf(format, a...)) }
func (r *result) notef(format string, a ...any) { r.notes = append(r.notes, fmt.Sprintf(format, a...)) }
func (r *result) diagf(format string, a ...any) {
	d := fmt.Sprintf(format, a...)
	for _, x := range r.diag {
		if x == d {
			return
		}
	}
	r.diag = append(r.diag, d)
}

// abort records a failure that ends the scenario.
type abort struct{ msg string }

func (r *result) fatalf(format string, a ...any) {
	r.failf(format, a...)
	panic(abort{fmt.Sprintf(format, a...)})
}

func (s *suite) report(r *result) {
	verdict := "PASS"
	detail := strings.Join(r.notes, "; ")
	if len(r.fails) > 0 {
		verdict = "FAIL"
		s.failed = true
		detail = strings.Join(r.fails, "; ")
		if len(r.notes) > 0 {
			detail += " [" + strings.Join(r.notes, "; ") + "]"
		}
		for _, d := range r.diag {
			for _, l := range strings.Split(strings.TrimRight(d, "\n"), "\n") {
				fmt.Fprintf(s.out, "  | %s\n", l)
			}
		}
	}
	if detail == "" {
		detail = "-"
	}
	s.emit("VMTEST-SCENARIO %s %s %s", r.name, verdict, detail)
}

type scenario struct {
	name string
	fn   func(s *suite, r *result)
}

func (s *suite) runAll(filter *regexp.Regexp) int {
	if err := s.setup(); err != nil {
		s.emit("VMTEST-SCENARIO setup FAIL %v", err)
		s.emit("VMTEST-RESULT FAIL")
		return 1
	}
	defer s.teardownFS()
	s.info()
	agent := &result{name: "agent-start"}
	if err := s.startAgent(); err != nil {
		agent.failf("%v", err)
		agent.diagf("agent log:\n%s", tailFile(s.agentLog, 80))
		s.report(agent)
		s.stopAgent()
		s.emit("VMTEST-RESULT FAIL")
		return 1
	}
	s.report(agent)
	defer s.stopAgent()
	s.runScenario(scenario{"backends", scenarioBackends})
	for _, sc := range scenarios {
		if filter != nil && !filter.MatchString(sc.name) {
			continue
		}
		s.runScenario(sc)
	}
	s.runScenario(scenario{"teardown", scenarioTeardown})
	if s.failed {
		s.logf("agent log (without workload (un)registrations):\n%s", agentLogSummary(s.agentLog, 60))
		s.emit("VMTEST-RESULT FAIL")
		return 1
	}
	s.emit("VMTEST-RESULT PASS")
	return 0
}

func (s *suite) runScenario(sc scenario) {
	r := &result{name: sc.name}
	start := time.Now()
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(abort); !ok {
					r.failf("panic: %v", p)
				}
				r.killed = true
			}
		}()
		sc.fn(s, r)
	}()
	s.logf("scenario %s took %s", sc.name, time.Since(start).Round(time.Millisecond))
	s.report(r)
}

func (s *suite) setup() error {
	if os.Geteuid() != 0 {
		return errors.New("the suite needs root")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating this binary: %w", err)
	}
	s.self = self
	for _, p := range []*string{&s.cfg.agent, &s.cfg.hook} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("binary missing: %w", err)
		}
		*p = abs
	}
	if s.cfg.workdir == "" {
		if s.cfg.workdir, err = os.MkdirTemp("", "ocigate-vmtest-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(s.cfg.workdir, 0o755); err != nil {
		return err
	}
	if s.cfg.socket == "" {
		s.cfg.socket = filepath.Join(s.cfg.workdir, "agentd.sock")
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.socket), 0o755); err != nil {
		return err
	}
	if s.cfg.events == "" {
		s.cfg.events = filepath.Join(s.cfg.workdir, "events.jsonl")
	}
	_ = os.Remove(s.cfg.events)
	s.events = &eventLog{path: s.cfg.events}
	s.agentLog = filepath.Join(s.cfg.workdir, "agentd.log")
	if s.cfg.profiles == "" {
		s.ownProfile = true
		s.cfg.profiles = filepath.Join(s.cfg.workdir, "profiles")
		if err := os.MkdirAll(s.cfg.profiles, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s.cfg.profiles, "vmtest.yaml"), vmtestProfile, 0o644); err != nil {
			return err
		}
	}
	if s.root, err = cgroupV2Root(s.cfg.cgroupRoot); err != nil {
		return err
	}
	s.parent = filepath.Join(s.root, cgroupParentName)
	if err := removeCgroupTree(s.parent); err != nil {
		return fmt.Errorf("removing a previous run's cgroups: %w", err)
	}
	if err := os.Mkdir(s.parent, 0o755); err != nil {
		return fmt.Errorf("creating the workload cgroup parent: %w", err)
	}
	return nil
}

func (s *suite) teardownFS() {
	if err := removeCgroupTree(s.parent); err != nil {
		s.logf("cleanup: %v", err)
	}
	if !s.cfg.keep && strings.Contains(s.cfg.workdir, "ocigate-vmtest-") {
		os.RemoveAll(s.cfg.workdir)
	}
}

// info prints what the guest kernel offers.
func (s *suite) info() {
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	s.emit("VMTEST-INFO kernel %s", unix.ByteSliceToString(uts.Release[:]))
	lsm, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		s.emit("VMTEST-INFO lsm unavailable(%v)", err)
	} else {
		s.emit("VMTEST-INFO lsm %s", strings.TrimSpace(string(lsm)))
	}
	if fi, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		s.emit("VMTEST-INFO btf yes(%d bytes)", fi.Size())
	} else {
		s.emit("VMTEST-INFO btf no")
	}
	s.emit("VMTEST-INFO cgroup-root %s", s.root)
	s.emit("VMTEST-INFO expect %s", s.expect)
	enf := s.cfg.enforcer
	if enf == "" {
		enf = "(agent default)"
	}
	s.emit("VMTEST-INFO enforcer %s", enf)
}

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

// --- the agent ---

func (s *suite) startAgent() error {
	logf, err := os.Create(s.agentLog)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := []string{"run", "--socket", s.cfg.socket, "--events-file", s.cfg.events}
	if s.cfg.enforcer != "" {
		args = append(args, "--enforcer", s.cfg.enforcer)
	}
	if s.cfg.profiles != "none" {
		args = append(args, "--profiles", s.cfg.profiles)
	}
	if s.cfg.cgroupRoot != "" {
		args = append(args, "--cgroup-root", s.cfg.cgroupRoot)
	}
	s.logf("starting %s %s", s.cfg.agent, strings.Join(args, " "))
	s.agentCmd = exec.Command(s.cfg.agent, args...)
	s.agentCmd.Stdout = logf
	s.agentCmd.Stderr = logf
	s.agentCmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := s.agentCmd.Start(); err != nil {
		return fmt.Errorf("starting the agent: %w", err)
	}
	s.agentDone = make(chan error, 1)
	go func() { s.agentDone <- s.agentCmd.Wait() }()
	deadline := time.Now().Add(s.cfg.agentStartWait)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-s.agentDone:
			s.agentDone <- err
			return fmt.Errorf("the agent exited during startup (%v): %s", err, lastLines(s.agentLog, 3))
		default:
		}
		st, err := s.status()
		if err == nil {
			s.backends = st.Backends
			s.emit("VMTEST-INFO agent-ready %s", time.Since(start).Round(10*time.Millisecond))
			return nil
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the agent did not answer status within %s: %v", s.cfg.agentStartWait, last)
}

// stopAgent sends SIGTERM and returns the exit error (nil for exit 0).
func (s *suite) stopAgent() error {
	if s.agentCmd == nil || s.agentCmd.Process == nil {
		return nil
	}
	_ = s.agentCmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.agentDone:
		s.agentCmd = nil
		return err
	case <-time.After(30 * time.Second):
		_ = s.agentCmd.Process.Kill()
		<-s.agentDone
		s.agentCmd = nil
		return errors.New("the agent did not stop within 30s of SIGTERM")
	}
}

type backendEntry struct {
	Point     string `json:"point"`
	Backend   string `json:"backend"`
	Mechanism string `json:"mechanism"`
}

type agentStatus struct {
	Backends  []backendEntry `json:"backends"`
	Workloads []struct {
		ContainerID string `json:"container_id"`
		CgroupID    uint64 `json:"cgroup_id"`
		CgroupPath  string `json:"cgroup_path"`
	} `json:"workloads"`
	Counters map[string]uint64 `json:"counters"`
}

func (st *agentStatus) workloadIDs() []string {
	ids := []string{}
	for _, w := range st.Workloads {
		ids = append(ids, w.ContainerID)
	}
	return ids
}

// status runs the real CLI: ocigate-agentd status -o json.
func (s *suite) status() (*agentStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, s.cfg.agent, "status", "--socket", s.cfg.socket, "-o", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ocigate-agentd status: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var st agentStatus
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		return nil, fmt.Errorf("decoding status %q: %w", stdout.String(), err)
	}
	return &st, nil
}

// --- workloads: a cgroup, a placeholder init, the hook ---

type workload struct {
	s      *suite
	id     string
	dir    string // cgroup directory
	bundle string
	init   *exec.Cmd
	reg    bool
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
	state := map[string]any{
		"ociVersion": "1.0.2", "id": w.id, "status": status, "bundle": w.bundle,
		"annotations": map[string]string{"io.ocigate.vmtest": "1"},
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

// --- events ---

type eventLog struct{ path string }

// read returns every JSON object line of the events file.
func (l *eventLog) read() ([]map[string]any, []string) {
	data, err := os.ReadFile(l.path)
	if err != nil {
		return nil, nil
	}
	var evs []map[string]any
	var lines []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		lines = append(lines, line)
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev != nil {
			evs = append(evs, ev)
		}
	}
	return evs, lines
}

// wait polls until an event matching want appears or timeout passes.
func (l *eventLog) wait(timeout time.Duration, want map[string]any) (map[string]any, bool) {
	deadline := time.Now().Add(timeout)
	for {
		evs, _ := l.read()
		for _, ev := range evs {
			if match(ev, want) {
				return ev, true
			}
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// forContainer returns the raw lines that mention id.
func (l *eventLog) forContainer(id string) []string {
	_, lines := l.read()
	var out []string
	for _, line := range lines {
		if strings.Contains(line, `"`+id+`"`) {
			out = append(out, line)
		}
	}
	return out
}

// get returns the value at a dotted path ("a.b.0.c") of a decoded event.
func get(v any, path string) (any, bool) {
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[part]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// getString renders the value at path for messages ("" when absent).
func getString(ev map[string]any, path string) string {
	v, ok := get(ev, path)
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// match reports whether every path of want has the wanted value; numbers
// compare as float64, a []string want means "any of".
func match(ev map[string]any, want map[string]any) bool {
	for path, w := range want {
		v, ok := get(ev, path)
		if !ok {
			return false
		}
		switch wv := w.(type) {
		case int:
			if f, ok := v.(float64); !ok || f != float64(wv) {
				return false
			}
		case []string:
			sv, ok := v.(string)
			if !ok {
				return false
			}
			found := false
			for _, x := range wv {
				found = found || x == sv
			}
			if !found {
				return false
			}
		default:
			if v != w {
				return false
			}
		}
	}
	return true
}

// --- a loopback TCP peer ---

// listener accepts connections on 127.0.0.1, writes a greeting to each and
// records what it receives.
type listener struct {
	ln       net.Listener
	greeting string
	mu       sync.Mutex
	conns    int
	data     bytes.Buffer
}

func listen(r *result, greeting string) *listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.fatalf("listening on 127.0.0.1: %v", err)
	}
	l := &listener{ln: ln, greeting: greeting}
	go l.loop()
	return l
}

func (l *listener) loop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		l.conns++
		l.mu.Unlock()
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(probeTimeout))
			if l.greeting != "" {
				_, _ = c.Write([]byte(l.greeting))
			}
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				l.mu.Lock()
				l.data.Write(buf[:n])
				l.mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
}

func (l *listener) addr() string { return l.ln.Addr().String() }
func (l *listener) close()       { l.ln.Close() }

func (l *listener) snapshot() (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns, l.data.String()
}

// waitFor waits until pred holds for the listener's state.
func (l *listener) waitFor(timeout time.Duration, pred func(conns int, data string) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if pred(l.snapshot()) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --- files ---

func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// agentLogSummary is the agent log without the per-workload lines, at most
// n lines (the first ones: backend choices and skipped backends).
func agentLogSummary(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if strings.Contains(l, "workload registered") || strings.Contains(l, "workload unregistered") {
			continue
		}
		if len(out) == n {
			out = append(out, "...")
			break
		}
		out = append(out, "  "+l)
	}
	return strings.Join(out, "\n")
}

func lastLines(path string, n int) string {
	return strings.ReplaceAll(tailFile(path, n), "\n", " | ")
}
