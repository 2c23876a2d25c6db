package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// follower is a running `ocigate-agentd events --follow`.
type follower struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	stderr bytes.Buffer
	done   chan error
}

func startFollower(t *testing.T, args ...string) *follower {
	t.Helper()
	f := &follower{done: make(chan error, 1)}
	f.cmd = exec.Command(agentdBin, append([]string{"events", "--socket", socketPath, "--follow"}, args...)...)
	f.cmd.Stderr = &f.stderr
	out, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, sc.Text())
			f.mu.Unlock()
		}
		f.done <- f.cmd.Wait()
	}()
	t.Cleanup(func() { _ = f.cmd.Process.Kill() }) // ErrProcessDone once it has stopped
	return f
}

// waitLine returns the first line for which match is true.
func (f *follower) waitLine(t *testing.T, what string, match func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		f.mu.Lock()
		lines := append([]string(nil), f.lines...)
		f.mu.Unlock()
		for _, l := range lines {
			if match(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower %v printed no %s in %v; it printed:\n%s\nstderr: %s", f.cmd.Args[1:], what, eventTimeout,
				strings.Join(lines, "\n"), f.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// interrupt sends SIGINT, the normal end of --follow: exit status 0.
func (f *follower) interrupt(t *testing.T) {
	t.Helper()
	_ = f.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-f.done:
		if err != nil {
			t.Errorf("follower %v after SIGINT: %v; stderr: %s", f.cmd.Args[1:], err, f.stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Errorf("follower %v did not stop within 5s of SIGINT", f.cmd.Args[1:])
	}
}

// subscribers returns the filters of the agent's followers.
func subscribers(t *testing.T) []string {
	t.Helper()
	out, err := agentStatus()
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Subscribers []struct{ Filter string } `json:"subscribers"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	var filters []string
	for _, s := range st.Subscribers {
		filters = append(filters, s.Filter)
	}
	return filters
}

func waitSubscribers(t *testing.T, filter string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		count := 0
		for _, f := range subscribers(t) {
			if f == filter {
				count++
			}
		}
		if count == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d followers with filter %q, want %d", count, filter, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// `ocigate-agentd events --follow` streams a container's events as the
// agent reports them: -o json the very line of the events file, -o
// compact one readable line. Without --follow it prints the recent ones
// and exits.
func TestEventsFollow(t *testing.T) {
	requireE2E(t)
	const name = "events-follow"
	prefix := fmt.Sprintf("e2e-%s-%d-", name, os.Getpid()) // newID's IDs for name
	compact := startFollower(t, "--container", prefix, "-o", "compact")
	jsonl := startFollower(t, "--container", prefix, "--type", "process_kprobe", "--tail", "0")
	waitSubscribers(t, "container="+prefix, 1)
	waitSubscribers(t, "container="+prefix+" type=process_kprobe", 1)

	res := runContainer(t, ctrOpts{Name: name, Args: []string{"/probe", "connect", deniedAddr}})
	if !strings.HasPrefix(res.ID, prefix) {
		t.Fatalf("container ID %q does not start with %q: newID changed", res.ID, prefix)
	}
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" {
		t.Fatalf("want the connect denied; got %v", res)
	}
	waitEvent(t, res.ID, deniedConnect(res.ID, "127.0.0.2", 4444))
	var fileLine string
	for _, l := range events.Lines() {
		if strings.Contains(l, `"container_id":"`+res.ID+`"`) && strings.Contains(l, `"tcp_connect"`) {
			fileLine = l
		}
	}
	if fileLine == "" {
		t.Fatalf("no tcp_connect line for %s in the events file\n%s", res.ID, diagnostics(res.ID))
	}

	got := jsonl.waitLine(t, "event of "+res.ID, func(l string) bool { return strings.Contains(l, res.ID) })
	if got != fileLine {
		t.Errorf("-o json printed\n%s\nthe events file has\n%s", got, fileLine)
	}
	want := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ` + regexp.QuoteMeta(res.ID) +
		` \S+\[\d+\] connect 127\.0\.0\.2:4444 denied EPERM policy=\S+$`)
	line := compact.waitLine(t, "compact connect line", func(l string) bool {
		return strings.Contains(l, res.ID) && strings.Contains(l, " denied ")
	})
	t.Logf("compact: %s", line)
	if !want.MatchString(line) {
		t.Errorf("-o compact printed %q, want it to match %s", line, want)
	}
	// Without --type the follower gets the container's process events too:
	// its first program's exec, started by runc.
	execLine := regexp.MustCompile(` ` + regexp.QuoteMeta(res.ID) + ` /probe\[\d+\] exec connect 127\.0\.0\.2:4444 \(parent \S*runc\[\d+\]\)$`)
	compact.waitLine(t, "compact exec line", execLine.MatchString)

	// Without --follow: the recent events of the container, then exit 0.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, agentdBin, "events", "--socket", socketPath, "--container", res.ID, "-o", "compact").Output()
	if err != nil {
		t.Fatalf("events without --follow: %v", err)
	}
	if !strings.Contains(string(out), line) {
		t.Errorf("events without --follow printed\n%s\nwithout the line %q", out, line)
	}

	compact.interrupt(t)
	jsonl.interrupt(t)
	for _, f := range subscribers(t) {
		if strings.Contains(f, prefix) {
			t.Errorf("follower %q still listed after it stopped", f)
		}
	}
}
