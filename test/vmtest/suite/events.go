package main

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// --- events ---

// waitEvent waits up to timeout for an event matching want (see
// agentlog.Match) and reports whether one came.
func (s *suite) waitEvent(timeout time.Duration, want map[string]any) (map[string]any, bool) {
	ev, err := s.events.Wait(context.Background(), timeout, agentlog.Matcher(want))
	return ev, err == nil
}

// containerLines returns the raw lines of the events file that mention id.
func (s *suite) containerLines(id string) []string {
	var out []string
	for _, line := range s.events.Lines() {
		if strings.Contains(line, `"`+id+`"`) {
			out = append(out, line)
		}
	}
	return out
}

// getString renders the value at path for messages ("" when absent).
func getString(ev map[string]any, path string) string {
	v, ok := agentlog.Field(ev, path)
	if !ok {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}
