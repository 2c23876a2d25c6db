package install

import (
	"path/filepath"
	"sort"

	"github.com/ocigate/ocigate/runtime/hooksd"
)

// DefaultHooksDir is the hooks.d directory podman 4.3 reads by default
// and the first of CRI-O's default hooks_dir.
const DefaultHooksDir = "/usr/share/containers/oci/hooks.d"

// hooksdTargets returns the targets of podman and CRI-O, which read the
// same oci-hooks(5) files.
func hooksdTargets(defaultDir string) func(o Options) ([]target, error) {
	return func(o Options) ([]target, error) {
		dir := o.HooksDir
		if dir == "" {
			dir = defaultDir
		}
		files, err := hooksd.Files(o.hookOptions())
		if err != nil {
			return nil, err
		}
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		var out []target
		for _, n := range names {
			b := files[n]
			out = append(out, target{path: filepath.Join(dir, n), kind: kindOwned, mode: 0o644,
				content: func([]byte) ([]byte, error) { return b, nil }})
		}
		return out, nil
	}
}

func hooksDir(o Options) string {
	if o.HooksDir != "" {
		return o.HooksDir
	}
	return DefaultHooksDir
}

func podmanNotes(o Options, p *Plan) {
	if dir := hooksDir(o); dir != DefaultHooksDir {
		p.Notes = append(p.Notes, "podman reads "+DefaultHooksDir+" by default: run podman with --hooks-dir "+dir+
			" (or set hooks_dir in containers.conf)")
	} else {
		p.Notes = append(p.Notes, "podman reads "+dir+" for every new container; no restart needed")
	}
	p.Notes = append(p.Notes, "with hybrid cgroups (v2 at /sys/fs/cgroup/unified) run podman with --runtime runc")
}

func crioNotes(o Options, p *Plan) {
	p.Notes = append(p.Notes, "CRI-O reads the directories listed in hooks_dir under [crio.runtime] of /etc/crio/crio.conf "+
		"(default: "+DefaultHooksDir+"); if yours differs, add "+hooksDir(o)+" to hooks_dir and restart CRI-O")
}
