// Command hookbench measures the createRuntime hook's round trip: it
// registers a real process in a real cgroup N times through the hook
// binary and, side by side, execs /bin/true, a Go program that does
// nothing (--nop: the start of the Go runtime, which no Go hook avoids)
// and `hook --version` (the hook's start alone) N times as floors. Each
// registration runs with OCIGATE_HOOK_TIMING, so the hook reports its
// steps (start, flags, load, resolve, call); their medians are printed
// too, and so is the poststop hook's round trip. --hook2 measures a
// second hook binary (say, the previous build) in the same rounds.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
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
	hook2 := flag.String("hook2", "", "a second hook binary measured in the same rounds (reported as hook2_*)")
	socket2 := flag.String("socket2", "", "the agent socket of --hook2 (default: --socket)")
	config := flag.String("config", "", "the bundle's config.json the hook reads (default: a minimal one; a real bundle's makes the load step real)")
	n := flag.Int("n", 300, "round trips")
	flag.Parse()
	if *socket == "" || *cgroup == "" || *nop == "" {
		fmt.Fprintln(os.Stderr, "hookbench: --socket, --cgroup and --nop are required")
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
	if err := run(hooks, *nop, *cgroup, spec, *n); err != nil {
		fmt.Fprintln(os.Stderr, "hookbench:", err)
		os.Exit(1)
	}
}

// sample is what one round measured.
type sample struct {
	true_, nop, version time.Duration
	hooks, poststops    []time.Duration // per hook binary
	steps               []string        // each hook's OCIGATE_HOOK_TIMING line
	// The CPU and page faults of the process itself (getrusage of the
	// child): /bin/true, the Go nop, --version, each hook's createRuntime.
	trueUse, nopUse, versionUse usage
	hookUses                    []usage
}

// usage is what a child process used itself: CPU (user and kernel; the
// kernel accounts it by ticks, so only the sum is exact) and minor page
// faults.
type usage struct {
	cpu    time.Duration
	minflt int64
}

// hookUnder is a hook binary and the agent socket it registers with.
type hookUnder struct{ path, socket string }

func run(hooks []hookUnder, nop, cgroup string, spec []byte, n int) error {
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
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), spec, 0o644); err != nil {
		return err
	}
	var samples []sample
	for i := 0; i < n; i++ {
		state := []byte(fmt.Sprintf(`{"ociVersion":"1.0.2","id":"hookbench-%d","status":"creating","pid":%d,"bundle":%q}`, i, sleeper, bundle))
		s, err := round(hooks, nop, state)
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
// once.
func round(hooks []hookUnder, nop string, state []byte) (sample, error) {
	var s sample
	var err error
	if s.true_, _, s.trueUse, err = timed(exec.Command("/bin/true"), nil, false); err != nil {
		return s, err
	}
	if s.nop, _, s.nopUse, err = timed(exec.Command(nop), nil, false); err != nil {
		return s, err
	}
	if s.version, _, s.versionUse, err = timed(exec.Command(hooks[0].path, "--version"), nil, false); err != nil {
		return s, err
	}
	for _, hook := range hooks {
		d, stderr, use, err := timed(exec.Command(hook.path, "--socket", hook.socket, "createRuntime"), state, true)
		if err != nil {
			return s, err
		}
		s.hooks, s.steps, s.hookUses = append(s.hooks, d), append(s.steps, stderr), append(s.hookUses, use)
		if d, _, _, err = timed(exec.Command(hook.path, "--socket", hook.socket, "poststop"), state, false); err != nil {
			return s, err
		}
		s.poststops = append(s.poststops, d)
	}
	return s, nil
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
	fmt.Printf("true_p50_us %d\ntrue_p99_us %d\nnop_p50_us %d\nversion_p50_us %d\n",
		tp50.Microseconds(), tp99.Microseconds(), np50.Microseconds(), vp50.Microseconds())
	printUsage("true", samples, func(s sample) usage { return s.trueUse })
	printUsage("nop", samples, func(s sample) usage { return s.nopUse })
	printUsage("version", samples, func(s sample) usage { return s.versionUse })
	printUsage("hook", samples, func(s sample) usage { return s.hookUses[0] })
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
