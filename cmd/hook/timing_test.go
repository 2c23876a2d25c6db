package main

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// With OCIGATE_HOOK_TIMING set to its launch time, the hook prints its
// steps on one stderr line after registering; without it, nothing.
func TestTimingLine(t *testing.T) {
	socket := startAgent(t, &fakeAgent{})
	state := bundle(t, "ctr-t", os.Getpid(), nil, nil)
	t.Setenv(timingEnv, strconv.FormatInt(time.Now().Add(-time.Millisecond).UnixNano(), 10))
	code, stderr := runHook([]string{"--socket", socket, "createRuntime"}, state)
	line := regexp.MustCompile(`^ocigate-hook timing: start_us=(\d+) flags_us=\d+ load_us=\d+ resolve_us=\d+ call_us=\d+ total_us=(\d+)\n$`)
	m := line.FindStringSubmatch(stderr)
	if code != 0 || m == nil {
		t.Fatalf("exit %d, stderr %q; want one timing line", code, stderr)
	}
	if start, _ := strconv.Atoi(m[1]); start < 1000 {
		t.Errorf("start_us %d, launched 1 ms before", start)
	}
	for _, v := range []string{"", "0", "soon"} {
		t.Setenv(timingEnv, v)
		if code, stderr := runHook([]string{"--socket", socket, "createRuntime"}, state); code != 0 || stderr != "" {
			t.Errorf("%s=%q: exit %d, stderr %q; want nothing", timingEnv, v, code, stderr)
		}
	}
}
