package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
	"github.com/ocigate/ocigate/internal/testenv/peer"
)

// containerTimeout bounds every container run.
const containerTimeout = 30 * time.Second

// eventTimeout bounds the wait for an agent event.
const eventTimeout = 5 * time.Second

var idSeq atomic.Int64

// newID returns a unique container ID for this run.
func newID(name string) string {
	return fmt.Sprintf("e2e-%s-%d-%d", name, os.Getpid(), idSeq.Add(1))
}

// hookArgs is the hook's argv for a stage: ocigate-hook --socket S
// [extra...] STAGE.
func hookArgs(socket, stage string, extra ...string) []string {
	args := []string{"ocigate-hook", "--socket", socket}
	args = append(args, extra...)
	return append(args, stage)
}

// ctrOpts describes one runc container of a scenario.
type ctrOpts struct {
	Name string   // part of the container ID
	Args []string // container process
	// NoHook runs the container without the ocigate hook (unregistered).
	NoHook bool
	// Socket overrides the agent socket the hook dials.
	Socket string
	// HookBin replaces the hook binary (another version's).
	HookBin string
	// HookExtra are extra hook flags (e.g. --fail-open) for createRuntime.
	HookExtra []string
	// HookWrap runs the createRuntime hook through /bin/sh, appending its
	// stderr to this file (runc drops the output of hooks that succeed).
	HookWrap string
	// CgroupNamespace and Mounts are passed to the bundle.
	CgroupNamespace bool
	Mounts          []specs.Mount
	// Annotations are added to the bundle's.
	Annotations map[string]string
	// OwnNetwork gives the container a network namespace of its own, with
	// no interface up: nothing it sends can leave the machine.
	OwnNetwork bool
	// HostPID keeps the container in the host's pid namespace.
	HostPID bool
	// HostRoot runs the container on the host's own /usr and /etc (bash,
	// python3, perl, ...) instead of the busybox rootfs; see hostRootfs.
	HostRoot bool
}

// ctrResult is what a container run produced.
type ctrResult struct {
	ID       string
	Stdout   string
	Stderr   string
	ExitCode int
}

func (r ctrResult) String() string {
	return fmt.Sprintf("container %s: exit %d, stdout %q, stderr %q", r.ID, r.ExitCode, r.Stdout, r.Stderr)
}

// runContainer writes a bundle for o (on the shared rootfs, in the host
// network namespace, cgroup /ocigate-e2e/<id>, with the ocigate hook unless
// NoHook) and runs it to completion with runc. The container is deleted and
// its cgroup removed afterwards.
func runContainer(t *testing.T, o ctrOpts) ctrResult {
	t.Helper()
	id := newID(o.Name)
	bundle := filepath.Join(t.TempDir(), "bundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	b := bundleFor(id, o)
	if err := testenv.WriteBundle(bundle, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupContainer(t, id) })
	stdout, stderr, code, err := testenv.RunRunc(context.Background(), bundle, id, containerTimeout)
	res := ctrResult{ID: id, Stdout: stdout, Stderr: stderr, ExitCode: code}
	t.Logf("%v", res)
	if err != nil {
		t.Fatalf("running container: %v", err)
	}
	return res
}

func bundleFor(id string, o ctrOpts) testenv.Bundle {
	b := testenv.Bundle{
		Rootfs:          rootfsDir,
		ReadonlyRootfs:  true,
		Args:            o.Args,
		HostNetwork:     !o.OwnNetwork,
		HostPID:         o.HostPID,
		CgroupNamespace: o.CgroupNamespace,
		CgroupsPath:     cgroupParent + "/" + id,
		Mounts:          o.Mounts,
		Annotations:     map[string]string{"io.ocigate.e2e.test": o.Name},
	}
	for k, v := range o.Annotations {
		b.Annotations[k] = v
	}
	if o.HostRoot {
		b.Rootfs = hostRootfs()
		b.Mounts = append(testenv.HostRootMounts(), o.Mounts...)
	}
	if o.NoHook {
		return b
	}
	socket := socketPath
	if o.Socket != "" {
		socket = o.Socket
	}
	hook := hookBin
	if o.HookBin != "" {
		hook = o.HookBin
	}
	create := testenv.Hook{Path: hook, Args: hookArgs(socket, "createRuntime", o.HookExtra...), Timeout: 10}
	if o.HookWrap != "" {
		// exec keeps the hook's pid and parent (runc), only stderr changes.
		script := `exec "$0" "$@" 2>>` + shellQuote(o.HookWrap)
		create = testenv.Hook{
			Path:    "/bin/sh",
			Args:    append([]string{"sh", "-c", script, hook}, create.Args[1:]...),
			Timeout: 10,
		}
	}
	b.CreateRuntime = []testenv.Hook{create}
	b.Poststop = []testenv.Hook{{Path: hook, Args: hookArgs(socket, "poststop"), Timeout: 10}}
	return b
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// cleanupContainer deletes a container left behind and removes its cgroup.
func cleanupContainer(t *testing.T, id string) {
	if err := testenv.RuncDelete(id); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if err := testenv.RemoveCgroup(cgroupParent + "/" + id); err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// waitEvent waits for an event matching want (see agentlog.Match) and fails
// the test with the container's event lines and the agent log if none
// comes.
func waitEvent(t *testing.T, containerID string, want map[string]any) map[string]any {
	t.Helper()
	ev, err := events.Wait(context.Background(), eventTimeout, agentlog.Matcher(want))
	if err != nil {
		t.Errorf("agent event %v: %v\n%s", want, err, diagnostics(containerID))
		return nil
	}
	return ev
}

// noEvent asserts that no event matching want was written (after giving the
// agent a moment to write one).
func noEvent(t *testing.T, containerID string, want map[string]any) {
	t.Helper()
	ev, err := events.Wait(context.Background(), time.Second, agentlog.Matcher(want))
	if err == nil {
		b, _ := json.Marshal(ev)
		t.Errorf("unexpected agent event matching %v: %s\n%s", want, b, diagnostics(containerID))
	}
}

// diagnostics returns the event lines that mention containerID (all lines
// if none does) and the end of the agent log.
func diagnostics(containerID string) string {
	var b strings.Builder
	lines := events.Lines()
	var mine []string
	for _, l := range lines {
		if containerID != "" && strings.Contains(l, containerID) {
			mine = append(mine, l)
		}
	}
	if len(mine) == 0 {
		fmt.Fprintf(&b, "events file: %d lines, none for %q; last lines:\n", len(lines), containerID)
		if len(lines) > 10 {
			lines = lines[len(lines)-10:]
		}
		mine = lines
	} else {
		fmt.Fprintf(&b, "events for %s:\n", containerID)
	}
	for _, l := range mine {
		b.WriteString("  " + l + "\n")
	}
	fmt.Fprintf(&b, "agent log (tail):\n%s\n", agentlog.Tail(agentLog, 20))
	return b.String()
}

// workloads returns the container IDs of the agent's registered workloads.
func workloads(t *testing.T) []string {
	t.Helper()
	out, err := agentStatus()
	if err != nil {
		t.Fatalf("agent status: %v", err)
	}
	var st struct {
		Workloads []struct {
			ContainerID string `json:"container_id"`
			CgroupID    uint64 `json:"cgroup_id"`
		} `json:"workloads"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("decoding agent status %q: %v", out, err)
	}
	ids := make([]string, 0, len(st.Workloads))
	for _, w := range st.Workloads {
		ids = append(ids, w.ContainerID)
	}
	return ids
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// listen starts a recording listener and closes it at the end of the test.
func listen(t *testing.T, addr string, greeting string) *peer.Listener {
	t.Helper()
	ln, err := peer.Listen(addr, []byte(greeting))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ln.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return ln
}

// deniedConnect is the event of a denied TCP connect to addr:port by the
// container.
func deniedConnect(containerID, addr string, port int) map[string]any {
	return map[string]any{
		"process_kprobe.function_name":         "tcp_connect",
		"process_kprobe.action":                "KPROBE_ACTION_OVERRIDE",
		"process_kprobe.args.0.sock_arg.daddr": addr,
		"process_kprobe.args.0.sock_arg.dport": port,
		"ocigate.container_id":                 containerID,
		"ocigate.enforced":                     true,
	}
}

// anyEnforced matches any enforced verdict on the container.
func anyEnforced(containerID string) map[string]any {
	return map[string]any{"ocigate.container_id": containerID, "ocigate.enforced": true}
}

// reverseShellGreeting is what the attacker's listener types into the shell
// it expects; a live shell answers PWNED-42.
const (
	reverseShellGreeting = "echo PWNED-$((6*7)); exit\n"
	reverseShellAnswer   = "PWNED-42"
)

// errNotStopped is wrapped by stopProcess's error for a process that did
// not exit in time.
var errNotStopped = errors.New("did not stop")

// stopProcess sends sig to cmd, whose cmd.Wait result comes on done, and
// waits up to within for it to exit; past that it kills cmd, waits, and
// returns an error wrapping errNotStopped. A process that exits with an
// error returns it, naming sig.
func stopProcess(cmd *exec.Cmd, done <-chan error, sig syscall.Signal, within time.Duration) error {
	_ = cmd.Process.Signal(sig)
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("exited with %w after %v", err, sig)
		}
		return nil
	case <-time.After(within):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%w within %v of %v", errNotStopped, within, sig)
	}
}
