// Command suite runs ocigate's backend scenarios against a real
// ocigate-agentd and the real ocigate-hook, and prints one marker line per
// scenario. scripts/vmtest.sh runs it as the payload of QEMU guests booted
// on Debian kernels (see test/vmtest/README.md); it also runs natively:
//
//	go build -o /tmp/suite ./test/vmtest/suite
//	/tmp/suite --agent bin/ocigate-agentd --hook bin/ocigate-hook --expect fallback
//	/tmp/suite verifier    # only the verifier table of this kernel
//
// Each workload is a cgroup under <cgroup v2 root>/ocigate-vm/ holding a
// placeholder init process, registered by running ocigate-hook createRuntime
// with an OCI state on stdin (what runc does); the scenario's process is this
// binary re-exec'd as "suite probe ..." and started directly inside the
// cgroup (clone3 CLONE_INTO_CGROUP), so it is covered from its first
// instruction.
//
// The agent runs on the embedded profile profiles/vmtest.yaml (reverse-shell
// selectors plus the stand-in attacker 127.0.0.2), unless --profiles names
// another directory.
//
// Before it starts the agent, the suite measures the verifier's cost of
// every BPF program on this kernel (scenario verifier-budget, see
// verifier.go); "suite verifier" does only that.
//
// Markers (stdout, and --markers FILE, e.g. a second serial port):
//
//	VMTEST-INFO <key> <value>
//	VMTEST-VERIFIER-BUDGET <per program> <per object>
//	VMTEST-VERIFIER <object> <program> <count|refused|rejected> [reason]
//	VMTEST-SCENARIO <name> PASS|FAIL <detail>
//	VMTEST-RESULT PASS|FAIL
//
// The expected backend (--expect, or ocigate.expect= on the kernel command
// line) is a backend name for every point, optionally followed by
// per-point overrides: "lsm", "fmod_ret", "fallback",
// "lsm,exec=fmod_ret". ocigate.enforcer= on the command line (or
// --enforcer) is passed to the agent as --enforcer; ocigate.agent_timeout=
// (a Go duration) bounds the agent's start like --agent-start-timeout.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

type config struct {
	agent, hook    string
	profiles       string
	expect         string
	enforcer       string
	cgroupRoot     string
	workdir        string
	socket         string
	events         string
	markers        string
	run            string
	hookTimeout    time.Duration
	agentStartWait time.Duration
	eventWait      time.Duration
	keep           bool
	verifier       bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "probe" {
		os.Exit(probeMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "verifier" {
		os.Exit(verifierMain(os.Args[2:]))
	}
	os.Exit(suiteMain(os.Args[1:]))
}

func suiteMain(args []string) int {
	var c config
	fs := flag.NewFlagSet("suite", flag.ContinueOnError)
	fs.StringVar(&c.agent, "agent", "/bin/ocigate-agentd", "ocigate-agentd binary")
	fs.StringVar(&c.hook, "hook", "/bin/ocigate-hook", "ocigate-hook binary")
	fs.StringVar(&c.profiles, "profiles", "", "agent --profiles directory (default: WORKDIR/profiles holding the embedded vmtest profile; \"none\": no --profiles)")
	fs.StringVar(&c.expect, "expect", "", `expected backends: "lsm", "fmod_ret", "fallback", optionally ",POINT=BACKEND..." (default: ocigate.expect= from /proc/cmdline)`)
	fs.StringVar(&c.enforcer, "enforcer", "", "pass --enforcer to the agent (default: ocigate.enforcer= from /proc/cmdline; none: the agent's default)")
	fs.StringVar(&c.cgroupRoot, "cgroup-root", "", "cgroup v2 mount (default: /sys/fs/cgroup or /sys/fs/cgroup/unified, whichever is cgroup2)")
	fs.StringVar(&c.workdir, "workdir", "", "scratch directory (default: a new temporary directory)")
	fs.StringVar(&c.socket, "socket", "", "agent socket (default: WORKDIR/agentd.sock)")
	fs.StringVar(&c.events, "events-file", "", "agent events file (default: WORKDIR/events.jsonl)")
	fs.StringVar(&c.markers, "markers", "", "also write the marker lines to this file or device (e.g. /dev/ttyS1)")
	fs.StringVar(&c.run, "run", "", "run only scenarios matching this regexp")
	fs.DurationVar(&c.hookTimeout, "hook-timeout", 10*time.Second, "ocigate-hook --timeout (emulated guests are slow)")
	fs.DurationVar(&c.agentStartWait, "agent-start-timeout", 120*time.Second, "how long the agent may take to load its programs")
	fs.DurationVar(&c.eventWait, "event-timeout", 15*time.Second, "how long to wait for an expected event")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory")
	fs.BoolVar(&c.verifier, "verifier", true, "measure the verifier's cost of every BPF program (scenario verifier-budget) before starting the agent")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "suite: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	if c.expect == "" {
		c.expect = cmdlineParam(string(cmdline), "ocigate.expect")
	}
	if c.enforcer == "" {
		c.enforcer = cmdlineParam(string(cmdline), "ocigate.enforcer")
	}
	if v := cmdlineParam(string(cmdline), "ocigate.agent_timeout"); v != "" && !flagSet(fs, "agent-start-timeout") {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "suite: ocigate.agent_timeout=%s: %v\n", v, err)
			return 2
		}
		c.agentStartWait = d
	}
	if c.expect == "" {
		fmt.Fprintln(os.Stderr, "suite: no expectation: pass --expect or boot with ocigate.expect=")
		return 2
	}
	exp, err := parseExpect(c.expect)
	if err != nil {
		fmt.Fprintf(os.Stderr, "suite: %v\n", err)
		return 2
	}
	var filter *regexp.Regexp
	if c.run != "" {
		if filter, err = regexp.Compile(c.run); err != nil {
			fmt.Fprintf(os.Stderr, "suite: --run: %v\n", err)
			return 2
		}
	}
	var out io.Writer = os.Stdout
	var markers io.Writer
	if c.markers != "" {
		f, err := os.OpenFile(c.markers, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "suite: --markers: %v\n", err)
			return 2
		}
		defer f.Close()
		markers = f
	}
	s := &suite{cfg: c, expect: exp, out: out, markers: markers}
	return s.runAll(filter)
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// cmdlineParam returns the value of key=value on a kernel command line.
func cmdlineParam(cmdline, key string) string {
	for _, f := range strings.Fields(cmdline) {
		if k, v, ok := strings.Cut(f, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Backends the agent may choose for a point.
const (
	backendLSM      = "lsm"
	backendFmodRet  = "fmod_ret"
	backendFallback = "fallback"
)

// Enforcement points of the default profile.
var profilePoints = []string{"connect", "sendmsg", "bind", "sock_create", "exec"}

// expectation is the backend the agent must have chosen per point.
type expectation struct {
	def string
	per map[string]string
}

func validBackend(b string) bool {
	return b == backendLSM || b == backendFmodRet || b == backendFallback
}

// parseExpect parses "BACKEND[,POINT=BACKEND...]" or "POINT=BACKEND,...".
func parseExpect(spec string) (expectation, error) {
	e := expectation{per: map[string]string{}}
	for _, part := range strings.Split(spec, ",") {
		if part == "" {
			continue
		}
		point, backend, ok := strings.Cut(part, "=")
		if !ok {
			backend = point
			if !validBackend(backend) {
				return e, fmt.Errorf("expect %q: unknown backend %q (want lsm, fmod_ret or fallback)", spec, backend)
			}
			if e.def != "" {
				return e, fmt.Errorf("expect %q: two default backends", spec)
			}
			e.def = backend
			continue
		}
		if !validBackend(backend) {
			return e, fmt.Errorf("expect %q: unknown backend %q for %s", spec, backend, point)
		}
		known := false
		for _, p := range profilePoints {
			known = known || p == point
		}
		if !known {
			return e, fmt.Errorf("expect %q: unknown point %q (want one of %v)", spec, point, profilePoints)
		}
		e.per[point] = backend
	}
	for _, p := range profilePoints {
		if e.For(p) == "" {
			return e, fmt.Errorf("expect %q: no backend for point %s", spec, p)
		}
	}
	return e, nil
}

// For returns the expected backend of point.
func (e expectation) For(point string) string {
	if b, ok := e.per[point]; ok {
		return b
	}
	return e.def
}

func (e expectation) String() string {
	parts := make([]string, 0, len(profilePoints))
	for _, p := range profilePoints {
		parts = append(parts, p+"="+e.For(p))
	}
	return strings.Join(parts, ",")
}
