package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/runtime/install"
)

// installFlags is the command line of install and uninstall.
type installFlags struct {
	opts            install.Options
	dryRun, ctrSpec bool
	// every: install into each runtime found here (--found), uninstall
	// each one with an install record (--all).
	every  bool
	output *string
	bpf    bpfFlags // uninstall --bpf
}

const installLong = `Wire ocigate's hook into a container runtime: podman and crio get
hooks.d files, containerd a base runtime spec for CRI, docker the
ocigate-runc runtime. Each change is printed (--dry-run: printed, not
made); the original bytes of every file edited are recorded in
--state-dir, so that uninstall puts each file back byte for byte where
nothing else changed it. Installing twice changes nothing.

--found installs into every runtime found on this host (what the Debian
package's postinst runs); check shows which those are.`

const uninstallLong = `Take ocigate's hook out of a container runtime, restoring each file
install changed byte for byte where nothing else changed it since
(--all: every runtime with an install record, what the Debian package's
prerm runs). Uninstalling twice changes nothing.

--bpf instead removes the pinned BPF programs and maps that keep
enforcing after the agent stops, and the workload records: enforcement
ends. It refuses while an agent answers on --socket or holds --pin-dir.`

// newInstallCmd returns `install` (uninstall false) or `uninstall`.
func newInstallCmd(uninstall bool) *cobra.Command {
	cmd := &cobra.Command{Use: "install RUNTIME|--found", Short: "wire the hook into podman, crio, containerd or docker", Long: installLong,
		Example: "  ocigate-agentd install podman --dry-run\n  ocigate-agentd install --found", ValidArgs: install.Runtimes()}
	if uninstall {
		cmd.Use, cmd.Short, cmd.Long = "uninstall RUNTIME|--all|--bpf", "undo install, or remove the pinned BPF enforcement (--bpf)", uninstallLong
		cmd.Example = "  ocigate-agentd uninstall podman\n  ocigate-agentd uninstall --all\n  ocigate-agentd uninstall --bpf"
	}
	f := addInstallFlags(cmd, uninstall)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		out := cmd.OutOrStdout()
		if uninstall && f.bpf.on {
			return f.bpf.run(cmd, args, out)
		}
		runtimes, err := installTargets(args, f.every, uninstall, f.opts.StateDir)
		if err != nil {
			return err
		}
		if err := (outputs{"text", "json", "yaml"}).check(*f.output); err != nil {
			return err
		}
		if !f.opts.NRIGate && (f.opts.ExemptNamespaces != "" || f.opts.ExemptFile != "") {
			return usagef("--exempt-namespaces and --exempt-file are the gate's: they need --nri-gate")
		}
		if err := completePaths(&f.opts); err != nil {
			return err
		}
		if f.ctrSpec {
			return printCtrSpec(out, runtimes, uninstall, f.opts)
		}
		var plans []planSummary
		for _, rt := range runtimes {
			s, err := applyInstall(out, rt, uninstall, f, *f.output == "text")
			if err != nil {
				return err
			}
			plans = append(plans, s)
		}
		return printData(out, *f.output, plans, func(io.Writer) error { return nil })
	}
	return cmd
}

// addInstallFlags defines install's (or uninstall's) flags on cmd.
func addInstallFlags(cmd *cobra.Command, uninstall bool) *installFlags {
	f := &installFlags{}
	o := &f.opts
	fl := cmd.Flags()
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would change, write nothing")
	fl.StringVar(&o.HookPath, "hook-path", "", "absolute path of ocigate-hook (default: beside this binary)")
	fl.StringVar(&o.Socket, "socket", "", "agent socket the hook dials (default: the hook's, "+api.DefaultSocket+")")
	fl.BoolVar(&o.FailOpen, "fail-open", false, "podman, crio, containerd: let containers start unprotected when the agent is unreachable")
	fl.BoolVar(&o.AllowFailOpenAnnotation, "allow-fail-open-annotation", false,
		"podman, crio, containerd: when the agent is unreachable, let a container whose annotation says ocigate.io/failure-policy: open start unprotected (docs/trust.md)")
	fl.BoolVar(&o.NoPoststop, "no-poststop", false, "podman, crio, containerd, docker: createRuntime hook only; the agent drops stopped containers itself (periodic check, runtime events)")
	fl.BoolVar(&o.NRIGate, "nri-gate", false, "containerd, crio: the hook as the gate of an agent running as an NRI plugin "+
		"(createRuntime only; pods of --exempt-namespaces start while no agent listens, docs/kubernetes.md)")
	fl.StringVar(&o.ExemptNamespaces, "exempt-namespaces", "", "with --nri-gate: comma-separated namespaces whose pods start while no agent listens")
	fl.StringVar(&o.ExemptFile, "exempt-file", "", "with --nri-gate: file of more such namespaces (the chart's ocigate-kube writes HOST_RUN_DIR/exempt-namespaces)")
	fl.StringVar(&o.HooksDir, "hooks-dir", "", "podman, crio: hooks.d directory (default "+install.DefaultHooksDir+")")
	fl.StringVar(&o.Config, "config", "", "containerd: config.toml (default "+install.DefaultContainerdConfig+"); docker: daemon.json (default "+install.DefaultDockerConfig+")")
	fl.StringVar(&o.SpecFile, "spec-file", "", "containerd: where to write the base runtime spec (default "+install.DefaultSpecFile+")")
	fl.BoolVar(&f.ctrSpec, "ctr-spec", false, "containerd: print the runtime spec with ocigate's hooks (for ctr run --config) and change nothing")
	fl.StringVar(&o.WrapperPath, "wrapper-path", "", "docker: absolute path of ocigate-runc (default: beside this binary)")
	fl.StringVar(&o.RuncPath, "runc", "", "docker: the real runc the wrapper runs (default: the wrapper's search)")
	fl.StringVar(&o.StateDir, "state-dir", install.DefaultStateDir, "where install keeps the original bytes of the files it edits (uninstall --bpf: the agent's --state-dir)")
	f.output = outputs{"text", "json", "yaml"}.add(cmd)
	if uninstall {
		fl.BoolVar(&f.every, "all", false, "every runtime with an install record in --state-dir")
		f.bpf.add(cmd)
	} else {
		fl.BoolVar(&f.every, "found", false, "every runtime found on this host (check lists them)")
	}
	return f
}

// installTargets returns the runtimes a command line names: its one
// argument, or with every those found (install) or recorded (uninstall).
func installTargets(args []string, every, uninstall bool, stateDir string) ([]string, error) {
	switch {
	case every && len(args) > 0:
		return nil, usagef("a runtime %q and --found/--all: want one or the other", args[0])
	case every && uninstall:
		return install.Installed(stateDir)
	case every:
		return foundRuntimes(), nil
	case len(args) == 0:
		return nil, usagef("want a runtime: %s", strings.Join(install.Runtimes(), ", "))
	case len(args) > 1:
		return nil, usagef("unexpected arguments %q", args[1:])
	}
	return args[:1], nil
}

// printCtrSpec prints containerd's runtime spec with ocigate's hooks.
func printCtrSpec(out io.Writer, runtimes []string, uninstall bool, o install.Options) error {
	if len(runtimes) != 1 || runtimes[0] != "containerd" || uninstall {
		return usagef("--ctr-spec is for install containerd")
	}
	b, err := install.ContainerdSpec(o)
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

// planSummary is one runtime's plan as -o json and yaml print it.
type planSummary struct {
	Runtime string          `json:"runtime"`
	Action  string          `json:"action"`
	DryRun  bool            `json:"dry_run,omitempty"`
	Changed bool            `json:"changed"`
	Changes []changeSummary `json:"changes"`
	Notes   []string        `json:"notes,omitempty"`
}

// changeSummary is one file of a planSummary.
type changeSummary struct {
	Path   string `json:"path"`
	Action string `json:"action"`
	Note   string `json:"note,omitempty"`
}

// applyInstall plans (un)installing runtime, prints the plan when text
// says so, and applies it unless --dry-run.
func applyInstall(out io.Writer, runtime string, uninstall bool, f *installFlags, text bool) (planSummary, error) {
	plan, err := install.Install(runtime, f.opts)
	if uninstall {
		plan, err = install.Uninstall(runtime, f.opts)
	}
	if err != nil {
		return planSummary{}, err
	}
	if text {
		plan.Print(out, f.dryRun)
	}
	s := planSummary{Runtime: runtime, Action: "install", DryRun: f.dryRun, Changed: plan.Changed(), Notes: plan.Notes}
	if uninstall {
		s.Action = "uninstall"
	}
	for _, c := range plan.Changes {
		s.Changes = append(s.Changes, changeSummary{Path: c.Path, Action: c.Action, Note: c.Note})
	}
	if f.dryRun || !plan.Changed() && !plan.Install {
		return s, nil
	}
	return s, plan.Apply()
}

// completePaths makes o's paths absolute — they end up in other programs'
// configs and in the install record — and puts the hook and the wrapper
// beside this binary unless given.
func completePaths(o *install.Options) error {
	dir, err := selfDir()
	if err != nil {
		return err
	}
	for _, p := range []*string{&o.HooksDir, &o.Config, &o.SpecFile, &o.StateDir} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return fmt.Errorf("path %q: %w", *p, err)
			}
		}
	}
	if o.HookPath == "" {
		o.HookPath = filepath.Join(dir, "ocigate-hook")
	}
	if o.WrapperPath == "" {
		o.WrapperPath = filepath.Join(dir, "ocigate-runc")
	}
	return nil
}

// selfDir is the directory of this binary.
func selfDir() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate this binary: %w", err)
	}
	return filepath.Dir(self), nil
}
