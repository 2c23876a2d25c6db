package main

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"time"
)

// --- events ---

type eventLog struct{ path string }

// read returns every JSON object line of the events file.
func (l *eventLog) read() ([]map[string]any, []string) {
	data, err := os.ReadFile(l.path)
	if err != nil {
		return nil, nil
	}
	var evs []map[string]any
	var lines []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		lines = append(lines, line)
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev != nil {
			evs = append(evs, ev)
		}
	}
	return evs, lines
}

// wait polls until an event matching want appears or timeout passes.
func (l *eventLog) wait(timeout time.Duration, want map[string]any) (map[string]any, bool) {
	deadline := time.Now().Add(timeout)
	for {
		evs, _ := l.read()
		for _, ev := range evs {
			if match(ev, want) {
				return ev, true
			}
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// forContainer returns the raw lines that mention id.
func (l *eventLog) forContainer(id string) []string {
	_, lines := l.read()
	var out []string
	for _, line := range lines {
		if strings.Contains(line, `"`+id+`"`) {
			out = append(out, line)
		}
	}
	return out
}

// get returns the value at a dotted path ("a.b.0.c") of a decoded event.
func get(v any, path string) (any, bool) {
	for _, part := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[part]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// getString renders the value at path for messages ("" when absent).
func getString(ev map[string]any, path string) string {
	v, ok := get(ev, path)
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// match reports whether every path of want has the wanted value; numbers
// compare as float64, a []string want means "any of".
func match(ev map[string]any, want map[string]any) bool {
	for path, w := range want {
		v, ok := get(ev, path)
		if !ok {
			return false
		}
		switch wv := w.(type) {
		case int:
			if f, ok := v.(float64); !ok || f != float64(wv) {
				return false
			}
		case []string:
			sv, ok := v.(string)
			if !ok {
				return false
			}
			found := false
			for _, x := range wv {
				found = found || x == sv
			}
			if !found {
				return false
			}
		default:
			if v != w {
				return false
			}
		}
	}
	return true
}
