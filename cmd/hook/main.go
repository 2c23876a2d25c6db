// Command ocigate-hook is an OCI hook. At createRuntime (or prestart) it
// registers the container with the ocigate agent and exits 0 only once
// enforcement is live, so a failure makes the runtime refuse the
// container; at poststop it unregisters and never fails the runtime.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/runtime/oci"
)

// Stages the hook handles.
const (
	stageCreateRuntime = "createRuntime"
	stagePrestart      = "prestart"
	stagePoststop      = "poststop"
)

type options struct {
	socket   string
	timeout  time.Duration
	failOpen bool
	runtime  string
	stage    string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("ocigate-hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.socket, "socket", api.DefaultSocket, "agent API socket")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "deadline for the agent's answer")
	fs.BoolVar(&o.failOpen, "fail-open", false, "let the container start unprotected when registration fails")
	fs.StringVar(&o.runtime, "runtime", "", "runtime name reported to the agent (default: detected)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocigate-hook [flags] createRuntime|prestart|poststop  (OCI state on stdin)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return nil, fmt.Errorf("want exactly one stage argument, got %d", fs.NArg())
	}
	o.stage = fs.Arg(0)
	switch o.stage {
	case stageCreateRuntime, stagePrestart, stagePoststop:
	default:
		return nil, fmt.Errorf("unknown stage %q: want createRuntime, prestart or poststop", o.stage)
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be positive")
	}
	return o, nil
}

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ocigate-hook: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if o.stage == stagePoststop {
		if err := unregister(ctx, o, stdin); err != nil {
			fmt.Fprintf(stderr, "ocigate-hook: poststop: %v (ignored)\n", err)
		}
		return 0
	}
	c, err := register(ctx, o, stdin)
	if err == nil {
		return 0
	}
	id := "?"
	if c != nil {
		id = c.ID
	}
	if failOpen(o, c, stderr) {
		fmt.Fprintf(stderr, "ocigate-hook: WARNING: fail-open: container %s starts UNPROTECTED: %v\n", id, err)
		return 0
	}
	fmt.Fprintf(stderr, "ocigate-hook: container %s refused (fail-closed): %v\n", id, err)
	return 1
}

// failOpen: the flag, or the container's ocigate.io/failure-policy
// annotation. An invalid annotation counts as closed.
func failOpen(o *options, c *oci.Container, stderr io.Writer) bool {
	if o.failOpen {
		return true
	}
	if c == nil {
		return false
	}
	open, err := c.FailOpen()
	if err != nil {
		if _, set := c.Annotations[oci.AnnotationFailurePolicy]; set {
			fmt.Fprintf(stderr, "ocigate-hook: %v; treating as closed\n", err)
		}
		return false
	}
	return open
}

func register(ctx context.Context, o *options, stdin io.Reader) (*oci.Container, error) {
	c, err := oci.LoadContainer(stdin)
	if err != nil {
		return c, err
	}
	if c.Pid <= 0 {
		return c, fmt.Errorf("state has no pid at %s", o.stage)
	}
	ident, err := cgroupfilter.Resolver{}.Resolve(c.Pid)
	if err != nil {
		return c, fmt.Errorf("resolve cgroup and namespaces of pid %d: %w", c.Pid, err)
	}
	req := &api.Request{Op: api.OpRegister, Register: &api.Registration{
		ContainerID: c.ID, Runtime: runtimeName(o.runtime, c), Bundle: c.Bundle,
		Pid: c.Pid, Annotations: c.Annotations, Identity: ident,
	}}
	if _, err := api.Call(ctx, o.socket, req); err != nil {
		return c, err
	}
	return c, nil
}

func unregister(ctx context.Context, o *options, stdin io.Reader) error {
	st, err := oci.ReadState(stdin)
	if err != nil {
		return err
	}
	req := &api.Request{Op: api.OpUnregister, Unregister: &api.Unregistration{ContainerID: st.ID}}
	_, err = api.Call(ctx, o.socket, req)
	return err
}

// runtimeName names the runtime from the flag, the runtime's annotations
// or the hook's parent process.
func runtimeName(flagValue string, c *oci.Container) string {
	if flagValue != "" {
		return flagValue
	}
	switch {
	case c.Annotations["io.container.manager"] == "libpod":
		return "podman"
	case hasPrefixKey(c.Annotations, "io.kubernetes.cri-o."):
		return "cri-o"
	case hasPrefixKey(c.Annotations, "io.kubernetes.cri."):
		return "containerd"
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", os.Getppid()))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(comm))
}

func hasPrefixKey(m map[string]string, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
