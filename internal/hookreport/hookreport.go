// Package hookreport carries the refusals the hook makes while no agent
// answers to the agent that comes back: the hook writes each as a small
// JSON file into a directory only root can write (default DefaultDir);
// the agent reads them, reports each as an event and removes it.
package hookreport

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocigate/ocigate/internal/errwrap"
	"github.com/ocigate/ocigate/internal/jsonstr"
	"github.com/ocigate/ocigate/internal/plainjson"
)

// DefaultDir is where hooks leave reports and the agent reads them.
const DefaultDir = "/run/ocigate/hook-reports"

// Bounds: a flood of refused containers while the agent is away leaves
// at most MaxFiles reports of at most MaxSize bytes; later ones are not
// written (the hook's error still says everything).
const (
	MaxFiles = 256
	MaxSize  = 64 << 10
	// maxValue bounds each string of a report, which the container's
	// spec chose.
	maxValue = 1024
)

// Report is one refusal of the hook.
type Report struct {
	Time        time.Time `json:"time"`
	ContainerID string    `json:"container_id"`
	Runtime     string    `json:"runtime,omitempty"`
	Bundle      string    `json:"bundle,omitempty"`
	Claims      []Claim   `json:"claims"`
	Rule        string    `json:"rule"`
}

// Claim is one annotation of the refused claim.
type Claim struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ErrFull is the error of Write when the directory holds MaxFiles reports.
var ErrFull = errors.New("too many reports waiting for the agent")

// Write stores r in dir (created 0700 when missing) atomically: a reader
// never sees half a report. The hook calls it, so what it reaches links
// neither fmt nor encoding/json (errwrap, appendJSON).
func Write(dir string, r Report) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errwrap.Wrap("hook report", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return errwrap.Wrap("hook report", err)
	}
	if len(entries) >= MaxFiles {
		return errwrap.Wrap("hook report in "+dir, ErrFull)
	}
	r.ContainerID, r.Runtime, r.Bundle, r.Rule = cut(r.ContainerID), cut(r.Runtime), cut(r.Bundle), cut(r.Rule)
	for i := range r.Claims {
		r.Claims[i] = Claim{cut(r.Claims[i].Key), cut(r.Claims[i].Value)}
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return errwrap.Wrap("hook report", err)
	}
	_, werr := f.Write(r.appendJSON(nil))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), filepath.Join(dir, fileName(r.Time, os.Getpid())))
	}
	if werr != nil {
		os.Remove(f.Name())
		return errwrap.Wrap("hook report", werr)
	}
	return nil
}

// fileName names a report: its time in nanoseconds, 20 digits (reports
// sort by name as by time), and the hook's pid.
func fileName(t time.Time, pid int) string {
	ns := strconv.FormatInt(t.UnixNano(), 10)
	if len(ns) < 20 {
		ns = strings.Repeat("0", 20-len(ns)) + ns
	}
	return ns + "-" + strconv.Itoa(pid) + ".json"
}

// appendJSON appends r as encoding/json encodes it
// (TestAppendJSONMatchesEncodingJSON).
func (r *Report) appendJSON(b []byte) []byte {
	b = append(b, `{"time":"`...)
	b = append(r.Time.AppendFormat(b, time.RFC3339Nano), '"')
	b = jsonstr.Append(append(b, `,"container_id":`...), r.ContainerID)
	if r.Runtime != "" {
		b = jsonstr.Append(append(b, `,"runtime":`...), r.Runtime)
	}
	if r.Bundle != "" {
		b = jsonstr.Append(append(b, `,"bundle":`...), r.Bundle)
	}
	b = append(b, `,"claims":`...)
	if r.Claims == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, c := range r.Claims {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonstr.Append(append(b, `{"key":`...), c.Key)
			b = append(jsonstr.Append(append(b, `,"value":`...), c.Value), '}')
		}
		b = append(b, ']')
	}
	return append(jsonstr.Append(append(b, `,"rule":`...), r.Rule), '}')
}

// cut bounds a string of a report.
func cut(s string) string {
	if len(s) > maxValue {
		return s[:maxValue] + "..."
	}
	return s
}

// Collect reads the reports in dir, oldest first, and removes them; a
// file that is no report (too large, not JSON, not a regular file) is
// removed too and returned as an error. A missing dir holds nothing.
func Collect(dir string) ([]Report, []error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{errwrap.Wrap("hook reports", err)}
	}
	var out []Report
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			removeStale(filepath.Join(dir, e.Name()))
			continue
		}
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		r, err := read(path)
		os.Remove(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Report) int { return a.Time.Compare(b.Time) })
	return out, errs
}

// staleAfter is when a temporary file is a hook's that died writing it.
const staleAfter = time.Minute

// removeStale removes a temporary file a hook left behind.
func removeStale(path string) {
	if fi, err := os.Lstat(path); err == nil && time.Since(fi.ModTime()) > staleAfter {
		os.Remove(path)
	}
}

// read reads one report file.
func read(path string) (Report, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return Report{}, errwrap.Wrap("hook report "+path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > MaxSize {
		return Report{}, errors.New("hook report " + path + ": not a regular file of at most " + strconv.Itoa(MaxSize) + " bytes")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Report{}, errwrap.Wrap("hook report "+path, err)
	}
	r, err := decode(data)
	if err != nil {
		return Report{}, errwrap.Wrap("hook report "+path, err)
	}
	return r, nil
}

// decode reads a report as encoding/json would into Report
// (FuzzDecodeMatchesEncodingJSON), with internal/plainjson: the package
// is the hook's too, and importing encoding/json links it.
func decode(data []byte) (Report, error) {
	var r Report
	var terr error
	s := plainjson.New(data)
	ok := s.Fields(map[string]func() bool{
		"time": func() bool {
			if s.Null() {
				return true
			}
			from := s.Offset()
			v, ok := s.Str()
			if ok && terr == nil {
				r.Time, terr = parseTime(v, bytes.IndexByte(data[from:s.Offset()], '\\') >= 0)
			}
			return ok && terr == nil
		},
		"container_id": s.StrInto(&r.ContainerID),
		"runtime":      s.StrInto(&r.Runtime),
		"bundle":       s.StrInto(&r.Bundle),
		"claims":       func() bool { return decodeClaims(s, &r.Claims) },
		"rule":         s.StrInto(&r.Rule),
	})
	if terr != nil {
		return Report{}, terr
	}
	if !ok || !s.End() {
		return Report{}, s.Err()
	}
	return r, nil
}

// parseTime reads a report's time as time.Time's UnmarshalJSON does,
// which parses the string's bytes as they are: one written with an
// escape is no time.
func parseTime(v string, escaped bool) (time.Time, error) {
	var t time.Time
	if escaped {
		return t, errors.New("time: written with an escape")
	}
	if err := t.UnmarshalText([]byte(v)); err != nil {
		return time.Time{}, errwrap.Wrap("time", err)
	}
	return t, nil
}

// decodeClaims reads an array of claims into dst as encoding/json does
// (plainjson.SliceInto): a null element or a missing member leaves what
// an earlier decode put there.
func decodeClaims(s *plainjson.Scanner, dst *[]Claim) bool {
	return plainjson.SliceInto(s, dst, "an array", func(c *Claim) bool {
		return s.Null() || s.Fields(map[string]func() bool{"key": s.StrInto(&c.Key), "value": s.StrInto(&c.Value)})
	})
}
