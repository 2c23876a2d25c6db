package events

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Strings that every escaping rule of encoding/json applies to.
var trickyStrings = []string{
	"", "plain", "a<b>&c", `quote " backslash \ slash /`, "\n\r\t\b\f", "\x00\x01\x1f\x7f",
	"é ü 中文 😀", "\u2028 and \u2029", "bad \xff\xfe utf-8", "\xe2\x80", "end\xc3",
}

// fill sets every field reachable from v: strings from trickyStrings,
// numbers and bools non-zero, pointers allocated, slices of two. A field
// the encoder forgets then shows up against json.Marshal.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(trickyStrings[*n%len(trickyStrings)] + "x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-int64(*n) * 1000003)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n) * 4000037)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := 0; i < 2; i++ {
			fill(v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for i := 0; i < 3; i++ {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			v.SetMapIndex(k, e)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 11, 23, 13, 43, 36, *n*7919, time.FixedZone("x", 3600))))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	}
}

func checkSameAsMarshal(t *testing.T, what string, ev *Event) {
	t.Helper()
	want, err := json.Marshal(ev)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got, err := ev.AppendJSON(nil); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, got, want)
	}
	// An Encoder that encoded every event before this one, twice.
	for range 2 {
		if got, err := sharedEncoder.AppendJSON(nil, ev); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s, by an Encoder:\n got  %s\n want %s", what, got, want)
		}
	}
}

// sharedEncoder encodes every event checkSameAsMarshal checks: what it
// remembers of one must never show in the next.
var sharedEncoder Encoder

func TestAppendJSONIsMarshal(t *testing.T) {
	for seed := 0; seed < len(trickyStrings); seed++ {
		var ev Event
		n := seed
		fill(reflect.ValueOf(&ev).Elem(), &n)
		checkSameAsMarshal(t, "every field set", &ev)
		// Each top-level kind alone, and with its optional parts unset.
		kp, ex, exit, claim := ev.ProcessKprobe, ev.ProcessExec, ev.ProcessExit, ev.OcigateClaim
		lsm, tp := ev.ProcessLsm, ev.ProcessTracepoint
		ev.ProcessExec, ev.ProcessExit, ev.ProcessLsm, ev.ProcessTracepoint, ev.OcigateClaim = nil, nil, nil, nil, nil
		checkSameAsMarshal(t, "kprobe", &ev)
		ev.ProcessKprobe, ev.ProcessLsm = nil, lsm
		checkSameAsMarshal(t, "lsm", &ev)
		ev.ProcessLsm, ev.ProcessTracepoint = nil, tp
		tp.FunctionName, tp.Return, tp.Tags = "", nil, nil
		checkSameAsMarshal(t, "tracepoint", &ev)
		ev.ProcessTracepoint, ev.ProcessKprobe = nil, kp
		kp.Parent, kp.Args, kp.Process.Pod = nil, nil, nil
		checkSameAsMarshal(t, "kprobe, no args", &ev)
		kp.Args = []Arg{}
		checkSameAsMarshal(t, "kprobe, empty args", &ev)
		ev.ProcessKprobe, ev.ProcessExec = nil, ex
		checkSameAsMarshal(t, "exec", &ev)
		ev.ProcessExec, ev.ProcessExit = nil, exit
		exit.Signal, exit.Parent = "", nil
		checkSameAsMarshal(t, "exit", &ev)
		ev.ProcessExit, ev.OcigateClaim = nil, claim
		checkSameAsMarshal(t, "claim", &ev)
		claim.Pod, claim.Claims, claim.RequestedProfile, claim.Profile = nil, nil, "", ""
		checkSameAsMarshal(t, "claim, optional parts unset", &ev)
	}
	// Zero values: every omitempty and omitzero.
	checkSameAsMarshal(t, "zero event", &Event{})
	zero := 0
	empty := ""
	checkSameAsMarshal(t, "zero parts", &Event{ProcessKprobe: &Kprobe{Args: []Arg{{}, {SockArg: &SockArg{}}, {SockaddrArg: &SockaddrArg{}},
		{IntArg: &IntArg{}}, {FileArg: &FileArg{}}, {SkbArg: &SkbArg{}}, {PathArg: &FileArg{}}, {LinuxBinprmArg: &FileArg{}},
		{StringArg: &empty}, {SyscallID: &SyscallID{}}, {NetDevArg: &NetDevArg{}}, {NetDevArg: &NetDevArg{Name: "lo"}, Label: "dev"}}, Return: &Arg{}, Tags: []string{}, Process: Process{Pod: &Pod{}}},
		Ocigate: &Ocigate{Selector: &zero}})
	stacks := &Kprobe{Args: []Arg{}, KernelStackTrace: []StackTraceEntry{{Address: 0xffffffff81000010, Offset: 16, Symbol: "kfree_skb_reason"}, {}},
		UserStackTrace: []StackTraceEntry{{Address: 0x401000, Offset: 0x1000, Module: "/probe"}, {Symbol: "x"}}}
	checkSameAsMarshal(t, "stack traces", &Event{ProcessKprobe: stacks})
	checkSameAsMarshal(t, "zero exec and exit", &Event{ProcessExec: &Exec{Parent: &Process{}}, ProcessExit: &Exit{}})
	checkSameAsMarshal(t, "zero claim", &Event{OcigateClaim: &ClaimEvent{Claims: []ClaimArg{}, Pod: &Pod{}}})
}

// Strings quote as encoding/json quotes them, escapes at every position of
// the eight-byte steps included.
func FuzzAppendString(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s)
	}
	long := "/usr/lib/python3.11/site-packages/x.py --name "
	for i := 0; i < 20; i++ {
		for _, c := range []string{"<", "\"", "\n", "\xff", "é", "\u2028", "\x1f", "\x7f", "&"} {
			f.Add(long[:i] + c + long[i:])
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// A frozen process encodes as it did when frozen, in every copy; a copy
// thawed and changed encodes its changes.
func TestFreeze(t *testing.T) {
	ev := goldenEvents()[1]
	kp := ev.ProcessKprobe
	kp.Process.Freeze()
	kp.Parent.Freeze()
	checkSameAsMarshal(t, "frozen", ev)
	copyEv := *ev
	k2 := *kp
	copyEv.ProcessKprobe = &k2
	k2.Process.Thaw()
	k2.Process.Docker, k2.Process.Pod = "other", nil
	checkSameAsMarshal(t, "thawed copy", &copyEv)
	if b, _ := ev.AppendJSON(nil); bytes.Contains(b, []byte(`"other"`)) {
		t.Fatal("the original changed with its copy")
	}
	// Frozen and changed without Thaw: the frozen encoding stands (the
	// misuse Freeze's contract forbids), which shows it is used.
	kp.Process.Binary = "/changed"
	if b, _ := ev.AppendJSON(nil); bytes.Contains(b, []byte("/changed")) {
		t.Fatal("frozen encoding not used")
	}
	// An impossible start time is not frozen: AppendJSON still refuses it.
	p := Process{StartTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	p.Freeze()
	if _, err := (&Event{ProcessExec: &Exec{Process: p}}).AppendJSON(nil); !errors.Is(err, ErrTimeRange) {
		t.Fatalf("frozen impossible time: %v", err)
	}
}

// Times JSON cannot hold fail as Marshal fails, wherever they are.
func TestAppendJSONTimeRange(t *testing.T) {
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, ev := range []*Event{
		{Time: far},
		{ProcessExec: &Exec{Process: Process{StartTime: far}}},
		{ProcessKprobe: &Kprobe{Parent: &Process{StartTime: far}}},
		{ProcessExit: &Exit{Time: far}},
		{Time: time.Date(-1, 12, 31, 23, 0, 0, 0, time.UTC)},
		{Time: time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("-2", -2*3600))}, // 10000 in UTC: still year 9999
	} {
		if i == 5 {
			if _, err := ev.AppendJSON(nil); err != nil {
				t.Errorf("year 9999 in its zone: %v", err)
			}
			continue
		}
		if _, err := json.Marshal(ev); err == nil {
			t.Fatalf("%d: Marshal accepts it", i)
		}
		if _, err := ev.AppendJSON(nil); !errors.Is(err, ErrTimeRange) {
			t.Errorf("%d: %v, want ErrTimeRange", i, err)
		}
	}
}

// The test events of the compact golden file, decoded and encoded again.
func TestAppendJSONOfRecordedEvents(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "compact", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		checkSameAsMarshal(t, "events.jsonl line "+strconv.Itoa(n), &ev)
	}
}

// goldenEvents are one of each kind of event as the agent writes them.
func goldenEvents() []*Event {
	at := time.Date(2026, 11, 23, 13, 43, 36, 965830157, time.UTC)
	pod := &Pod{Container: Container{ID: "web-1", Name: "web", Image: Image{Name: "docker.io/library/python:3.11"}}}
	parent := &Process{ExecID: "dm06MTAwOjI0NzAw", Pid: Value{24700}, UID: Value{0}, Cwd: "/", Binary: "/usr/bin/bash",
		Arguments: "-c python3 x.py", Flags: "execve", StartTime: at.Add(-time.Second), Pod: pod, Docker: "web-1",
		ParentExecID: "dm06NTA6MjQ2OTk="}
	proc := Process{ExecID: "dm06MjAwOjI0NzMx", Pid: Value{24731}, UID: Value{1000}, Cwd: "/srv", Binary: "/usr/bin/python3.11",
		Arguments: `x.py --name "a<b>"`, Flags: "execve", StartTime: at.Add(-time.Millisecond), Pod: pod, Docker: "web-1",
		ParentExecID: parent.ExecID}
	sel := 2
	og := &Ocigate{ContainerID: "web-1", Runtime: "runc", Profile: "reverse-shell", Mode: "monitor", CgroupID: 310}
	kog := *og
	kog.Point, kog.Verdict, kog.Backend, kog.Mechanism, kog.Selector = "connect", "would-deny", "fallback", "cgroup_sock_addr", &sel
	runtime := &Process{ExecID: "dm06NTA6MjQ2OTk=", Pid: Value{24699}, Binary: "/usr/sbin/runc", Arguments: "run web-1", Flags: "procFS",
		StartTime: at.Add(-2 * time.Second)}
	first := Process{ExecID: "dm06MTAwOjI0NzAw", Pid: Value{24700}, Binary: "/usr/bin/bash", Flags: "execve", StartTime: at,
		Pod: pod, Docker: "web-1", ParentExecID: runtime.ExecID}
	eog := *og
	eog.ParentOutside = true
	return []*Event{
		{ProcessExec: &Exec{Process: first, Parent: runtime}, NodeName: "vm", Time: at, Ocigate: &eog},
		{ProcessKprobe: &Kprobe{Process: proc, Parent: parent, FunctionName: "tcp_connect", Action: ActionSigkill,
			PolicyName: "enforce-no-reverse-shell", Args: []Arg{{SockArg: &SockArg{Family: "AF_INET", Type: "SOCK_STREAM",
				Protocol: "IPPROTO_TCP", Saddr: "10.0.0.5", Sport: 40000, Daddr: "1.2.3.4", Dport: 4444, State: "TCP_CLOSE"}}}},
			NodeName: "vm", Time: at, Ocigate: &kog},
		{ProcessExit: &Exit{Process: proc, Parent: parent, Signal: "SIGKILL", Time: at}, NodeName: "vm", Time: at, Ocigate: og},
		{ProcessExit: &Exit{Process: proc, Status: 3, Time: at}, NodeName: "vm", Time: at},
	}
}

// The encoder's output for one event of each kind, kept in a golden file.
func TestAppendJSONGolden(t *testing.T) {
	var got []byte
	for _, ev := range goldenEvents() {
		checkSameAsMarshal(t, ev.Type(), ev)
		got = append(ev.appendJSON(got, nil), '\n')
	}
	golden := filepath.Join("testdata", "encode", "events.golden.jsonl")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test -run AppendJSONGolden -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("encoded events differ from %s:\n got\n%s\n want\n%s", golden, got, want)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	ev := goldenEvents()[1]
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = ev.AppendJSON(buf[:0])
	}
}

func BenchmarkMarshal(b *testing.B) {
	ev := goldenEvents()[1]
	b.ReportAllocs()
	for b.Loop() {
		_, _ = json.Marshal(ev)
	}
}

// An Encoder compares every field of the ocigate object it remembers:
// each changed alone changes the encoding.
func TestEncoderOcigateFields(t *testing.T) {
	var base Ocigate
	n := 0
	fill(reflect.ValueOf(&base).Elem(), &n)
	var c Encoder
	at := time.Date(2026, 11, 23, 13, 43, 36, 0, time.UTC)
	for i := range reflect.TypeOf(base).NumField() {
		o := base
		o.StdioSockets = slices.Clone(base.StdioSockets)
		sel := *base.Selector
		o.Selector = &sel
		f := reflect.ValueOf(&o).Elem().Field(i)
		switch f.Kind() {
		case reflect.Pointer:
			f.Elem().SetInt(f.Elem().Int() + 1)
		case reflect.Slice:
			f.Index(1).SetInt(f.Index(1).Int() + 1)
		default:
			fill(f, &n)
		}
		for _, og := range []*Ocigate{&base, &o} {
			ev := &Event{NodeName: "n", Time: at, Ocigate: og}
			want, _ := ev.AppendJSON(nil)
			if got, _ := c.AppendJSON(nil, ev); !bytes.Equal(got, want) {
				t.Fatalf("field %s: got %s, want %s", reflect.TypeOf(base).Field(i).Name, got, want)
			}
		}
	}
}

// An Encoder writes times as time.Time's MarshalJSON does.
func TestEncoderTimes(t *testing.T) {
	var c Encoder
	start := time.Date(2026, 12, 6, 23, 59, 59, 0, time.UTC)
	for _, d := range []time.Duration{0, 1, 10, 100, 120, 999999999, 1000000000, 1000000001, 123456789, 100000000, 3 * time.Hour, 400 * 24 * time.Hour} {
		for _, at := range []time.Time{start.Add(d), start.Add(d).In(time.FixedZone("x", 3600)), time.Date(5, 1, 2, 3, 4, 5, 6000, time.UTC)} {
			want, _ := at.MarshalJSON()
			if got := c.appendTime(nil, at); !bytes.Equal(got, want) {
				t.Errorf("%v: got %s, want %s", at, got, want)
			}
		}
	}
}
