// Package jqcheck runs the seeds' jq filters (Tetragon users' event
// queries) over an event stream with the real jq and checks what they
// select: no jq error, and no null among the fields each filter reads.
// The unit tests run it over a recorded stream, the end-to-end tests over
// a live one.
package jqcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Spec is what a filter reads.
type Spec struct {
	// Fields are jq expressions that must be non-null on each of the
	// filter's outputs.
	Fields []string
	// KprobeOnly: the filter pipes a field only process_kprobe events
	// have into test(), which jq refuses on any other event ("null
	// (null) cannot be matched"); on Tetragon's own stream too. It runs on
	// the process_kprobe events of a stream (`events --type
	// process_kprobe`, `tetra getevents --event-types PROCESS_KPROBE`).
	KprobeOnly bool
}

// Fields every selected whole event must have: the process named the
// same way in every event, and its parent.
var eventFields = []string{".process_kprobe.process.exec_id", ".process_kprobe.process.pid.value",
	".process_kprobe.process.binary", ".process_kprobe.parent.exec_id", ".process_kprobe.parent.binary",
	".process_kprobe.process.docker", ".process_kprobe.process.pod.container.id", ".node_name", ".time"}

// Seeds are the nine filters of the seeds (testdata/jq/NN.jq), with the
// fields each reads.
var Seeds = map[string]Spec{
	"01.jq": {Fields: eventFields},
	"02.jq": {Fields: append([]string{".process_kprobe.function_name"}, eventFields...)},
	"03.jq": {Fields: []string{".process", ".pid", ".daddr", ".dport", ".protocol"}},
	"04.jq": {Fields: append([]string{".process_kprobe.function_name", ".process_kprobe.args[0].sock_arg.daddr"}, eventFields...)},
	"05.jq": {Fields: append([]string{".process_kprobe.action"}, eventFields...)},
	"06.jq": {Fields: eventFields, KprobeOnly: true},
	"07.jq": {Fields: append([]string{".process_kprobe.function_name",
		"[.process_kprobe.args[] | .int_arg.value | select(. != null and . <= 2)] | first"}, eventFields...), KprobeOnly: true},
	"08.jq": {Fields: []string{".time", ".binary", ".pid", ".parent", ".daddr", ".dport"}},
	"09.jq": {Fields: []string{".binary", ".pid", ".sport", ".family"}},
}

// Result is what one filter did on a stream.
type Result struct {
	Filter   string
	Selected int      // outputs
	Nulls    []string // "output N: FIELD is null"
	Err      error    // jq failed or printed to stderr
}

// Run runs the jq filter file over stream and returns its outputs, one
// compact JSON value each; an error when jq fails or complains.
func Run(filter string, stream []byte) ([][]byte, error) {
	return run(stream, "-c", "-f", filter)
}

func run(stdin []byte, args ...string) ([][]byte, error) {
	bin, err := exec.LookPath("jq")
	if err != nil {
		return nil, fmt.Errorf("jq: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil || stderr.Len() > 0 {
		return nil, fmt.Errorf("jq %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	var out [][]byte
	for _, line := range bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n")) {
		if len(line) > 0 {
			out = append(out, line)
		}
	}
	return out, nil
}

// Check runs filter (a file named as in Seeds) over stream and checks
// the fields its Spec names on every output. For a KprobeOnly filter
// the stream is narrowed to its process_kprobe events first.
func Check(filter string, stream []byte) Result {
	name := filepath.Base(filter)
	res := Result{Filter: name}
	spec, ok := Seeds[name]
	if !ok {
		res.Err = fmt.Errorf("%s is not one of the seeds' filters", name)
		return res
	}
	if spec.KprobeOnly {
		stream, res.Err = KprobeEvents(stream)
		if res.Err != nil {
			return res
		}
	}
	outs, err := Run(filter, stream)
	if err != nil {
		res.Err = err
		return res
	}
	res.Selected = len(outs)
	if len(outs) == 0 {
		return res
	}
	// One jq over all outputs: an array of the fields per output.
	values, err := run(bytes.Join(outs, []byte("\n")), "-c", "["+strings.Join(wrap(spec.Fields), ", ")+"]")
	if err != nil {
		res.Err = err
		return res
	}
	for i, v := range values {
		var got []any
		if err := json.Unmarshal(v, &got); err != nil || len(got) != len(spec.Fields) {
			res.Err = fmt.Errorf("%s output %d: fields %s: %v", name, i+1, v, err)
			return res
		}
		for j, f := range spec.Fields {
			if got[j] == nil {
				res.Nulls = append(res.Nulls, fmt.Sprintf("output %d: %s is null", i+1, f))
			}
		}
	}
	return res
}

// wrap makes each expression one array element even when it holds pipes.
func wrap(exprs []string) []string {
	out := make([]string, len(exprs))
	for i, e := range exprs {
		out[i] = "(" + e + ")"
	}
	return out
}

// CheckDir checks every seed filter of dir, in name order; it is an
// error when one is missing.
func CheckDir(dir string, stream []byte) ([]Result, error) {
	var names []string
	for n := range Seeds {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Result
	for _, n := range names {
		out = append(out, Check(filepath.Join(dir, n), stream))
	}
	for _, r := range out {
		if r.Err != nil && errors.Is(r.Err, exec.ErrNotFound) {
			return out, r.Err
		}
	}
	return out, nil
}

// KprobeEvents keeps the lines of stream that are process_kprobe events.
func KprobeEvents(stream []byte) ([]byte, error) {
	var out bytes.Buffer
	for i, line := range bytes.Split(stream, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var ev struct {
			Kprobe json.RawMessage `json:"process_kprobe"`
		}
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("stream line %d: %w", i+1, err)
		}
		if ev.Kprobe != nil {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), nil
}
