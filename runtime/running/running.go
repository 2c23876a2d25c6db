// Package running lists the containers that run now, from each runtime
// the agent knows: every namespace of containerd (over its API) and the
// runc state roots given (`runc --root ROOT list`: plain runc, podman,
// anything else that drives runc). The agent adopts them at start.
package running

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/ocigate/ocigate/runtime/containerd"
	"github.com/ocigate/ocigate/runtime/describe"
)

// Container is a running (or created, not yet started) container.
type Container struct {
	ID          string
	Runtime     string // containerd, podman, runc
	Bundle      string // "" when the runtime does not say (containerd's API)
	Pid         int    // its init process
	Annotations map[string]string
	// Info is what the runtime's listing already said of its image and
	// name (containerd's metadata); the zero value otherwise.
	Info describe.Info
}

// Lister lists containers from the runtimes configured in it.
type Lister struct {
	Containerd *containerd.Client // nil: not asked
	RuncBinary string             // default "runc"
	RuncRoots  []string           // runc --root directories
	// RuncTimeout bounds each `runc list` (default 10 s).
	RuncTimeout time.Duration
}

// List returns the containers of every source, each once (containerd's
// first), and an error per source that could not be listed.
func (l *Lister) List(ctx context.Context) ([]Container, []error) {
	var (
		out  []Container
		errs []error
		seen = map[string]bool{}
	)
	add := func(cs []Container) {
		for _, c := range cs {
			if !seen[c.ID] {
				seen[c.ID] = true
				out = append(out, c)
			}
		}
	}
	if l.Containerd != nil {
		cs, err := l.fromContainerd(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		add(cs)
	}
	for _, root := range l.RuncRoots {
		cs, err := l.fromRunc(ctx, root)
		if err != nil {
			errs = append(errs, err)
		}
		add(cs)
	}
	return out, errs
}

func (l *Lister) fromContainerd(ctx context.Context) ([]Container, error) {
	tasks, err := l.Containerd.AllRunningTasks(ctx)
	if err != nil {
		return nil, err
	}
	var out []Container
	for _, t := range tasks {
		c, err := l.Containerd.Container(ctx, t.Namespace, t.ContainerID)
		if err != nil {
			return out, err
		}
		out = append(out, Container{ID: t.ContainerID, Runtime: "containerd", Pid: t.Pid, Annotations: c.Annotations,
			Info: describe.Info{Image: c.Image, Name: c.Labels["nerdctl/name"], Source: "containerd"}})
	}
	return out, nil
}

// runcEntry is one container of `runc list -f json`.
type runcEntry struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations"`
}

func (l *Lister) fromRunc(ctx context.Context, root string) ([]Container, error) {
	bin := l.RuncBinary
	if bin == "" {
		bin = "runc"
	}
	timeout := l.RuncTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "--root", root, "list", "--format", "json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s --root %s list: %w: %s", bin, root, err, strings.TrimSpace(stderr.String()))
	}
	return parseRuncList(root, stdout.Bytes())
}

// parseRuncList keeps the containers that have a live init: running,
// paused, or created and not started yet.
func parseRuncList(root string, data []byte) ([]Container, error) {
	var entries []runcEntry
	if err := json.Unmarshal(data, &entries); err != nil { // "null" when there are none
		return nil, fmt.Errorf("runc --root %s list: decoding %q: %w", root, preview(data), err)
	}
	var out []Container
	for _, e := range entries {
		switch e.Status {
		case "running", "created", "paused":
		default:
			continue
		}
		if e.Pid <= 0 || e.ID == "" {
			continue
		}
		out = append(out, Container{ID: e.ID, Runtime: runtimeOf(e), Bundle: e.Bundle, Pid: e.Pid, Annotations: e.Annotations})
	}
	return out, nil
}

// runtimeOf names the runtime that drives runc for a container, as the
// hook would.
func runtimeOf(e runcEntry) string {
	switch {
	case e.Annotations["io.container.manager"] == "libpod":
		return "podman"
	case hasPrefixKey(e.Annotations, "io.kubernetes.cri-o."):
		return "cri-o"
	}
	if _, _, ok := containerd.BundleRef(e.Bundle); ok {
		return "containerd"
	}
	return "runc"
}

func hasPrefixKey(m map[string]string, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func preview(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
