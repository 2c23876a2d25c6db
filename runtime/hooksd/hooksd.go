// Package hooksd writes the hooks.d configuration (oci-hooks(5), version
// 1.0.0) that podman and CRI-O read to run ocigate's hook.
package hooksd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Config is one hooks.d file.
type Config struct {
	Version string   `json:"version"`
	Hook    Hook     `json:"hook"`
	When    When     `json:"when"`
	Stages  []string `json:"stages"`
}

// Hook is the command a runtime runs.
type Hook struct {
	Path    string   `json:"path"`
	Args    []string `json:"args"`
	Timeout *int     `json:"timeout,omitempty"`
}

// When selects containers; ocigate's hook runs for all of them.
type When struct {
	Always bool `json:"always"`
}

// Options says where the hook is and how it reaches the agent.
type Options struct {
	HookPath string   // absolute path of ocigate-hook
	Socket   string   // agent socket; empty: the hook's default
	Extra    []string // more hook flags, e.g. --fail-open
	Timeout  int      // seconds the runtime waits for the hook; 0: none
	// NoPoststop leaves out the poststop hook: the agent's periodic check
	// and runtime events drop a stopped container's entry instead, and
	// each container start saves one hook exec.
	NoPoststop bool
}

// Stages are the OCI hook stages ocigate's hook can run at.
var Stages = []string{"createRuntime", "poststop"}

// Stages are the stages these options install the hook at.
func (o Options) Stages() []string {
	if o.NoPoststop {
		return Stages[:1]
	}
	return Stages
}

// Args is the hook's argv for a stage: ocigate-hook [--socket S]
// [Extra...] STAGE. Extra is not modified.
func (o Options) Args(stage string) []string {
	args := []string{"ocigate-hook"}
	if o.Socket != "" {
		args = append(args, "--socket", o.Socket)
	}
	args = append(args, o.Extra...)
	return append(args, stage)
}

// Files returns hooks.d file names and contents: one per stage, since a
// hooks.d entry passes the same args to every stage it lists.
func Files(o Options) (map[string][]byte, error) {
	if !filepath.IsAbs(o.HookPath) {
		return nil, fmt.Errorf("hook path %q is not absolute", o.HookPath)
	}
	out := map[string][]byte{}
	for _, stage := range o.Stages() {
		c := Config{Version: "1.0.0", Hook: Hook{Path: o.HookPath, Args: o.Args(stage)}, When: When{Always: true}, Stages: []string{stage}}
		if o.Timeout > 0 {
			t := o.Timeout
			c.Hook.Timeout = &t
		}
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode hooks.d %s: %w", stage, err)
		}
		out["ocigate-"+stage+".json"] = append(b, '\n')
	}
	return out, nil
}

// Write writes the files into dir, creating it.
func Write(dir string, o Options) ([]string, error) {
	files, err := Files(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create hooks dir: %w", err)
	}
	var written []string
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return written, fmt.Errorf("write %s: %w", p, err)
		}
		written = append(written, p)
	}
	return written, nil
}
