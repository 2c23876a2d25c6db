// Package buildinfo is what a binary knows of its build: the release
// version, the commit and the hash of the BPF objects, set by the
// Makefile (-ldflags -X) and printed by `ocigate-agentd version` and
// `ocigate-hook --version`.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/ocigate/ocigate/internal/api"
)

// Set at build time: go build -ldflags "-X github.com/ocigate/ocigate/internal/buildinfo.Version=…".
var (
	// Version is the release, e.g. 0.1.0; "dev" for a plain go build.
	Version = "dev"
	// Commit is the git commit built, with "-dirty" for a changed tree.
	Commit = ""
	// BPFObjects is the hash of the objects the build embeds
	// (bpf/fallback_bpfel.o, bpf/security_bpfel.o).
	BPFObjects = ""
)

// Info is a binary's build, as `version -o json` prints it.
type Info struct {
	Version    string `json:"version" yaml:"version"`
	Commit     string `json:"commit" yaml:"commit"`
	BPFObjects string `json:"bpf_objects" yaml:"bpf_objects"`
	// Protocol is the hook↔agent protocol version sent, and the oldest
	// still spoken.
	Protocol    int    `json:"protocol" yaml:"protocol"`
	MinProtocol int    `json:"min_protocol" yaml:"min_protocol"`
	GoVersion   string `json:"go" yaml:"go"`
	Platform    string `json:"platform" yaml:"platform"`
}

// Get returns this binary's Info; a commit not set at build time comes
// from the Go toolchain's VCS stamp when there is one.
func Get() Info {
	commit := Commit
	if commit == "" {
		commit = vcsCommit()
	}
	return Info{Version: Version, Commit: commit, BPFObjects: orUnknown(BPFObjects),
		Protocol: api.ProtocolVersion, MinProtocol: api.MinProtocolVersion,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// vcsCommit returns the commit the Go toolchain stamped, or "unknown".
func vcsCommit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	return orUnknown(rev) + dirty
}

// orUnknown returns s, or "unknown" for "".
func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// String is the one line `NAME --version` prints.
func (i Info) String() string {
	return fmt.Sprintf("%s commit %s bpf %s protocol %d (speaks %d to %d) %s %s",
		i.Version, i.Commit, i.BPFObjects, i.Protocol, i.MinProtocol, i.Protocol, i.GoVersion, i.Platform)
}
