// Package e2e holds ocigate's real-container end-to-end tests: containers
// run by runc and podman with the ocigate hook, a real ocigate-agentd that
// loads the BPF programs, and assertions on both what the container saw
// (its stdout and exit status) and what the agent reported (its events
// file).
//
// The tests run only when OCIGATE_E2E=1 (as root, with what
// scripts/deps.sh installs); then a missing prerequisite fails the run, or
// the test that needs it (testenv.NeedTools), naming the program. Without
// it every test skips.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/agentconfig"
	"github.com/ocigate/ocigate/internal/seeds"
	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
	"golang.org/x/sys/unix"
)

// reconcileInterval is the agent's --reconcile-interval in the e2e.
const reconcileInterval = time.Second

// cgroupParent holds every container's cgroup (linux.cgroupsPath
// /ocigate-e2e/<id>, podman --cgroup-parent).
const cgroupParent = "/ocigate-e2e"

// Harness state set up by TestMain when OCIGATE_E2E=1.
var (
	enabled    bool
	workDir    string // temp dir holding everything below
	binDir     string
	hookBin    string // built ocigate-hook
	agentdBin  string // built ocigate-agentd
	profileDir string // the agent's --profiles directory (see copyProfiles)
	probeBin   string // built probe
	socketPath string // agent API socket
	eventsPath string // agent events file
	agentLog   string // agent stdout+stderr
	pinDir     string // the agent's --pin-dir: its own, never the default
	stateDir   string // the agent's --state-dir
	rootfsDir  string // shared busybox rootfs for runc bundles
	events     *agentlog.EventLog
	agentCmd   *exec.Cmd
	agentDone  chan error
)

func TestMain(m *testing.M) {
	if os.Getenv("OCIGATE_E2E") != "1" {
		os.Exit(m.Run()) // every test skips
	}
	enabled = true
	if err := setup(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e setup failed: %v\n", err)
		if agentLog != "" {
			fmt.Fprintf(os.Stderr, "agent log:\n%s\n", agentlog.Tail(agentLog, 60))
		}
		teardown()
		os.Exit(1)
	}
	code := m.Run()
	if err := teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e teardown: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// requireE2E skips the test unless OCIGATE_E2E=1.
func requireE2E(t *testing.T) {
	t.Helper()
	if !enabled {
		t.Skip("end-to-end tests need root, runc, podman and the BPF agent: set OCIGATE_E2E=1")
	}
}

func setup() error {
	if os.Geteuid() != 0 {
		return errors.New("OCIGATE_E2E=1 needs root")
	}
	var missing []error
	for _, tool := range []string{testenv.RuncPath, testenv.BusyboxPath, "timeout", "go"} {
		if _, err := testenv.FindTool(tool); err != nil {
			missing = append(missing, err)
		}
	}
	if err := errors.Join(missing...); err != nil {
		return fmt.Errorf("prerequisites missing:\n%w", err)
	}
	var err error
	if workDir, err = os.MkdirTemp("", "ocigate-e2e-"); err != nil {
		return fmt.Errorf("making work dir: %w", err)
	}
	// The non-root peer test runs the probe as nobody: let it in.
	if err := os.Chmod(workDir, 0o755); err != nil {
		return fmt.Errorf("making work dir: %w", err)
	}
	binDir = filepath.Join(workDir, "bin")
	hookBin = filepath.Join(binDir, "ocigate-hook")
	agentdBin = filepath.Join(binDir, "ocigate-agentd")
	probeBin = filepath.Join(binDir, "probe")
	for pkg, out := range map[string]string{"./cmd/hook": hookBin, "./cmd/agentd": agentdBin, "./test/e2e/probe": probeBin} {
		if err := goBuild(pkg, out); err != nil {
			return err
		}
	}
	if err := os.Chmod(binDir, 0o755); err != nil {
		return fmt.Errorf("making bin dir: %w", err)
	}
	rootfsDir = filepath.Join(workDir, "rootfs")
	if err := testenv.BuildRootfs(rootfsDir, map[string]string{"/probe": probeBin, "/usr/bin/nc": "/bin/busybox"}); err != nil {
		return err
	}
	runDir := filepath.Join(workDir, "run")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("making run dir: %w", err)
	}
	socketPath = filepath.Join(runDir, "agentd.sock")
	eventsPath = filepath.Join(workDir, "events.jsonl")
	agentLog = filepath.Join(workDir, "agentd.log")
	pinDir = filepath.Join("/sys/fs/bpf", fmt.Sprintf("ocigate-e2e-%d", os.Getpid()))
	stateDir = filepath.Join(workDir, "state")
	events = agentlog.NewEventLog(eventsPath)
	return startAgent()
}

// moduleRoot is the repository root: go test runs a package's tests in its
// directory, test/e2e.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding module root: %w", err)
	}
	root := filepath.Clean(filepath.Join(wd, "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("finding module root from %s: %w", wd, err)
	}
	return root, nil
}

func goBuild(pkg, out string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// startAgent starts the harness agent on a copy of the e2e profiles
// (copyProfiles) and waits until it is ready.
func startAgent() error {
	logf, err := os.Create(agentLog)
	if err != nil {
		return fmt.Errorf("starting agent: %w", err)
	}
	// The agent watches a copy: tests add and remove profiles there.
	profileDir = filepath.Join(workDir, "profiles")
	if err := copyProfiles(profileDir); err != nil {
		return fmt.Errorf("starting agent: %w", err)
	}
	cfg := agentconfig.Default()
	cfg.Socket, cfg.EventsFile, cfg.ProfileDir = socketPath, eventsPath, profileDir
	cfg.ReconcileInterval = reconcileInterval
	// Others' containers on this machine are not the harness agent's: no
	// adoption from the shared runc root, no system containerd.
	cfg.RuncRoots, cfg.ContainerdSocket = nil, ""
	cfg.PinDir, cfg.StateDir = pinDir, stateDir
	trustTestSpecs(&cfg, workDir)
	agentCmd = exec.Command(agentdBin, runArgs(cfg)...)
	agentCmd.Stdout = logf
	agentCmd.Stderr = logf
	if err := agentCmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting agent: %w", err)
	}
	logf.Close()
	agentDone = make(chan error, 1)
	go func() { agentDone <- agentCmd.Wait() }()
	return waitReady(socketPath, agentDone, 20*time.Second)
}

// trustTestSpecs makes cfg an agent of a single host whose operator
// writes every container's spec — the tests do — and so trusts the
// ocigate.io/profile annotation (docs/trust.md). The trust tests start
// agents that trust nothing. Hook reports are read from dir's, not the
// machine's.
func trustTestSpecs(cfg *agentconfig.Config, dir string) {
	cfg.TrustedAnnotations = []string{"ocigate.io/profile"}
	cfg.HookReports = filepath.Join(dir, "hook-reports")
}

// runArgs is the command line of `ocigate-agentd run` with cfg.
func runArgs(cfg agentconfig.Config) []string {
	return append([]string{"run"}, cfg.Args()...)
}

// waitReady waits with `ocigate-agentd status --wait` until the agent on
// socket answers — it is ready: its programs attached, its profiles
// loaded — or it exits (done delivers; what it delivers is put back for
// the agent's owner), or within passes.
func waitReady(socket string, done chan error, within time.Duration) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, agentdBin, "status", "--socket", socket, "--wait", within.String(), "--summary")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ocigate-agentd status --wait: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			return fmt.Errorf("agent on %s not ready: %w: %s", socket, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	case err := <-done:
		done <- err
		cancel()
		<-waited
		return fmt.Errorf("agent on %s exited during startup: %v", socket, err)
	}
}

// agentStatus runs `ocigate-agentd status --socket S -o json`.
func agentStatus() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, agentdBin, "status", "--socket", socketPath, "-o", "json")
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ocigate-agentd status: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// teardown stops the harness agent, uninstalls its BPF state, removes the
// containers' cgroup parent and the work directory, and returns every
// failure.
func teardown() error {
	var errs []error
	if agentCmd != nil && agentCmd.Process != nil {
		if err := stopProcess(agentCmd, agentDone, syscall.SIGTERM, 15*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("agent: %w", err))
		}
	}
	if agentCmd != nil && pinDir != "" {
		if err := uninstallBPF(socketPath, pinDir, stateDir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := testenv.RemoveCgroup(cgroupParent); err != nil {
		errs = append(errs, err)
	}
	if workDir != "" && os.Getenv("OCIGATE_E2E_KEEP") == "" {
		// podman keeps its storage's overlay directory bind-mounted on
		// itself after its last container; nothing below may stay mounted.
		for _, m := range mountsBelow(workDir) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
			}
		}
		if err := os.RemoveAll(workDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// uninstallBPF runs `ocigate-agentd uninstall --bpf` for an agent's
// directories: what a pinning agent leaves after it stopped.
func uninstallBPF(socket, pins, state string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, agentdBin, "uninstall", "--bpf", "--socket", socket,
		"--pin-dir", pins, "--state-dir", state).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ocigate-agentd uninstall --bpf: %w: %s", err, out)
	}
	if _, err := os.Stat(pins); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pin directory %s left after uninstall --bpf (%v): %s", pins, err, out)
	}
	return nil
}

// copyProfiles fills an agent's --profiles directory dir: the seed
// policies (internal/seeds) and testdata/profiles, whose profiles use them.
func copyProfiles(dir string) error {
	if _, err := seeds.WriteDir(dir); err != nil {
		return fmt.Errorf("copying profiles: %w", err)
	}
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "profiles"))); err != nil {
		return fmt.Errorf("copying profiles: %w", err)
	}
	return nil
}
