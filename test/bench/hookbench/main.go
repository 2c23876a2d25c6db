// Command hookbench measures the createRuntime hook's round trip: it
// registers a real process in a real cgroup N times through the hook
// binary, as installed, and, side by side, execs as floors /bin/true, a
// Go program that does nothing (--nop: the start of the Go runtime,
// which no Go hook avoids), `hook --version` (the hook's start alone),
// `minhook --start` (the minimal hook's) and a Go hook that does only
// registration's system calls (--minimal, test/bench/minhook), against the agent and against a server process
// that answers at once (hookbench itself, --serve-instant: the round
// trip of any Go hook to a Go daemon that does no work).
// Each round registers once more with OCIGATE_HOOK_TIMING, so the hook
// reports its steps (start, flags, load, resolve, call); their medians
// are printed too, and so is the poststop hook's round trip. --hook2
// measures a second hook binary (say, the previous build) in the same
// rounds.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	hook := flag.String("hook", "bin/ocigate-hook", "hook binary")
	socket := flag.String("socket", "", "agent socket")
	cgroup := flag.String("cgroup", "", "cgroup v2 directory to place the registered process in")
	nop := flag.String("nop", "", "a Go program that does nothing (the Go runtime's start)")
	minimal := flag.String("minimal", "", "a Go hook that does only registration's system calls (test/bench/minhook)")
	hook2 := flag.String("hook2", "", "a second hook binary measured in the same rounds (reported as hook2_*)")
	socket2 := flag.String("socket2", "", "the agent socket of --hook2 (default: --socket)")
	config := flag.String("config", "", "the bundle's config.json the hook reads (default: a minimal one; a real bundle's makes the load step real)")
	n := flag.Int("n", 300, "round trips")
	serve := flag.String("serve-instant", "", "(internal) be the server that answers at once, on this socket")
	flag.Parse()
	if *serve != "" {
		if err := serveInstantAnswers(*serve); err != nil {
			fmt.Fprintln(os.Stderr, "hookbench:", err)
			os.Exit(1)
		}
		return
	}
	if *socket == "" || *cgroup == "" || *nop == "" || *minimal == "" {
		fmt.Fprintln(os.Stderr, "hookbench: --socket, --cgroup, --nop and --minimal are required")
		os.Exit(2)
	}
	hooks := []hookUnder{{*hook, *socket}}
	if *hook2 != "" {
		hooks = append(hooks, hookUnder{*hook2, *socket})
		if *socket2 != "" {
			hooks[1].socket = *socket2
		}
	}
	spec := []byte(`{"ociVersion":"1.0.2"}`)
	if *config != "" {
		var err error
		if spec, err = os.ReadFile(*config); err != nil {
			fmt.Fprintln(os.Stderr, "hookbench:", err)
			os.Exit(2)
		}
	}
	if err := run(hooks, floors{*nop, *minimal, *socket, ""}, *cgroup, spec, *n); err != nil {
		fmt.Fprintln(os.Stderr, "hookbench:", err)
		os.Exit(1)
	}
}

// sample is what one round measured.
type sample struct {
	true_, nop, version, minimalStart time.Duration
	// The minimal Go hook's createRuntime against the agent and against
	// the server that answers at once.
	minimal, minimalInstant time.Duration
	hooks, poststops        []time.Duration // per hook binary, as installed
	steps                   []string        // each hook's OCIGATE_HOOK_TIMING line
	// The CPU and page faults of the process itself (getrusage of the
	// child): /bin/true, the Go nop, --version, the minimal hook's and
	// each hook's createRuntime (as installed).
	trueUse, nopUse, versionUse, minimalUse usage
	hookUses                                []usage
}

// floors are the programs measured next to the hooks: the Go program
// that does nothing, the minimal Go hook and the sockets it registers
// with (the agent's, the instant server's).
type floors struct{ nop, minimal, socket, instantSocket string }

// usage is what a child process used itself: CPU (user and kernel; the
// kernel accounts it by ticks, so only the sum is exact) and minor page
// faults.
type usage struct {
	cpu    time.Duration
	minflt int64
}

// hookUnder is a hook binary and the agent socket it registers with.
type hookUnder struct{ path, socket string }

func run(hooks []hookUnder, fl floors, cgroup string, spec []byte, n int) error {
	sleeper, cleanup, err := sleeperIn(cgroup)
	if err != nil {
		return err
	}
	defer cleanup()
	bundle, err := os.MkdirTemp("", "hookbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bundle)
	fl.instantSocket = filepath.Join(bundle, "instant.sock")
	stop, err := startInstantServer(fl.instantSocket)
	if err != nil {
		return err
	}
	defer stop()
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), spec, 0o644); err != nil {
		return err
	}
	var samples []sample
	for i := 0; i < n; i++ {
		state := []byte(fmt.Sprintf(`{"ociVersion":"1.0.2","id":"hookbench-%d","status":"creating","pid":%d,"bundle":%q}`, i, sleeper, bundle))
		s, err := round(hooks, fl, state)
		if err != nil {
			return err
		}
		samples = append(samples, s)
	}
	return report(samples, len(hooks))
}

// sleeperIn starts a process in cgroup (created) to register, and
// returns its pid and what removes both.
func sleeperIn(cgroup string) (int, func(), error) {
	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		return 0, nil, err
	}
	pid := sleeper.Process.Pid
	cleanup := func() {
		_ = os.WriteFile(filepath.Join(filepath.Dir(cgroup), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
		_ = os.Remove(cgroup)
	}
	if err := os.MkdirAll(cgroup, 0o755); err != nil {
		cleanup()
		return 0, nil, err
	}
	// Registering the sleeper anywhere else (its parent's cgroup) would
	// enforce on that cgroup: no registration unless it moved.
	if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		cleanup()
		return 0, nil, fmt.Errorf("move sleeper into %s: %w", cgroup, err)
	}
	return pid, cleanup, nil
}

// round runs each floor and each hook (createRuntime, then poststop)
// once, and each hook once more with its timing on.
func round(hooks []hookUnder, fl floors, state []byte) (sample, error) {
	var s sample
	var err error
	if s.true_, _, s.trueUse, err = timed(exec.Command("/bin/true"), nil, false); err != nil {
		return s, err
	}
	if s.nop, _, s.nopUse, err = timed(exec.Command(fl.nop), nil, false); err != nil {
		return s, err
	}
	if s.version, _, s.versionUse, err = timed(exec.Command(hooks[0].path, "--version"), nil, false); err != nil {
		return s, err
	}
	if s.minimalStart, _, _, err = timed(exec.Command(fl.minimal, "--start"), nil, false); err != nil {
		return s, err
	}
	minimal, err := register(hookUnder{fl.minimal, fl.socket}, state, false)
	if err != nil {
		return s, err
	}
	instant, err := register(hookUnder{fl.minimal, fl.instantSocket}, state, false)
	if err != nil {
		return s, err
	}
	s.minimal, s.minimalUse, s.minimalInstant = minimal.create, minimal.use, instant.create
	for _, hook := range hooks {
		r, err := register(hook, state, false)
		if err != nil {
			return s, err
		}
		s.hooks, s.hookUses, s.poststops = append(s.hooks, r.create), append(s.hookUses, r.use), append(s.poststops, r.poststop)
		if r, err = register(hook, state, true); err != nil {
			return s, err
		}
		s.steps = append(s.steps, r.stderr)
	}
	return s, nil
}

// registration is what one createRuntime, then poststop, of a hook
// took: their round trips, what createRuntime used and its stderr.
type registration struct {
	create, poststop time.Duration
	use              usage
	stderr           string
}

// register runs hook's createRuntime, as installed or with its timing
// on (its stderr then has its steps), then its poststop.
func register(hook hookUnder, state []byte, timing bool) (registration, error) {
	var r registration
	var err error
	if r.create, r.stderr, r.use, err = timed(exec.Command(hook.path, "--socket", hook.socket, "createRuntime"), state, timing); err != nil {
		return r, err
	}
	r.poststop, _, _, err = timed(exec.Command(hook.path, "--socket", hook.socket, "poststop"), state, false)
	return r, err
}

// report prints the percentiles and the steps' medians of every hook.
func report(samples []sample, nhooks int) error {
	col := func(f func(sample) time.Duration) []time.Duration {
		var ds []time.Duration
		for _, s := range samples {
			ds = append(ds, f(s))
		}
		return ds
	}
	tp50, tp99 := percentiles(col(func(s sample) time.Duration { return s.true_ }))
	np50, _ := percentiles(col(func(s sample) time.Duration { return s.nop }))
	vp50, _ := percentiles(col(func(s sample) time.Duration { return s.version }))
	sp50, _ := percentiles(col(func(s sample) time.Duration { return s.minimalStart }))
	fmt.Printf("true_p50_us %d\ntrue_p99_us %d\nnop_p50_us %d\nversion_p50_us %d\nminimal_start_p50_us %d\n",
		tp50.Microseconds(), tp99.Microseconds(), np50.Microseconds(), vp50.Microseconds(), sp50.Microseconds())
	printUsage("true", samples, func(s sample) usage { return s.trueUse })
	printUsage("nop", samples, func(s sample) usage { return s.nopUse })
	printUsage("version", samples, func(s sample) usage { return s.versionUse })
	printUsage("minimal", samples, func(s sample) usage { return s.minimalUse })
	printUsage("hook", samples, func(s sample) usage { return s.hookUses[0] })
	mp50, mp99 := percentiles(col(func(s sample) time.Duration { return s.minimal }))
	ip50, ip99 := percentiles(col(func(s sample) time.Duration { return s.minimalInstant }))
	fmt.Printf("minimal_p50_us %d\nminimal_p99_us %d\nminimal_instant_p50_us %d\nminimal_instant_p99_us %d\n",
		mp50.Microseconds(), mp99.Microseconds(), ip50.Microseconds(), ip99.Microseconds())
	for h := 0; h < nhooks; h++ {
		name := "hook"
		if h > 0 {
			name = fmt.Sprintf("hook%d", h+1)
		}
		hp50, hp99 := percentiles(col(func(s sample) time.Duration { return s.hooks[h] }))
		pp50, _ := percentiles(col(func(s sample) time.Duration { return s.poststops[h] }))
		fmt.Printf("%s_p50_us %d\n%s_p99_us %d\n%s_poststop_p50_us %d\n", name, hp50.Microseconds(), name, hp99.Microseconds(), name, pp50.Microseconds())
		steps := map[string][]time.Duration{}
		for _, s := range samples {
			addSteps(steps, s.steps[h])
		}
		for _, step := range stepNames {
			if len(steps[step]) != len(samples) {
				return fmt.Errorf("%s reported step %s %d times in %d runs (%s unset?)", name, step, len(steps[step]), len(samples), timingEnv)
			}
			p50, _ := percentiles(steps[step])
			fmt.Printf("%s_step_%s_p50_us %d\n", name, step, p50.Microseconds())
		}
	}
	return nil
}

// printUsage prints the medians of name's CPU (us) and minor faults.
func printUsage(name string, samples []sample, f func(sample) usage) {
	var cpu []time.Duration
	var faults []int64
	for _, s := range samples {
		cpu, faults = append(cpu, f(s).cpu), append(faults, f(s).minflt)
	}
	p50, _ := percentiles(cpu)
	slices.Sort(faults)
	fmt.Printf("%s_cpu_p50_us %d\n%s_minflt_p50 %d\n", name, p50.Microseconds(), name, faults[len(faults)/2])
}

// timingEnv is cmd/hook's OCIGATE_HOOK_TIMING; stepNames are the steps
// it reports, in order.
const timingEnv = "OCIGATE_HOOK_TIMING"

var stepNames = []string{"start", "flags", "load", "resolve", "call", "total"}

// addSteps adds the steps of the hook's timing line in stderr to steps.
func addSteps(steps map[string][]time.Duration, stderr string) {
	for _, line := range strings.Split(stderr, "\n") {
		rest, ok := strings.CutPrefix(line, "ocigate-hook timing: ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			name, v, _ := strings.Cut(f, "_us=")
			us, err := strconv.ParseInt(v, 10, 64)
			if err == nil {
				steps[name] = append(steps[name], time.Duration(us)*time.Microsecond)
			}
		}
	}
}

// timed runs cmd with stdin and returns how long it took, its stderr and
// what it used; with timing on, the hook is told when it was started.
func timed(cmd *exec.Cmd, stdin []byte, timing bool) (time.Duration, string, usage, error) {
	var stderr bytes.Buffer
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	start := time.Now()
	if timing {
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", timingEnv, start.UnixNano()))
	}
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, "", usage{}, fmt.Errorf("%s: %w: %s", cmd.Path, err, stderr.String())
	}
	var use usage
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		use = usage{cpu: time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime)), minflt: ru.Minflt}
	}
	return d, stderr.String(), use, nil
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[(len(s)*99)/100]
}

// startInstantServer starts this program again as the server that
// answers at once, a process of its own as the agent is (a server in
// this process would answer from threads that the launch of each hook
// had just woken), and returns once it listens.
func startInstantServer(path string) (stop func(), err error) {
	cmd := exec.Command(os.Args[0], "--serve-instant", path)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlives the bench
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("instant server: %w", err)
	}
	stop = func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return stop, nil
		}
	}
	stop()
	return nil, fmt.Errorf("instant server: no socket at %s after 5s", path)
}

// serveInstantAnswers answers every request on a unix socket at path
// with ok at once, a goroutine per connection as the agent does: the
// round trip of a hook to an agent that does no work.
func serveInstantAnswers(path string) error {
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	body := []byte(`{"protocol":2,"ok":true}`)
	answer := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	answer = append(answer, body...)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			var hdr [4]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(hdr[:]))); err != nil {
				return
			}
			_, _ = c.Write(answer)
		}()
	}
}
