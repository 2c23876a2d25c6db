// Package hookreport carries the refusals the hook makes while no agent
// answers to the agent that comes back: the hook writes each as a small
// JSON file into a directory only root can write (default DefaultDir);
// the agent reads them, reports each as an event and removes it.
package hookreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
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
// never sees half a report.
func Write(dir string, r Report) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("hook report: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("hook report: %w", err)
	}
	if len(entries) >= MaxFiles {
		return fmt.Errorf("hook report in %s: %w", dir, ErrFull)
	}
	r.ContainerID, r.Runtime, r.Bundle, r.Rule = cut(r.ContainerID), cut(r.Runtime), cut(r.Bundle), cut(r.Rule)
	for i := range r.Claims {
		r.Claims[i] = Claim{cut(r.Claims[i].Key), cut(r.Claims[i].Value)}
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("hook report: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return fmt.Errorf("hook report: %w", err)
	}
	name := fmt.Sprintf("%020d-%d.json", r.Time.UnixNano(), os.Getpid())
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("hook report: %w", werr)
	}
	return nil
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
		return nil, []error{fmt.Errorf("hook reports: %w", err)}
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
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
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
		return Report{}, fmt.Errorf("hook report %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > MaxSize {
		return Report{}, fmt.Errorf("hook report %s: not a regular file of at most %s bytes", path, strconv.Itoa(MaxSize))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Report{}, fmt.Errorf("hook report %s: %w", path, err)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return Report{}, fmt.Errorf("hook report %s: %w", path, err)
	}
	return r, nil
}
