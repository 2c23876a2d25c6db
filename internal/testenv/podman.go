package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ocigate/ocigate/runtime/hooksd"
)

// PodmanPath is the podman binary used by the harness.
var PodmanPath = "/usr/bin/podman"

// PodmanRun describes one `podman run --rootfs` invocation. The container
// always uses runc, the cgroupfs manager and the host network (no CNI here).
type PodmanRun struct {
	// Rootfs is the root filesystem directory (required).
	Rootfs string
	// Args is the command and its arguments (required).
	Args []string
	// HooksDir is passed as --hooks-dir when set.
	HooksDir string
	// CgroupParent is passed as --cgroup-parent when set, e.g. "/ocigate-e2e".
	CgroupParent string
	// Name is passed as --name when set.
	Name string
	// CidFile receives the full container ID (required by RunPodman, which
	// sets it to a temporary file when empty).
	CidFile string
	// Extra options inserted before --rootfs.
	Extra []string
}

// Command returns podman's argv (without the podman binary itself).
func (p PodmanRun) Command() ([]string, error) {
	if p.Rootfs == "" || len(p.Args) == 0 {
		return nil, fmt.Errorf("podman run: rootfs and args are required")
	}
	if filepath.Clean(p.Rootfs) == "/" {
		return nil, fmt.Errorf("podman run: rootfs must not be /")
	}
	args := []string{
		"run", "--rm",
		"--runtime", RuncPath,
		"--cgroup-manager", "cgroupfs",
		"--ulimit", "nofile=1024:1024",
		"--ulimit", "nproc=1024:1024",
		"--network", "host",
		"--log-driver", "none",
	}
	if p.HooksDir != "" {
		args = append(args, "--hooks-dir", p.HooksDir)
	}
	if p.CgroupParent != "" {
		args = append(args, "--cgroup-parent", p.CgroupParent)
	}
	if p.Name != "" {
		args = append(args, "--name", p.Name)
	}
	if p.CidFile != "" {
		args = append(args, "--cidfile", p.CidFile)
	}
	args = append(args, p.Extra...)
	args = append(args, "--rootfs", p.Rootfs)
	return append(args, p.Args...), nil
}

// PodmanResult is the outcome of RunPodman.
type PodmanResult struct {
	ID       string // full container ID from the cidfile ("" if not created)
	Stdout   string
	Stderr   string
	ExitCode int // container status, or podman's 125/126/127
}

// RunPodman runs p, bounded by timeout (SIGTERM, then SIGKILL after a grace
// period). err is non-nil only when podman could not be run or timed out; a
// non-zero exit code alone is not an error.
func RunPodman(ctx context.Context, p PodmanRun, timeout time.Duration) (PodmanResult, error) {
	var res PodmanResult
	if p.CidFile == "" {
		dir, err := os.MkdirTemp("", "ocigate-cid-")
		if err != nil {
			return res, fmt.Errorf("podman run: %w", err)
		}
		defer os.RemoveAll(dir)
		p.CidFile = filepath.Join(dir, "cid")
	}
	argv, err := p.Command()
	if err != nil {
		return res, err
	}
	var outBuf, errBuf bytes.Buffer
	cmd := exec.CommandContext(ctx, "timeout", append([]string{"-k", seconds(killGrace), seconds(timeout), PodmanPath}, argv...)...)
	cmd.Stdout = &outBuf
	cmd.Stderr = &errBuf
	start := time.Now()
	runErr := cmd.Run()
	elapsed := time.Since(start)
	res.Stdout, res.Stderr = outBuf.String(), errBuf.String()
	if data, err := os.ReadFile(p.CidFile); err == nil {
		res.ID = strings.TrimSpace(string(data))
	}
	code, runErr := exitStatus(runErr)
	res.ExitCode = code
	if timedOut(code, runErr, elapsed, timeout) {
		if res.ID != "" {
			_ = exec.Command(PodmanPath, "rm", "-f", "-t", "0", res.ID).Run()
		}
		return res, fmt.Errorf("podman %s: %w after %v (stdout: %q, stderr: %q)",
			strings.Join(argv, " "), ErrTimeout, elapsed.Round(time.Millisecond), res.Stdout, res.Stderr)
	}
	if runErr != nil {
		return res, fmt.Errorf("podman %s: %w (stderr: %s)", strings.Join(argv, " "), runErr, strings.TrimSpace(res.Stderr))
	}
	return res, nil
}

// HooksDJSON returns a hooks.d JSON document (version 1.0.0, the schema
// of runtime/hooksd) that runs hookPath with args (the full argv) for
// every container at the given stages (default: createRuntime and
// poststop).
func HooksDJSON(hookPath string, args []string, stages ...string) []byte {
	if len(stages) == 0 {
		stages = hooksd.Stages
	}
	data, err := json.MarshalIndent(hooksd.Config{
		Version: "1.0.0",
		Hook:    hooksd.Hook{Path: hookPath, Args: args},
		When:    hooksd.When{Always: true},
		Stages:  stages,
	}, "", "  ")
	if err != nil {
		// Only strings and a bool: marshalling cannot fail.
		panic(fmt.Sprintf("encoding hooks.d JSON: %v", err))
	}
	return append(data, '\n')
}

// WriteHooksDir writes a hooks.d directory with one file per stage, since
// the stages take different argv: 50-ocigate-createruntime.json running
// hookPath with createArgs, and 50-ocigate-poststop.json with poststopArgs
// (skipped when poststopArgs is nil).
func WriteHooksDir(dir, hookPath string, createArgs, poststopArgs []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing hooks dir: %w", err)
	}
	files := map[string][]byte{
		"50-ocigate-createruntime.json": HooksDJSON(hookPath, createArgs, "createRuntime"),
	}
	if poststopArgs != nil {
		files["50-ocigate-poststop.json"] = HooksDJSON(hookPath, poststopArgs, "poststop")
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return fmt.Errorf("writing hooks dir: %w", err)
		}
	}
	return nil
}
