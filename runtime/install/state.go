package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ocigate/ocigate/internal/atomicfile"
)

// State is what install did for one runtime, kept for uninstall.
type State struct {
	Runtime string       `json:"runtime"`
	Files   []FileRecord `json:"files"`
	Dirs    []string     `json:"dirs,omitempty"` // directories install created
}

// FileRecord is one file install wrote or edited.
type FileRecord struct {
	Path      string `json:"path"`
	Kind      string `json:"kind"`
	Entry     string `json:"entry,omitempty"`
	Existed   bool   `json:"existed"`            // before the first install
	Original  []byte `json:"original,omitempty"` // its bytes then
	Mode      uint32 `json:"mode"`
	Installed string `json:"installed_sha256"` // of what install wrote
}

func (s *State) record(path string) *FileRecord {
	if s == nil {
		return nil
	}
	for i := range s.Files {
		if s.Files[i].Path == path {
			return &s.Files[i]
		}
	}
	return nil
}

func statePath(dir, runtime string) string {
	return filepath.Join(dir, runtime+".json")
}

// loadState returns nil when there is no state file.
func loadState(dir, runtime string) (*State, error) {
	p := statePath(dir, runtime)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("install record: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("install record %s: %w", p, err)
	}
	if s.Runtime != runtime {
		return nil, fmt.Errorf("install record %s is for runtime %q, not %q", p, s.Runtime, runtime)
	}
	return &s, nil
}

func saveState(path string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode install record: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("install record: %w", err)
	}
	return atomicfile.Write(path, append(b, '\n'), 0o600)
}

// Installed lists the runtimes that have an install record in stateDir
// ("": DefaultStateDir), sorted: those that an uninstall of everything
// undoes.
func Installed(stateDir string) ([]string, error) {
	if stateDir == "" {
		stateDir = DefaultStateDir
	}
	var out []string
	for _, rt := range Runtimes() {
		_, err := os.Stat(statePath(stateDir, rt))
		switch {
		case err == nil:
			out = append(out, rt)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("install record: %w", err)
		}
	}
	return out, nil
}
