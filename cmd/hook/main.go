// Command ocigate-hook is an OCI hook. At createRuntime (or prestart) it
// registers the container with the ocigate agent and exits 0 only once
// enforcement is live, so a failure makes the runtime refuse the
// container; at poststop it unregisters and never fails the runtime.
//
// The hook lives for a few milliseconds on the container's start path,
// so it skips the Go runtime's container-aware GOMAXPROCS (reading its
// own cgroup's CPU limit at start, and watching it after): neither
// matters to a process this short.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/buildinfo"
	"github.com/ocigate/ocigate/internal/hookreport"
	"github.com/ocigate/ocigate/internal/sysread"
	"github.com/ocigate/ocigate/runtime/oci"
)

// Stages the hook handles.
const (
	stageCreateRuntime = "createRuntime"
	stagePrestart      = "prestart"
	stagePoststop      = "poststop"
)

// hookHelp is --help's text before the flags.
const hookHelp = `usage: ocigate-hook [flags] createRuntime|prestart|poststop  (OCI state on stdin)

ocigate-hook is the OCI hook of ocigate, run by the container runtime
(hooks.d files of podman and CRI-O, containerd's base runtime spec, the
ocigate-runc wrapper), never by hand. At createRuntime (or prestart) it
registers the container's cgroup and namespaces with the agent and exits
0 only once enforcement is live; when registration fails it exits 1 and
the runtime refuses the container, unless --fail-open, the container's
ocigate.io/failure-policy annotation or the profile's failurePolicy says
open. A restarting agent is waited for up to half of --timeout. At
poststop it unregisters and always exits 0.

With --nri-gate (a Kubernetes node's gate: containerd's base runtime
spec, CRI-O's hooks.d) createRuntime defers to the agent's NRI plugin
while it is connected, registers the container while only the agent
listens, and while no agent listens lets only pods of the exempt
namespaces start.

exit status: 0 registered (or fail-open, or poststop); 1 refused; 2 usage.

flags:
`

// stdout is where --version prints.
var stdout io.Writer = os.Stdout

type options struct {
	socket   string
	timeout  time.Duration
	failOpen bool
	runtime  string
	stage    string
	version  bool
	// allowFailOpenAnnotation honours ocigate.io/failure-policy: open when
	// no agent answers (the installer's choice; off by default).
	allowFailOpenAnnotation bool
	reportDir               string // where refusals wait for the agent
	timing                  *timing
	gate                    gateOptions // --nri-gate (gate.go)
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
	fs.BoolVar(&o.version, "version", false, "print the version, commit, BPF objects' hash and protocol, and exit")
	fs.BoolVar(&o.allowFailOpenAnnotation, "allow-fail-open-annotation", false,
		"when no agent answers, let a container whose annotation says "+oci.AnnotationFailurePolicy+": open start unprotected (default: refused)")
	fs.StringVar(&o.reportDir, "report-dir", hookreport.DefaultDir, "directory where refusals made while no agent answers wait for the agent (empty: none kept)")
	o.gate.flags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, hookHelp)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.version {
		return o, nil
	}
	if err := o.gate.check(); err != nil {
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
	t := newTiming()
	defer t.print(stderr)
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // --help printed the usage
	}
	if err != nil {
		fmt.Fprintf(stderr, "ocigate-hook: %v\n", err)
		return 2
	}
	if o.version {
		fmt.Fprintln(stdout, "ocigate-hook", buildinfo.Get())
		return 0
	}
	o.timing = t
	t.mark("flags")
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	w := startWatchdog(o.timeout+deadlineGrace, func() int { return conclude(o, nil, nil, errHookDeadline, stderr) })
	if o.stage == stagePoststop {
		err := unregister(ctx, o, stdin)
		w.finish()
		return conclude(o, nil, nil, err, stderr)
	}
	admit := register
	if o.gate.on {
		admit = gate
	}
	c, resp, err := admit(ctx, o, stdin)
	w.finish()
	return conclude(o, c, resp, err, stderr)
}

// conclude says what the hook's result means for the runtime, on stderr,
// and returns the exit status: at poststop always 0; else 0 when
// registered or open (failOpen), 1 when refused.
func conclude(o *options, c *oci.Container, resp *api.Response, err error, stderr io.Writer) int {
	if o.stage == stagePoststop {
		if err != nil {
			fmt.Fprintf(stderr, "ocigate-hook: poststop: %v (ignored)\n", err)
		}
		return 0
	}
	if err == nil {
		return 0
	}
	id := "?"
	if c != nil {
		id = c.ID
	}
	open, why, refused := failOpen(o, c, resp, stderr)
	if open {
		fmt.Fprintf(stderr, "ocigate-hook: WARNING: fail-open (%s): container %s starts UNPROTECTED: %v\n", why, id, err)
		return 0
	}
	if refused != "" {
		err = fmt.Errorf("%w; annotation %s=open refused: %s", err, oci.AnnotationFailurePolicy, refused)
		report(o, c, refused)
	}
	fmt.Fprintf(stderr, "ocigate-hook: container %s refused (fail-closed): %v\n", id, err)
	return 1
}

// report leaves a refused fail-open annotation for the agent that comes
// back (it reports it as an ocigate_claim event); the refusal itself is
// the hook's error, which the runtime shows.
func report(o *options, c *oci.Container, rule string) {
	if o.reportDir == "" {
		return
	}
	r := hookreport.Report{Time: time.Now().UTC(), ContainerID: c.ID, Bundle: c.Bundle, Rule: rule,
		Claims: []hookreport.Claim{{Key: oci.AnnotationFailurePolicy, Value: c.Annotations[oci.AnnotationFailurePolicy]}}}
	r.Runtime, _ = runtimeName(o.runtime, c)
	// The hook's error says it all: a report that cannot be written is
	// only a lost event.
	_ = hookreport.Write(o.reportDir, r)
}

// failOpen decides what a failed registration means, and says why: the
// operator's --fail-open flag; else, when the agent answered, its
// failure policy (the profile's failurePolicy, or an annotation the
// agent's operator trusts); else — no agent answered, so no profile is
// known — the container's ocigate.io/failure-policy annotation, but open
// only when the operator allowed it (--allow-fail-open-annotation): a
// refused open comes back as refused, the rule. An invalid annotation
// counts as closed. The default is closed.
func failOpen(o *options, c *oci.Container, resp *api.Response, stderr io.Writer) (open bool, why, refused string) {
	switch {
	case o.failOpen:
		return true, "--fail-open", ""
	case resp != nil:
		return resp.FailurePolicy == api.FailOpen, "the profile's failurePolicy", ""
	case c == nil:
		return false, "", ""
	}
	if _, set := c.Annotations[oci.AnnotationFailurePolicy]; !set {
		return false, "", ""
	}
	open, err := c.FailOpen()
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "ocigate-hook: %v; treating as closed\n", err)
		return false, "", ""
	case open && o.allowFailOpenAnnotation:
		return true, "annotation " + oci.AnnotationFailurePolicy + ", allowed by --allow-fail-open-annotation", ""
	case open:
		return false, "", "fail-open is the operator's choice, and this hook's --allow-fail-open-annotation is off"
	}
	return false, "", ""
}

// register registers the container; on a refusal resp carries the
// agent's answer (its profile's failure policy).
func register(ctx context.Context, o *options, stdin io.Reader) (*oci.Container, *api.Response, error) {
	c, err := oci.LoadContainer(stdin)
	o.timing.mark("load")
	if err != nil {
		return c, nil, err
	}
	resp, err := registerLoaded(ctx, o, c)
	return c, resp, err
}

// registerLoaded registers a container whose state is read.
func registerLoaded(ctx context.Context, o *options, c *oci.Container) (*api.Response, error) {
	if c.Pid <= 0 {
		return nil, fmt.Errorf("state has no pid at %s", o.stage)
	}
	ident, err := cgroupfilter.Resolver{}.Resolve(c.Pid)
	if err != nil {
		return nil, fmt.Errorf("resolve cgroup and namespaces of pid %d: %w", c.Pid, err)
	}
	runtime, key := runtimeName(o.runtime, c)
	o.timing.mark("resolve")
	req := &api.Request{Op: api.OpRegister, Register: &api.Registration{
		ContainerID: c.ID, Runtime: runtime, RuntimeAnnotation: key, Bundle: c.Bundle,
		Pid: c.Pid, Annotations: c.Annotations, Identity: api.IdentityOf(ident),
	}}
	// An agent restarting (an upgrade) has no socket for a moment: wait
	// up to half the hook's --timeout for it rather than refuse the
	// container (api.CallWaiting).
	resp, err := api.CallWaitingVerdict(ctx, o.socket, req, o.timeout/2, o.timeout)
	o.timing.mark("call")
	return resp, err
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
// (then key is the annotation: a claim of the container's spec) or the
// hook's parent process.
func runtimeName(flagValue string, c *oci.Container) (name, key string) {
	if flagValue != "" {
		return flagValue, ""
	}
	if name, key := oci.RuntimeFromAnnotations(c.Annotations); name != "" {
		return name, key
	}
	comm, err := sysread.ReadFile("/proc/"+strconv.Itoa(os.Getppid())+"/comm", 64)
	if err != nil {
		return "", ""
	}
	return strings.TrimSpace(string(comm)), ""
}
