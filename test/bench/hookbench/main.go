// Command hookbench measures the createRuntime hook's round trip: it
// registers a real process in a real cgroup N times through the hook
// binary and, side by side, execs /bin/true N times as the floor.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
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
	var hookTimes, trueTimes []time.Duration
	for i := 0; i < n; i++ {
		d, err := timed(exec.Command("/bin/true"), nil)
		if err != nil {
			return err
		}
		trueTimes = append(trueTimes, d)
		d, err = timed(exec.Command(hook, "--socket", socket, "createRuntime"), state(i))
		if err != nil {
			return err
		}
		hookTimes = append(hookTimes, d)
		if _, err := timed(exec.Command(hook, "--socket", socket, "poststop"), state(i)); err != nil {
			return err
		}
	}
	hp50, hp99 := percentiles(hookTimes)
	tp50, tp99 := percentiles(trueTimes)
	fmt.Printf("hook_p50_us %d\nhook_p99_us %d\ntrue_p50_us %d\ntrue_p99_us %d\n",
		hp50.Microseconds(), hp99.Microseconds(), tp50.Microseconds(), tp99.Microseconds())
	return nil
}

func timed(cmd *exec.Cmd, stdin []byte) (time.Duration, error) {
	var stderr bytes.Buffer
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s: %w: %s", cmd.Path, err, stderr.String())
	}
	return d, nil
}

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[(len(s)*99)/100]
}
