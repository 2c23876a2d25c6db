// Package buildinfo is what a binary knows of its build: the release
// version, the commit and the hash of the BPF objects, set by the
// Makefile (-ldflags -X) and printed by `ocigate-agentd version` and
// `ocigate-hook --version`.
package buildinfo

import (
	"runtime"
	"strconv"

	"github.com/ocigate/ocigate/internal/api/wire"
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

// Get returns this binary's Info. A commit not set at build time (a
// plain go build) is "unknown": the Go toolchain's VCS stamp is not read,
// since runtime/debug's parser would bring fmt into the hook, which
// pays at every container's start for the code it links.
func Get() Info {
	return Info{Version: Version, Commit: orUnknown(Commit), BPFObjects: orUnknown(BPFObjects),
		Protocol: wire.ProtocolVersion, MinProtocol: wire.MinProtocolVersion,
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
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
	p, minp := strconv.Itoa(i.Protocol), strconv.Itoa(i.MinProtocol)
	return i.Version + " commit " + i.Commit + " bpf " + i.BPFObjects + " protocol " + p +
		" (speaks " + minp + " to " + p + ") " + i.GoVersion + " " + i.Platform
}
