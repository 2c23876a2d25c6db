package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/hostfs"
	"github.com/ocigate/ocigate/internal/preflight"
	"github.com/ocigate/ocigate/runtime/install"
)

const checkLong = `Check a host before install: the kernel version, BTF, cgroup v2 (pure or
hybrid), bpffs, tracefs, the active LSMs and the lockdown mode; then, per
enforcement point, what this kernel offers and the backend the agent
would choose (the programs are loaded and attached for a moment, with no
workload registered, and detached again: nothing is enforced or pinned);
then each container runtime found and whether ocigate is wired into it.

The exit status is 1 when ocigate cannot protect containers here (a FAIL
line), 0 otherwise; WARN lines say what works with less.`

// checkReport is what check prints.
type checkReport struct {
	Host     []preflight.Finding     `json:"host"`
	Points   []enforcer.PointBackend `json:"points"`
	PointErr string                  `json:"points_error,omitempty"`
	Runtimes []runtimeFound          `json:"runtimes"`
	Protects bool                    `json:"protects"`
}

// runtimeFound is one runtime on this host.
type runtimeFound struct {
	Runtime string `json:"runtime"`
	Binary  string `json:"binary"`
	Wired   bool   `json:"wired"`
}

// newCheckCmd returns `check`.
func newCheckCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "check", Short: "check this host before install: kernel, BPF, cgroups, runtimes", Long: checkLong,
		Example: "  ocigate-agentd check\n  ocigate-agentd check -o json", Args: noArgs}
	backend := cmd.Flags().String("enforcer", enforcer.BackendAuto, "the backend run would be given: auto, lsm, fmod_ret or fallback")
	stateDir := cmd.Flags().String("state-dir", install.DefaultStateDir, "install's records, which say what is wired")
	formats := outputs{"text", "json", "yaml"}
	output := formats.add(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := formats.check(*output); err != nil {
			return err
		}
		r := runCheck(*backend, *stateDir)
		if err := printData(cmd.OutOrStdout(), *output, r, r.print); err != nil {
			return err
		}
		if !r.Protects {
			return &exitError{code: 1, err: fmt.Errorf("ocigate cannot protect containers on this host (the FAIL lines above)")}
		}
		return nil
	}
	return cmd
}

// runCheck checks the host, the points and the runtimes.
func runCheck(backend, stateDir string) checkReport {
	r := checkReport{Host: preflight.Host{Root: "/"}.Check()}
	if os.Geteuid() != 0 {
		r.PointErr = "not root: the enforcement points are not probed (run check as root)"
	} else if !preflight.Failed(r.Host) {
		r.Points, r.PointErr = probePoints(backend)
	} else {
		r.PointErr = "not probed: the host fails the checks above"
	}
	r.Runtimes = foundWired(stateDir)
	r.Protects = !preflight.Failed(r.Host) && r.PointErr == ""
	return r
}

// probePoints loads the programs without pinning, notes each point's
// backend and detaches them again.
func probePoints(backend string) ([]enforcer.PointBackend, string) {
	if _, err := hostfs.EnsureAll(); err != nil {
		return nil, err.Error()
	}
	root, err := cgroupfilter.V2Mount()
	if err != nil {
		return nil, err.Error()
	}
	enf, err := enforcer.Load(enforcer.Options{CgroupRoot: root, Enforcer: backend, Logger: zap.NewNop()})
	if err != nil {
		return nil, err.Error()
	}
	defer enf.Close()
	return enf.Backends(), ""
}

// runtimeBinaries names the program whose presence says a runtime is
// installed here.
var runtimeBinaries = map[string]string{"podman": "podman", "crio": "crio", "containerd": "containerd", "docker": "dockerd"}

// searchPath is where runtimes are looked for, besides $PATH (a
// maintainer script's PATH may lack the sbin directories).
var searchPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// foundRuntimes lists the runtimes installed on this host, sorted.
func foundRuntimes() []string {
	var out []string
	for _, rt := range install.Runtimes() {
		if findBinary(runtimeBinaries[rt]) != "" {
			out = append(out, rt)
		}
	}
	return out
}

// findBinary returns the path of name in $PATH or searchPath, or "".
func findBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range searchPath {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// foundWired lists the runtimes found and whether install wired each
// (it has an install record in stateDir).
func foundWired(stateDir string) []runtimeFound {
	wired, _ := install.Installed(stateDir)
	var out []runtimeFound
	for _, rt := range foundRuntimes() {
		out = append(out, runtimeFound{Runtime: rt, Binary: findBinary(runtimeBinaries[rt]), Wired: slices.Contains(wired, rt)})
	}
	return out
}

// print writes the report for people.
func (r checkReport) print(w io.Writer) error {
	fmt.Fprintln(w, "HOST")
	for _, f := range r.Host {
		fmt.Fprintln(w, "  "+f.String())
	}
	fmt.Fprintln(w, "\nENFORCEMENT POINTS (what the agent would choose)")
	if r.PointErr != "" {
		fmt.Fprintln(w, "  FAIL  "+r.PointErr)
	}
	for _, p := range r.Points {
		if p.Error != "" {
			fmt.Fprintf(w, "  WARN  %-10s UNAVAILABLE: %s\n", p.Point, p.Error)
			continue
		}
		label := "OK"
		if p.Backend == enforcer.BackendNone {
			label = "-" // a point this kernel has no hook for, which no profile needs alone
		}
		fmt.Fprintf(w, "  %-5s %-10s %s (%s)\n", label, p.Point, p.Backend, p.Mechanism)
		for _, s := range p.Skipped {
			fmt.Fprintf(w, "        %-10s not %s\n", "", s)
		}
	}
	fmt.Fprintln(w, "\nRUNTIMES")
	if len(r.Runtimes) == 0 {
		fmt.Fprintln(w, "  WARN  none of podman, crio, containerd, dockerd found (run-job still works)")
	}
	for _, rt := range r.Runtimes {
		state := "not wired: ocigate-agentd install " + rt.Runtime
		if rt.Wired {
			state = "wired"
		}
		fmt.Fprintf(w, "  OK    %-10s %s, %s\n", rt.Runtime, rt.Binary, state)
	}
	verdict := "ocigate can protect containers on this host"
	if !r.Protects {
		verdict = "ocigate CANNOT protect containers on this host"
	}
	fmt.Fprintln(w, "\n"+verdict)
	return nil
}
