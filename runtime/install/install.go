// Package install wires ocigate's hook into container runtimes' own
// configuration: hooks.d files for podman and CRI-O, a base runtime spec
// in containerd's config.toml, a runtime wrapper entry in Docker's
// daemon.json. Install and Uninstall compute a Plan from what is on disk
// (nothing is written until Plan.Apply), so a dry run prints exactly what
// a real run does. Both are idempotent.
//
// Every file install touches is recorded, with its original bytes, in a
// state file (StateDir/RUNTIME.json). Uninstall puts a file back byte for
// byte when it still holds what install wrote; when someone changed it
// since, uninstall removes only ocigate's entries and says so.
package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/ocigate/ocigate/runtime/hooksd"
)

// DefaultStateDir holds the state files with the original bytes.
const DefaultStateDir = "/var/lib/ocigate/install"

// Options say where things are. Empty fields take each runtime's default.
type Options struct {
	HookPath string // absolute path of ocigate-hook (required)
	Socket   string // agent socket the hook dials; empty: the hook's default
	FailOpen bool   // the hook lets containers start when the agent is unreachable
	// AllowFailOpenAnnotation lets the hook honour a container's
	// ocigate.io/failure-policy: open when the agent is unreachable.
	AllowFailOpenAnnotation bool
	// NoPoststop installs the createRuntime hook only (see hooksd.Options).
	NoPoststop bool
	// NRIGate installs the hook as the gate of a node whose agent is an
	// NRI plugin (ocigate-hook --nri-gate, docs/kubernetes.md): at
	// createRuntime only, since the plugin unregisters.
	NRIGate          bool
	ExemptNamespaces string // with NRIGate: the hook's --exempt-namespaces
	ExemptFile       string // with NRIGate: the hook's --exempt-file

	HooksDir    string // podman, crio: the hooks.d directory
	Config      string // containerd: config.toml; docker: daemon.json
	SpecFile    string // containerd: the base runtime spec written for CRI
	WrapperPath string // docker: ocigate-runc
	RuncPath    string // docker: the real runc the wrapper execs; empty: the wrapper's default
	StateDir    string // default DefaultStateDir
}

func (o Options) hookOptions() hooksd.Options {
	h := hooksd.Options{HookPath: o.HookPath, Socket: o.Socket, NoPoststop: o.NoPoststop}
	if o.FailOpen {
		h.Extra = append(h.Extra, "--fail-open")
	}
	if o.AllowFailOpenAnnotation {
		h.Extra = append(h.Extra, "--allow-fail-open-annotation")
	}
	if o.NRIGate {
		h.NoPoststop = true
		h.Extra = append(h.Extra, "--nri-gate")
		if o.ExemptNamespaces != "" {
			h.Extra = append(h.Extra, "--exempt-namespaces="+o.ExemptNamespaces)
		}
		if o.ExemptFile != "" {
			h.Extra = append(h.Extra, "--exempt-file="+o.ExemptFile)
		}
	}
	return h
}

func (o Options) stateDir() string {
	if o.StateDir != "" {
		return o.StateDir
	}
	return DefaultStateDir
}

// target is one file a runtime's installer manages.
type target struct {
	path string
	kind string      // selects strip at uninstall: kindOwned, kindContainerd, kindDocker
	mode fs.FileMode // of a file install creates
	// entry identifies ocigate's entry in an edited file (containerd: the
	// spec path; docker: the wrapper path); strip matches on it.
	entry string
	// content returns the file with ocigate's entries, given what is there
	// (nil when the file does not exist).
	content func(cur []byte) ([]byte, error)
}

// File kinds.
const (
	kindOwned      = "owned" // the whole file is ocigate's
	kindContainerd = "containerd-config"
	kindDocker     = "docker-daemon-json"
)

// strip returns cur without ocigate's entries (remove: delete the file).
// original is the file before install (nil when unknown or absent).
func strip(kind string, cur, original []byte, entry string) (out []byte, remove bool, err error) {
	switch kind {
	case kindOwned:
		return nil, true, nil
	case kindContainerd:
		out, err := stripContainerd(cur, original, entry)
		return out, false, err
	case kindDocker:
		out, err := stripDocker(cur, original, entry)
		return out, false, err
	}
	return nil, false, fmt.Errorf("unknown file kind %q", kind)
}

// runtimeSetup is what one runtime's installer provides.
type runtimeSetup struct {
	targets func(o Options) ([]target, error)
	notes   func(o Options, p *Plan) // after-install advice
}

var runtimes = map[string]runtimeSetup{
	"podman":     {targets: hooksdTargets(DefaultHooksDir), notes: podmanNotes},
	"crio":       {targets: hooksdTargets(DefaultHooksDir), notes: crioNotes},
	"containerd": {targets: containerdTargets, notes: containerdNotes},
	"docker":     {targets: dockerTargets, notes: dockerNotes},
}

// Runtimes lists the runtimes Install knows.
func Runtimes() []string {
	names := make([]string, 0, len(runtimes))
	for n := range runtimes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func setupFor(runtime string) (runtimeSetup, error) {
	s, ok := runtimes[runtime]
	if !ok {
		return s, fmt.Errorf("unknown runtime %q (want one of %v)", runtime, Runtimes())
	}
	return s, nil
}

// Install plans ocigate's entries for runtime.
func Install(runtime string, o Options) (*Plan, error) {
	setup, err := setupFor(runtime)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(o.HookPath) {
		return nil, fmt.Errorf("hook path %q is not absolute", o.HookPath)
	}
	targets, err := setup.targets(o)
	if err != nil {
		return nil, err
	}
	prev, err := loadState(o.stateDir(), runtime)
	if err != nil {
		return nil, err
	}
	p := &Plan{Runtime: runtime, Install: true, statePath: statePath(o.stateDir(), runtime)}
	st := &State{Runtime: runtime}
	if prev != nil {
		st.Dirs = prev.Dirs
	}
	for _, t := range targets {
		cur, exists, mode, err := readFile(t.path)
		if err != nil {
			return nil, err
		}
		next, err := t.content(curOrNil(cur, exists))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.path, err)
		}
		rec := FileRecord{Path: t.path, Kind: t.kind, Entry: t.entry, Existed: exists, Original: cur, Mode: uint32(mode.Perm()), Installed: digest(next)}
		if !exists {
			rec.Original, rec.Mode = nil, uint32(t.mode.Perm())
		}
		if old := prev.record(t.path); old != nil && exists && hasOurs(t.kind, cur, old, t.entry) {
			// Still ours since the last install: the original stays the one
			// from before the first.
			rec.Existed, rec.Original, rec.Mode = old.Existed, old.Original, old.Mode
		}
		st.Files = append(st.Files, rec)
		c := Change{Path: t.path, Old: cur, OldExists: exists, New: next, NewExists: true, Mode: mode}
		switch {
		case exists && bytes.Equal(cur, next):
			c.Action = ActionUnchanged
			c.Note = "already installed"
		case exists:
			c.Action = ActionEdit
		default:
			c.Action, c.Mode = ActionCreate, t.mode
			dirs, err := missingDirs(filepath.Dir(t.path))
			if err != nil {
				return nil, err
			}
			for _, d := range dirs {
				if !slices.Contains(p.mkdirs, d) {
					p.mkdirs = append(p.mkdirs, d)
				}
				if !slices.Contains(st.Dirs, d) {
					st.Dirs = append(st.Dirs, d)
				}
			}
		}
		p.Changes = append(p.Changes, c)
	}
	p.state = st
	if _, err := os.Stat(o.HookPath); err != nil {
		p.Notes = append(p.Notes, "ocigate-hook is not at "+o.HookPath+" yet: copy bin/ocigate-hook there (or pass --hook-path)")
	}
	if setup.notes != nil {
		setup.notes(o, p)
	}
	return p, nil
}

// hasOurs reports whether cur still holds ocigate's entries.
func hasOurs(kind string, cur []byte, rec *FileRecord, entry string) bool {
	out, remove, err := strip(kind, cur, rec.Original, entry)
	return err == nil && (remove || !bytes.Equal(out, cur))
}

// Uninstall plans the removal of ocigate's entries for runtime: the files
// recorded at install, or, without a state file, the files install would
// write with these options.
func Uninstall(runtime string, o Options) (*Plan, error) {
	setup, err := setupFor(runtime)
	if err != nil {
		return nil, err
	}
	st, err := loadState(o.stateDir(), runtime)
	if err != nil {
		return nil, err
	}
	p := &Plan{Runtime: runtime, statePath: statePath(o.stateDir(), runtime)}
	var recs []FileRecord
	if st != nil {
		recs = st.Files
		p.rmdirs = slices.Clone(st.Dirs)
	} else {
		if o.HookPath == "" {
			o.HookPath = "/nonexistent/ocigate-hook" // only paths matter here
		}
		targets, err := setup.targets(o)
		if err != nil {
			return nil, err
		}
		for _, t := range targets {
			recs = append(recs, FileRecord{Path: t.path, Kind: t.kind, Entry: t.entry})
		}
		p.Notes = append(p.Notes, fmt.Sprintf("no install record at %s: removing ocigate's entries from the default files", p.statePath))
	}
	// Undo in reverse order: the config before the file it points to.
	for i := len(recs) - 1; i >= 0; i-- {
		c, err := uninstallFile(&recs[i], st != nil)
		if err != nil {
			return nil, err
		}
		p.Changes = append(p.Changes, c)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(p.rmdirs))) // deepest first
	return p, nil
}

func uninstallFile(rec *FileRecord, recorded bool) (Change, error) {
	cur, exists, mode, err := readFile(rec.Path)
	if err != nil {
		return Change{}, err
	}
	c := Change{Path: rec.Path, Old: cur, OldExists: exists, Mode: mode}
	switch {
	case recorded && exists && digest(cur) == rec.Installed:
		c.New, c.NewExists, c.Mode = rec.Original, rec.Existed, fs.FileMode(rec.Mode)
		switch {
		case !rec.Existed:
			c.Action = ActionRemove
		case bytes.Equal(cur, rec.Original):
			c.Action, c.Note = ActionUnchanged, "as it was before install"
		default:
			c.Action, c.Note = ActionRestore, "the original bytes"
		}
	case !exists:
		c.Action, c.Note = ActionUnchanged, "not there"
	default:
		out, remove, err := strip(rec.Kind, cur, rec.Original, rec.Entry)
		if err != nil {
			return Change{}, fmt.Errorf("%s: %w", rec.Path, err)
		}
		changedNote := ""
		if recorded {
			changedNote = "changed since install: "
		}
		switch {
		case remove:
			c.Action, c.Note = ActionRemove, changedNote+"ocigate's own file"
		case bytes.Equal(out, cur):
			c.Action, c.Note = ActionUnchanged, "no ocigate entries"
		default:
			c.Action, c.New, c.NewExists, c.Note = ActionEdit, out, true, changedNote+"removed only ocigate's entries"
		}
	}
	return c, nil
}

// readFile returns a regular file's bytes and mode; a missing file is
// (nil, false).
func readFile(path string) ([]byte, bool, fs.FileMode, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, 0, nil
	}
	if err != nil {
		return nil, false, 0, fmt.Errorf("read %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, 0, fmt.Errorf("%s is not a regular file (mode %s)", path, fi.Mode().Type())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, 0, fmt.Errorf("read %s: %w", path, err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, true, fi.Mode(), nil
}

func curOrNil(b []byte, exists bool) []byte {
	if !exists {
		return nil
	}
	return b
}

// missingDirs lists dir and its missing parents, outermost first.
func missingDirs(dir string) ([]string, error) {
	var out []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("%s is not a directory", d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("stat %s: %w", d, err)
		}
		out = append([]string{d}, out...)
		if d == filepath.Dir(d) {
			break
		}
	}
	return out, nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
