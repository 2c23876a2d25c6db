package events

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// Each line of testdata/compact/events.jsonl, rendered compact, is the
// same line of events.golden.
func TestCompactGolden(t *testing.T) {
	in, err := os.Open(filepath.Join("testdata", "compact", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var got strings.Builder
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("events.jsonl line %d: %v", n, err)
		}
		line := Compact(&ev)
		if strings.Contains(line, "\n") {
			t.Fatalf("line %d: compact output spans lines: %q", n, line)
		}
		got.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "compact", "events.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -run CompactGolden -update writes it)", err)
	}
	gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("line %d:\n got  %q\n want %q", i+1, g, w)
		}
	}
}

// The same event written by the JSON sink and read back renders the same.
func TestCompactOfWrittenEvent(t *testing.T) {
	ev := sample(31)
	ev.ProcessKprobe.PolicyName = "p"
	want := "2026-01-02T03:04:05.000Z c1 /usr/bin/nc[31] connect 127.0.0.2:4444 denied EPERM policy=p"
	if got := Compact(ev); got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	b, _ := json.Marshal(ev)
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := Compact(&back); got != want {
		t.Fatalf("after a JSON round trip: %q", got)
	}
	// An exec or relay verdict names the predicate that fired.
	ev.Ocigate.Predicate, ev.Ocigate.Evidence = "dialled-stdio-socket", "stdin on an INET socket"
	if got := Compact(ev); got != want+" predicate=dialled-stdio-socket" {
		t.Fatalf("with a predicate: %q", got)
	}
	// Local times print in UTC.
	ev.Time = time.Date(2026, 1, 2, 5, 4, 5, 0, time.FixedZone("x", 2*3600))
	if got := Compact(ev); !strings.HasPrefix(got, "2026-01-02T03:04:05.000Z ") {
		t.Fatalf("time not in UTC: %q", got)
	}
}

// A claim event is one line naming the claims, what was done and why.
func TestCompactClaim(t *testing.T) {
	at := time.Date(2026, 12, 6, 5, 40, 12, 501e6, time.UTC)
	ev := &Event{Time: at, OcigateClaim: &ClaimEvent{Pod: &Pod{Container: Container{ID: strings.Repeat("d", 64), Name: "hostile"}},
		Claims: []ClaimArg{{Key: "ocigate.io/profile", Value: "debug-monitor"}}, RequestedProfile: "debug-monitor", Profile: "reverse-shell",
		Action: ClaimRefused, Rule: "weaker", ReportedBy: "agent"}}
	if got, want := Compact(ev), `2026-12-06T05:40:12.501Z hostile claim ocigate.io/profile="debug-monitor" refused: weaker`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	ev.OcigateClaim.Action, ev.OcigateClaim.ReportedBy, ev.OcigateClaim.Claims, ev.OcigateClaim.Pod.Container.Name = ClaimIgnored, "hook", nil, ""
	if got, want := Compact(ev), `2026-12-06T05:40:12.501Z dddddddddddd claim  ignored (profile reverse-shell) by the hook: weaker`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}
