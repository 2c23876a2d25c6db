// Command hookbench measures the createRuntime hook's round trip: it
// registers a real process in a real cgroup N times through the hook
// binary and, side by side, execs /bin/true and `hook --version` (the
// hook's start alone) N times as floors. Each registration runs with
// OCIGATE_HOOK_TIMING, so the hook reports its steps (start, flags,
// load, resolve, call); their medians are printed too.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	hook := flag.String("hook", "bin/ocigate-hook", "hook binary")
	socket := flag.String("socket", "", "agent socket")
	cgroup := flag.String("cgroup", "", "cgroup v2 directory to place the registered process in")
	n := flag.Int("n", 300, "round trips")
	flag.Parse()
	if *socket == "" || *cgroup == "" {
		fmt.Fprintln(os.Stderr, "hookbench: --socket and --cgroup are required")
		os.Exit(2)
	}
	if err := run(*hook, *socket, *cgroup, *n); err != nil {
		fmt.Fprintln(os.Stderr, "hookbench:", err)
		os.Exit(1)
	}
}

func run(hook, socket, cgroup string, n int) error {
	sleeper := exec.Command("sleep", "300")
	if err := sleeper.Start(); err != nil {
		return err
	}
	defer sleeper.Process.Kill()
	if err := os.MkdirAll(cgroup, 0o755); err != nil {
		return err
	}
	defer os.Remove(cgroup)
	if err := os.WriteFile(filepath.Join(cgroup, "cgroup.procs"), []byte(strconv.Itoa(sleeper.Process.Pid)), 0); err != nil {
		return fmt.Errorf("move sleeper into %s: %w", cgroup, err)
	}
	defer os.WriteFile(filepath.Join(filepath.Dir(cgroup), "cgroup.procs"), []byte(strconv.Itoa(sleeper.Process.Pid)), 0)
	bundle, err := os.MkdirTemp("", "hookbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bundle)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(`{"ociVersion":"1.0.2"}`), 0o644); err != nil {
		return err
	}
	state := func(i int) []byte {
		return []byte(fmt.Sprintf(`{"ociVersion":"1.0.2","id":"hookbench-%d","status":"creating","pid":%d,"bundle":%q}`, i, sleeper.Process.Pid, bundle))
	}
	var hookTimes, trueTimes, versionTimes []time.Duration
	steps := map[string][]time.Duration{}
	for i := 0; i < n; i++ {
		d, _, err := timed(exec.Command("/bin/true"), nil, false)
		if err != nil {
			return err
		}
		trueTimes = append(trueTimes, d)
		if d, _, err = timed(exec.Command(hook, "--version"), nil, false); err != nil {
			return err
		}
		versionTimes = append(versionTimes, d)
		d, stderr, err := timed(exec.Command(hook, "--socket", socket, "createRuntime"), state(i), true)
		if err != nil {
			return err
		}
		hookTimes = append(hookTimes, d)
		addSteps(steps, stderr)
		if _, _, err := timed(exec.Command(hook, "--socket", socket, "poststop"), state(i), false); err != nil {
			return err
		}
	}
	hp50, hp99 := percentiles(hookTimes)
	tp50, tp99 := percentiles(trueTimes)
	vp50, _ := percentiles(versionTimes)
	fmt.Printf("hook_p50_us %d\nhook_p99_us %d\ntrue_p50_us %d\ntrue_p99_us %d\nversion_p50_us %d\n",
		hp50.Microseconds(), hp99.Microseconds(), tp50.Microseconds(), tp99.Microseconds(), vp50.Microseconds())
	for _, name := range stepNames {
		if len(steps[name]) != n {
			return fmt.Errorf("the hook reported step %s %d times in %d runs (%s unset?)", name, len(steps[name]), n, timingEnv)
		}
		p50, _ := percentiles(steps[name])
		fmt.Printf("step_%s_p50_us %d\n", name, p50.Microseconds())
	}
	return nil
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

// timed runs cmd with stdin and returns how long it took and its stderr;
// with timing on, the hook is told when it was started.
func timed(cmd *exec.Cmd, stdin []byte, timing bool) (time.Duration, string, error) {
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
		return d, "", fmt.Errorf("%s: %w: %s", cmd.Path, err, stderr.String())
	}
	return d, stderr.String(), nil
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[(len(s)*99)/100]
}
