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
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api/wire"
	"github.com/ocigate/ocigate/internal/buildinfo"
	"github.com/ocigate/ocigate/internal/errwrap"
	"github.com/ocigate/ocigate/internal/hookreport"
	"github.com/ocigate/ocigate/internal/sysread"
	"github.com/ocigate/ocigate/runtime/oci"
)

// The hook is a fresh process on every container's start, and it pays
// at its start for the code it links: what it reaches uses none of fmt,
// flag, context, encoding/json or reflect (TestHookReachesNoHeavyCode).

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
	var fs flagSet
	fs.String(&o.socket, "socket", wire.DefaultSocket, "agent API socket")
	fs.Duration(&o.timeout, "timeout", 2*time.Second, "deadline for the agent's answer")
	fs.Bool(&o.failOpen, "fail-open", "let the container start unprotected when registration fails")
	fs.String(&o.runtime, "runtime", "", "runtime name reported to the agent (default: detected)")
	fs.Bool(&o.version, "version", "print the version, commit, BPF objects' hash and protocol, and exit")
	fs.Bool(&o.allowFailOpenAnnotation, "allow-fail-open-annotation",
		"when no agent answers, let a container whose annotation says "+oci.AnnotationFailurePolicy+": open start unprotected (default: refused)")
	fs.String(&o.reportDir, "report-dir", hookreport.DefaultDir, "directory where refusals made while no agent answers wait for the agent (empty: none kept)")
	o.gate.flags(&fs)
	usage := func() {
		_, _ = io.WriteString(stderr, hookHelp)
		fs.PrintDefaults(stderr)
	}
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, errHelp) {
			_, _ = io.WriteString(stderr, err.Error()+"\n")
		}
		usage()
		return nil, err
	}
	if o.version {
		return o, nil
	}
	if err := o.gate.check(); err != nil {
		return nil, err
	}
	if len(fs.Args()) != 1 {
		usage()
		return nil, errors.New("want exactly one stage argument, got " + strconv.Itoa(len(fs.Args())))
	}
	o.stage = fs.Args()[0]
	switch o.stage {
	case stageCreateRuntime, stagePrestart, stagePoststop:
	default:
		return nil, errors.New("unknown stage " + strconv.Quote(o.stage) + ": want createRuntime, prestart or poststop")
	}
	if o.timeout <= 0 {
		return nil, errors.New("--timeout must be positive")
	}
	return o, nil
}

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	t := newTiming()
	defer t.print(stderr)
	o, err := parseFlags(args, stderr)
	if errors.Is(err, errHelp) {
		return 0 // --help printed the usage
	}
	if err != nil {
		say(stderr, "ocigate-hook: "+err.Error())
		return 2
	}
	if o.version {
		say(stdout, "ocigate-hook "+buildinfo.Get().String())
		return 0
	}
	o.timing = t
	t.mark("flags")
	deadline := time.Now().Add(o.timeout)
	w := startWatchdog(o.timeout+deadlineGrace, func() int { return conclude(o, nil, nil, errHookDeadline, stderr) })
	if o.stage == stagePoststop {
		err := unregister(deadline, o, stdin)
		w.finish()
		return conclude(o, nil, nil, err, stderr)
	}
	admit := register
	if o.gate.on {
		admit = gate
	}
	c, v, err := admit(deadline, o, stdin)
	w.finish()
	return conclude(o, c, v, err, stderr)
}

// say writes line and a newline to w.
func say(w io.Writer, line string) { _, _ = io.WriteString(w, line+"\n") }

// conclude says what the hook's result means for the runtime, on stderr,
// and returns the exit status: at poststop always 0; else 0 when
// registered or open (failOpen), 1 when refused.
func conclude(o *options, c *oci.Container, v *wire.Verdict, err error, stderr io.Writer) int {
	if o.stage == stagePoststop {
		if err != nil {
			say(stderr, "ocigate-hook: poststop: "+err.Error()+" (ignored)")
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
	open, why, refused := failOpen(o, c, v, stderr)
	if open {
		say(stderr, "ocigate-hook: WARNING: fail-open ("+why+"): container "+id+" starts UNPROTECTED: "+err.Error())
		return 0
	}
	if refused != "" {
		err = errwrap.Message(err.Error()+"; annotation "+oci.AnnotationFailurePolicy+"=open refused: "+refused, err)
		report(o, c, refused)
	}
	say(stderr, "ocigate-hook: container "+id+" refused (fail-closed): "+err.Error())
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
func failOpen(o *options, c *oci.Container, v *wire.Verdict, stderr io.Writer) (open bool, why, refused string) {
	switch {
	case o.failOpen:
		return true, "--fail-open", ""
	case v != nil:
		return v.FailurePolicy == wire.FailOpen, "the profile's failurePolicy", ""
	case c == nil:
		return false, "", ""
	}
	if _, set := c.Annotations[oci.AnnotationFailurePolicy]; !set {
		return false, "", ""
	}
	open, err := c.FailOpen()
	switch {
	case err != nil:
		say(stderr, "ocigate-hook: "+err.Error()+"; treating as closed")
		return false, "", ""
	case open && o.allowFailOpenAnnotation:
		return true, "annotation " + oci.AnnotationFailurePolicy + ", allowed by --allow-fail-open-annotation", ""
	case open:
		return false, "", "fail-open is the operator's choice, and this hook's --allow-fail-open-annotation is off"
	}
	return false, "", ""
}

// register registers the container; on a refusal v carries the
// agent's answer (its profile's failure policy).
func register(deadline time.Time, o *options, stdin io.Reader) (*oci.Container, *wire.Verdict, error) {
	c, err := oci.LoadContainer(stdin)
	o.timing.mark("load")
	if err != nil {
		return c, nil, err
	}
	v, err := registerLoaded(deadline, o, c)
	return c, v, err
}

// registerLoaded registers a container whose state is read.
func registerLoaded(deadline time.Time, o *options, c *oci.Container) (*wire.Verdict, error) {
	if c.Pid <= 0 {
		return nil, errors.New("state has no pid at " + o.stage)
	}
	ident, err := cgroupfilter.Resolver{}.Resolve(c.Pid)
	if err != nil {
		return nil, errwrap.Wrap("resolve cgroup and namespaces of pid "+strconv.Itoa(c.Pid), err)
	}
	runtime, key := runtimeName(o.runtime, c)
	o.timing.mark("resolve")
	g := &wire.Registration{
		ContainerID: c.ID, Runtime: runtime, RuntimeAnnotation: key, Bundle: c.Bundle,
		Pid: c.Pid, Annotations: c.Annotations, Identity: wire.IdentityOf(ident),
	}
	// An agent restarting (an upgrade) has no socket for a moment: wait
	// up to half the hook's --timeout for it rather than refuse the
	// container (wire.Register).
	v, err := wire.Register(o.socket, g, o.timeout/2, o.timeout, deadline)
	o.timing.mark("call")
	return v, err
}

func unregister(deadline time.Time, o *options, stdin io.Reader) error {
	st, err := oci.ReadState(stdin)
	if err != nil {
		return err
	}
	_, err = wire.Unregister(o.socket, st.ID, deadline)
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
