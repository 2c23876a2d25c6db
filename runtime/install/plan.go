package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ocigate/ocigate/internal/atomicfile"
)

// What a Change does to its file.
const (
	ActionUnchanged = "unchanged"
	ActionCreate    = "create"
	ActionEdit      = "edit"
	ActionRestore   = "restore"
	ActionRemove    = "remove"
)

// maxWholeFileLines is the most lines of a created or removed file that
// is printed whole; a longer one is summarised by its size.
const maxWholeFileLines = 20

// Change is one file's change.
type Change struct {
	Path      string
	Action    string
	Old       []byte // the file now (nil when absent)
	OldExists bool
	New       []byte // the file after (nil when removed)
	NewExists bool
	Mode      fs.FileMode // of the file written
	Note      string
}

// Plan is everything an install or uninstall changes.
type Plan struct {
	Runtime string
	Install bool // false: uninstall
	Changes []Change
	Notes   []string // advice printed after the changes

	state     *State // install: written before the files
	statePath string
	mkdirs    []string // install: directories to create, outermost first
	rmdirs    []string // uninstall: directories install created, removed when empty
}

// Changed reports whether applying the plan changes any file.
func (p *Plan) Changed() bool {
	for _, c := range p.Changes {
		if c.Action != ActionUnchanged {
			return true
		}
	}
	return false
}

// Print writes what the plan does, each change with a diff-like summary.
func (p *Plan) Print(w io.Writer, dryRun bool) {
	verb := "uninstall"
	if p.Install {
		verb = "install"
	}
	prefix := ""
	if dryRun {
		prefix = "[dry run] "
	}
	for _, d := range p.mkdirs {
		fmt.Fprintf(w, "%smkdir %s\n", prefix, d)
	}
	for _, c := range p.Changes {
		line := fmt.Sprintf("%s%s %s", prefix, c.Action, c.Path)
		if c.Note != "" {
			line += " (" + c.Note + ")"
		}
		fmt.Fprintln(w, line)
		switch {
		case c.Action == ActionUnchanged:
		case (!c.OldExists || !c.NewExists) && bytes.Count(c.Old, []byte("\n"))+bytes.Count(c.New, []byte("\n")) > maxWholeFileLines:
			fmt.Fprintf(w, "    (%d bytes)\n", len(c.Old)+len(c.New))
		default:
			writeDiff(w, c.Old, c.New, "    ")
		}
	}
	for _, d := range p.rmdirs {
		fmt.Fprintf(w, "%srmdir %s (if empty)\n", prefix, d)
	}
	switch {
	case !p.Changed() && p.Install:
		fmt.Fprintf(w, "%s%s %s: nothing to change, ocigate is already installed\n", prefix, verb, p.Runtime)
	case !p.Changed():
		fmt.Fprintf(w, "%s%s %s: nothing to change\n", prefix, verb, p.Runtime)
	case dryRun:
		fmt.Fprintf(w, "[dry run] %s %s: nothing written\n", verb, p.Runtime)
	}
	for _, n := range p.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
}

// Apply writes the plan: on install the state file first (so an
// interrupted install can still be undone), then the files; on uninstall
// the files, then the state file goes.
func (p *Plan) Apply() error {
	if p.Install {
		for _, d := range p.mkdirs {
			if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("create directory: %w", err)
			}
		}
		if err := saveState(p.statePath, p.state); err != nil {
			return err
		}
	}
	for _, c := range p.Changes {
		switch {
		case c.Action == ActionUnchanged:
		case !c.NewExists:
			if err := os.Remove(c.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", c.Path, err)
			}
		default:
			if err := atomicfile.Write(c.Path, c.New, c.Mode); err != nil {
				return err
			}
		}
	}
	if p.Install {
		return nil
	}
	for _, d := range p.rmdirs {
		// Only empty directories go: someone else's files keep theirs.
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("remove directory %s: %w", d, err)
		}
	}
	if err := os.Remove(p.statePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove install record: %w", err)
	}
	_ = os.Remove(filepath.Dir(p.statePath)) // when no other runtime's record is left
	return nil
}
