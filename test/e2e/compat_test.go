package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/agentconfig"
)

// The hook↔agent protocol across one version (internal/api/version.go):
// the hook and the agent of the commit before the protocol had versions,
// built in the test, against this commit's agent and hook.

// protocolFile is the file whose first commit is the protocol change; the
// commit before it is the "previous release" the tests build.
const protocolFile = "internal/api/version.go"

var (
	previousOnce            sync.Once
	previousHook, previousD string
	previousErr             error
)

// previousBinaries builds ocigate-hook and ocigate-agentd of the commit
// before the protocol change, once per run.
func previousBinaries(t *testing.T) (hook, agentd string) {
	t.Helper()
	previousOnce.Do(func() { previousHook, previousD, previousErr = buildPrevious() })
	if previousErr != nil {
		t.Fatal(previousErr)
	}
	return previousHook, previousD
}

// buildPrevious extracts the commit before the protocol change with git
// archive and builds its hook and agent (modules from the module cache or
// the proxy, as go.mod of that commit says).
func buildPrevious() (hook, agentd string, err error) {
	root, err := moduleRoot()
	if err != nil {
		return "", "", err
	}
	out, err := gitOutput(root, "log", "--diff-filter=A", "--format=%H", "--", protocolFile)
	if err != nil {
		return "", "", err
	}
	commits := strings.Fields(out)
	if len(commits) == 0 {
		return "", "", fmt.Errorf("no commit adds %s in this clone's history (a shallow clone? fetch the full history: git fetch --unshallow)", protocolFile)
	}
	prev := commits[len(commits)-1] + "^"
	if _, err := gitOutput(root, "rev-parse", "--verify", "--quiet", prev); err != nil {
		return "", "", fmt.Errorf("the commit before the protocol change (%s) is not in this clone (shallow?): %w", prev, err)
	}
	dir := filepath.Join(workDir, "previous")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	archive := exec.Command("sh", "-c", `git -C "$0" archive --format=tar "$1" | tar -x -C "$2"`, root, prev, dir)
	if b, err := archive.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("git archive %s: %w\n%s", prev, err, b)
	}
	hook, agentd = filepath.Join(dir, "bin", "ocigate-hook"), filepath.Join(dir, "bin", "ocigate-agentd")
	for pkg, bin := range map[string]string{"./cmd/hook": hook, "./cmd/agentd": agentd} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod -buildvcs=false")
		b, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return "", "", fmt.Errorf("go build %s of %s: %w\n%s", pkg, prev, err, b)
		}
	}
	return hook, agentd, nil
}

// gitOutput runs git in dir and returns its stdout.
func gitOutput(dir string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// The previous hook registers a container with this agent, which answers
// in the previous protocol: the container starts and is enforced from its
// first instruction, and poststop unregisters it.
func TestPreviousHookNewAgent(t *testing.T) {
	requireE2E(t)
	oldHook, _ := previousBinaries(t)
	res := runContainer(t, ctrOpts{Name: "old-hook", HookBin: oldHook, Args: []string{"/probe", "connect", deniedAddr}})
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" || res.ExitCode != 1 {
		t.Fatalf("want the connect denied with EPERM (the old hook registered with the new agent); got %v", res)
	}
	waitEvent(t, res.ID, deniedConnect(res.ID, "127.0.0.2", 4444))
	deadline := time.Now().Add(10 * time.Second)
	for contains(workloads(t), res.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("the old hook's poststop did not unregister %s", res.ID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// This hook registers a container with the previous agent, which refuses
// the protocol field; the hook asks again in the previous protocol: the
// container starts and is enforced. This CLI's status --wait reads the
// previous agent too (startExtraAgentBin waits with it).
func TestNewHookPreviousAgent(t *testing.T) {
	requireE2E(t)
	_, oldAgent := previousBinaries(t)
	a := startExtraAgentBin(t, oldAgent, nil, func(c *agentconfig.Config) {
		c.RuncRoots, c.ContainerdSocket = nil, ""
		// Options newer than the previous agent stay at their defaults,
		// so that its command line names none of them.
		d := agentconfig.Default()
		c.LogFormat, c.TrustedAnnotations, c.HookReports, c.DockerRoot = d.LogFormat, d.TrustedAnnotations, d.HookReports, d.DockerRoot
		legacyProfiles(t, c.ProfileDir)
	})
	res := runContainer(t, ctrOpts{Name: "old-agent", Socket: a.socket, Args: []string{"/probe", "connect", deniedAddr}})
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" || res.ExitCode != 1 {
		t.Fatalf("want the connect denied with EPERM (the new hook registered with the old agent); got %v", res)
	}
	a.waitEvent(t, deniedConnect(res.ID, "127.0.0.2", 4444))
}

// legacyProfiles takes out of the profiles in dir what the previous
// agent's parser does not know: spec.selectableBy (written as one flow
// mapping line in the e2e profiles).
func legacyProfiles(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var kept []string
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "selectableBy:") {
				kept = append(kept, line)
			}
		}
		if err := os.WriteFile(f, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
