package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func sample(pid uint32) *Event {
	return &Event{
		ProcessKprobe: &Kprobe{
			Process:      Process{Pid: Value{Value: pid}, Binary: "/usr/bin/nc"},
			FunctionName: "tcp_connect",
			Args:         []Arg{{SockArg: &SockArg{Family: "AF_INET", Type: "SOCK_STREAM", Protocol: "IPPROTO_TCP", Daddr: "127.0.0.2", Dport: 4444}}},
			Action:       ActionOverride,
		},
		NodeName: "node-1",
		Time:     time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC),
		Ocigate:  &Ocigate{ContainerID: "c1", Point: "connect", Enforced: true, Verdict: "denied", Errno: 1},
	}
}

func TestWriterBuffersUntilFlush(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	if err := w.Write(sample(1)); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("%d bytes written before Flush", out.Len())
	}
	if err := w.Write(sample(2)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(out.String(), "\n") {
		t.Fatalf("output %q, want 2 JSON lines", out.String())
	}
	for i, l := range lines {
		var ev Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if ev.ProcessKprobe.Process.Pid.Value != uint32(i+1) {
			t.Fatalf("line %d pid %d", i, ev.ProcessKprobe.Process.Pid.Value)
		}
	}
	// Close does not close what NewWriter was given.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// The shape the seeds' jq filters read, Tetragon's process_kprobe.
func TestEventJSONShape(t *testing.T) {
	b, err := json.Marshal(sample(42))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	get := func(path string) any {
		var v any = m
		for _, k := range strings.Split(path, ".") {
			switch x := v.(type) {
			case map[string]any:
				v = x[k]
			case []any:
				var i int
				fmt.Sscan(k, &i)
				v = x[i]
			default:
				return nil
			}
		}
		return v
	}
	want := map[string]any{
		"process_kprobe.process.pid.value":     float64(42),
		"process_kprobe.process.binary":        "/usr/bin/nc",
		"process_kprobe.function_name":         "tcp_connect",
		"process_kprobe.action":                "KPROBE_ACTION_OVERRIDE",
		"process_kprobe.args.0.sock_arg.daddr": "127.0.0.2",
		"process_kprobe.args.0.sock_arg.dport": float64(4444),
		"node_name":                            "node-1",
		"time":                                 "2026-01-02T03:04:05.0000006Z",
		"ocigate.errno":                        float64(1),
		"ocigate.verdict":                      "denied",
	}
	for path, v := range want {
		if got := get(path); got != v {
			t.Errorf("%s = %#v, want %#v", path, got, v)
		}
	}
	// Empty optional parts are left out.
	for _, absent := range []string{"process_kprobe.parent", "process_kprobe.policy_name", "process_kprobe.process.pod",
		"process_kprobe.args.0.sock_arg.saddr", "process_kprobe.args.0.int_arg", "process_kprobe.args.0.file_arg"} {
		if get(absent) != nil {
			t.Errorf("%s present: %#v", absent, get(absent))
		}
	}
	// An enforced event without errno (exec kill) has no errno key.
	ev := sample(1)
	ev.Ocigate.Errno = 0
	b, _ = json.Marshal(ev)
	if strings.Contains(string(b), `"errno"`) {
		t.Errorf("errno 0 serialised: %s", b)
	}
}

func TestOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte("{\"old\":true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := OpenFile(path, Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(sample(7)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // flushes
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != `{"old":true}` || !strings.Contains(lines[1], `"value":7`) {
		t.Fatalf("file after append: %q", b)
	}
	// After Close the file is closed: flushing more fails.
	_ = w.Write(sample(8))
	if err := w.Flush(); err == nil {
		t.Error("Flush after Close succeeded")
	}
}

func TestOpenFileCreatesPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.jsonl")
	w, err := OpenFile(path, Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	// A missing directory is made, private (/var/log/ocigate on a host
	// without the unit's LogsDirectory); one that cannot be is an error.
	dir := filepath.Join(t.TempDir(), "missing")
	w2, err := OpenFile(filepath.Join(dir, "x.jsonl"), Rotation{})
	if err != nil {
		t.Fatalf("missing dir: %v", err)
	}
	w2.Close()
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made dir: %v %v", fi.Mode(), err)
	}
	if _, err := OpenFile(filepath.Join(path, "x.jsonl"), Rotation{}); err == nil || !strings.Contains(err.Error(), "open events file") {
		t.Fatalf("directory under a file: %v", err)
	}
}

func TestWriterConcurrent(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				_ = w.Write(sample(uint32(g*1000 + i)))
				if i%50 == 0 {
					_ = w.Flush()
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	seen := map[uint32]bool{}
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("interleaved line %q: %v", sc.Text(), err)
		}
		seen[ev.ProcessKprobe.Process.Pid.Value] = true
	}
	if len(seen) != 8*200 {
		t.Fatalf("%d distinct events, want %d", len(seen), 8*200)
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		fn   func(uint8) string
		in   uint8
		want string
	}{
		{FamilyName, 1, "AF_UNIX"}, {FamilyName, 2, "AF_INET"}, {FamilyName, 10, "AF_INET6"},
		{FamilyName, 17, "AF_PACKET"}, {FamilyName, 99, "99"}, {FamilyName, 0, "0"},
		{SockTypeName, 1, "SOCK_STREAM"}, {SockTypeName, 2, "SOCK_DGRAM"}, {SockTypeName, 3, "SOCK_RAW"}, {SockTypeName, 0, "0"},
		{ProtocolName, 0, "IPPROTO_IP"}, {ProtocolName, 6, "IPPROTO_TCP"}, {ProtocolName, 17, "IPPROTO_UDP"},
		{ProtocolName, 58, "IPPROTO_ICMPV6"}, {ProtocolName, 255, "IPPROTO_RAW"}, {ProtocolName, 200, "200"},
	}
	for _, tt := range tests {
		if got := tt.fn(tt.in); got != tt.want {
			t.Errorf("name(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// flakyWriter accepts up to room bytes per write while ok, then fails.
type flakyWriter struct {
	bytes.Buffer
	fail bool
	room int // with fail: bytes written before the error
}

func (f *flakyWriter) Write(p []byte) (int, error) {
	if !f.fail {
		return f.Buffer.Write(p)
	}
	n := min(f.room, len(p))
	f.Buffer.Write(p[:n])
	return n, errors.New("no space left on device")
}

// A failed write loses the lines not written whole, counts them, and the
// writer goes on after the failure passes.
func TestWriterCountsLosses(t *testing.T) {
	n := int(lineLen(t, 10))
	out := &flakyWriter{fail: true, room: n + n/2} // one line and a half get out
	w := NewWriter(out)
	for pid := uint32(10); pid < 13; pid++ {
		if err := w.Write(sample(pid)); err != nil {
			t.Fatal(err)
		}
	}
	err := w.Flush()
	var lost *LostError
	if !errors.As(err, &lost) || lost.Events != 2 || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("flush: %v, want 2 events lost", err)
	}
	if w.Written() != 1 || w.Lost() != 2 {
		t.Fatalf("written %d lost %d, want 1 and 2", w.Written(), w.Lost())
	}
	out.fail = false
	if err := w.Write(sample(13)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatalf("flush after the failure passed: %v", err)
	}
	if w.Written() != 2 || w.Lost() != 2 {
		t.Fatalf("written %d lost %d, want 2 and 2", w.Written(), w.Lost())
	}
	if !strings.HasSuffix(out.String(), "\n") || !strings.Contains(out.String(), `"value":13`) {
		t.Fatalf("output after recovery %q", out.String())
	}
}

// An event that cannot be encoded is lost alone.
func TestWriterEncodeError(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	bad := sample(1)
	bad.ProcessKprobe.Args = []Arg{{IntArg: &IntArg{Value: 1}}}
	bad.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // outside RFC 3339: MarshalJSON fails
	var lost *LostError
	if err := w.Write(bad); !errors.As(err, &lost) || lost.Events != 1 {
		t.Fatalf("got %v, want one event lost", err)
	}
	if err := w.Write(sample(2)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil || w.Written() != 1 || w.Lost() != 1 {
		t.Fatalf("flush %v, written %d, lost %d", err, w.Written(), w.Lost())
	}
}

// Write flushes by itself once enough is buffered.
func TestWriterFlushesLargeBuffer(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out)
	per := int(lineLen(t, 100))
	for i := 0; i <= flushAt/per; i++ {
		if err := w.Write(sample(100)); err != nil {
			t.Fatal(err)
		}
	}
	if out.Len() < flushAt || w.Written() == 0 {
		t.Fatalf("%d bytes out, %d written after %d buffered bytes", out.Len(), w.Written(), flushAt+per)
	}
}

// slowSink takes its time over each write.
type slowSink struct {
	bytes.Buffer
	delay time.Duration
}

func (s *slowSink) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.Buffer.Write(p)
}

// The bytes written out and the time the sink took over them are
// counted: they tell how fast the sink takes events.
func TestWriterTimesTheSink(t *testing.T) {
	out := &slowSink{delay: 5 * time.Millisecond}
	w := NewWriter(out)
	for range 3 {
		if err := w.Write(sample(100)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.BytesWritten(); got != uint64(out.Len()) || got == 0 {
		t.Errorf("BytesWritten %d, the sink got %d", got, out.Len())
	}
	if got := w.WriteTime(); got < 3*out.delay {
		t.Errorf("WriteTime %v for 3 writes of %v each", got, out.delay)
	}
}

// Reopen, after the file was renamed (logrotate), writes on into a new
// file at the path.
func TestWriterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := OpenFile(path, Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ev := &Event{}
	if err := w.Write(ev); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ev); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".1"} {
		b, err := os.ReadFile(p)
		if err != nil || strings.Count(string(b), "\n") != 1 {
			t.Errorf("%s: %q %v, want one line", p, b, err)
		}
	}
	if err := NewWriter(io.Discard).Reopen(); err != nil {
		t.Errorf("a writer on an io.Writer: %v", err)
	}
}

// A batch of lines as large as a flush is written at once, and what a
// failed write loses is counted per line.
func TestWriteLinesLargeBatch(t *testing.T) {
	per := int(lineLen(t, 100))
	lines := flushAt/per + 1
	out := &flakyWriter{fail: true, room: per + per/2}
	w := NewWriter(out)
	var b []byte
	for range lines {
		b, _ = w.AppendLine(b, sample(100), &Encoder{})
	}
	var lost *LostError
	if err := w.WriteLines(b, lines); !errors.As(err, &lost) || lost.Events != lines-1 {
		t.Fatalf("write: %v, want %d events lost", err, lines-1)
	}
	if w.Written() != 1 || w.Lost() != uint64(lines-1) {
		t.Fatalf("written %d lost %d, want 1 and %d", w.Written(), w.Lost(), lines-1)
	}
	out.fail = false
	before := out.Len()
	if err := w.WriteLines(b, lines); err != nil || w.Written() != uint64(lines+1) || out.Len()-before != len(b) {
		t.Fatalf("write: %v, %d written, %d bytes out of %d", err, w.Written(), out.Len()-before, len(b))
	}
}
