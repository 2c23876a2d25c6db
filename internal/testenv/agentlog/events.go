// Package agentlog reads what an agent under test writes: its JSON-lines
// events file as it grows (EventLog), with Field, Match and Matcher to look
// events up, and the tail of its log for failure messages (Tail). The e2e
// tests and the vmtest suite share it; it does not import testing, so the
// suite's static binary can run it in a minimal guest.
package agentlog

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// EventLog tails a JSON-lines events file (one JSON object per line) as it
// grows. The file need not exist yet when the EventLog is made. Lines that
// are not JSON objects are kept (see Lines) but never match.
type EventLog struct {
	path string

	mu      sync.Mutex
	offset  int64
	partial []byte
	lines   []string
	events  []map[string]any
}

// NewEventLog returns an EventLog reading path from its beginning.
func NewEventLog(path string) *EventLog { return &EventLog{path: path} }

// poll reads whatever was appended since the last call.
func (e *EventLog) poll() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	f, err := os.Open(e.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("reading events file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() < e.offset {
		// Truncated or replaced: start over.
		e.offset, e.partial = 0, nil
	}
	if _, err := f.Seek(e.offset, io.SeekStart); err != nil {
		return fmt.Errorf("reading events file: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("reading events file: %w", err)
	}
	e.offset += int64(len(data))
	data = append(e.partial, data...)
	last := bytes.LastIndexByte(data, '\n')
	if last < 0 {
		e.partial = data
		return nil
	}
	e.partial = append([]byte(nil), data[last+1:]...)
	sc := bufio.NewScanner(bytes.NewReader(data[:last+1]))
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		e.lines = append(e.lines, line)
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev != nil {
			e.events = append(e.events, ev)
		}
	}
	return sc.Err()
}

// Lines returns every non-empty line read so far (for failure messages).
func (e *EventLog) Lines() []string {
	_ = e.poll()
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.lines...)
}

// Events returns every decoded event read so far.
func (e *EventLog) Events() []map[string]any {
	_ = e.poll()
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]map[string]any(nil), e.events...)
}

// Find returns the first event read so far that matches pred.
func (e *EventLog) Find(pred func(map[string]any) bool) (map[string]any, bool) {
	for _, ev := range e.Events() {
		if pred(ev) {
			return ev, true
		}
	}
	return nil, false
}

// Wait polls the file until an event matching pred appears (searching from
// the start of the file) or timeout passes.
func (e *EventLog) Wait(ctx context.Context, timeout time.Duration, pred func(map[string]any) bool) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := e.poll(); err != nil {
			return nil, err
		}
		if ev, ok := e.Find(pred); ok {
			return ev, nil
		}
		select {
		case <-ctx.Done():
			if ev, ok := e.Find(pred); ok {
				return ev, nil
			}
			return nil, fmt.Errorf("no matching event in %s within %v (%d lines read)", e.path, timeout, len(e.Lines()))
		case <-tick.C:
		}
	}
}

// Field looks up a dotted path such as "process_kprobe.args.0.sock_arg.daddr"
// in a decoded event; numeric elements index arrays.
func Field(ev map[string]any, path string) (any, bool) {
	var cur any = ev
	for _, part := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[part]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// Match reports whether every path in want is present in ev with an equal
// value. Numbers compare by value (JSON numbers decode as float64), so
// want may hold ints; a []string want means any of its strings.
func Match(ev map[string]any, want map[string]any) bool {
	for path, w := range want {
		got, ok := Field(ev, path)
		if !ok || !equalValue(got, w) {
			return false
		}
	}
	return true
}

// Matcher returns a predicate for EventLog.Wait built from Match.
func Matcher(want map[string]any) func(map[string]any) bool {
	return func(ev map[string]any) bool { return Match(ev, want) }
}

// equalValue reports whether got, a decoded JSON value, is what want
// asks for (see Match).
func equalValue(got, want any) bool {
	if gf, ok := toFloat(got); ok {
		wf, ok := toFloat(want)
		return ok && gf == wf
	}
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		return ok && g == w
	case []string:
		g, ok := got.(string)
		return ok && slices.Contains(w, g)
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	case nil:
		return got == nil
	}
	gj, err1 := json.Marshal(got)
	wj, err2 := json.Marshal(want)
	return err1 == nil && err2 == nil && bytes.Equal(gj, wj)
}

// toFloat returns a number of any Go or JSON numeric type as a float64.
func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case int64:
		return float64(n), true
	case uint16:
		return float64(n), true
	case uint32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}
