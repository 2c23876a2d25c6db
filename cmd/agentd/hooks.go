package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/atomicfile"
	"github.com/ocigate/ocigate/runtime/hooksd"
)

const hooksLong = `Print the hooks.d JSON files (podman, CRI-O) that run this agent's hook
at createRuntime and poststop, or write them into --dir. install podman
and install crio write them for you and record what they changed.`

// newHooksCmd returns `hooks`.
func newHooksCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "hooks", Short: "print the hooks.d JSON (podman, CRI-O) for this agent's hook", Long: hooksLong, Args: noArgs}
	fl := cmd.Flags()
	hookPath := fl.String("hook-path", "", "absolute path of ocigate-hook (default: beside this binary)")
	socket := fl.String("socket", api.DefaultSocket, "agent socket the hook dials")
	dir := fl.String("dir", "", "write the files into this hooks.d directory instead of printing them")
	failOpen := fl.Bool("fail-open", false, "let containers start unprotected when the agent is unreachable")
	allowAnnotation := fl.Bool("allow-fail-open-annotation", false,
		"when the agent is unreachable, let a container whose annotation says ocigate.io/failure-policy: open start unprotected")
	noPoststop := fl.Bool("no-poststop", false, "createRuntime only: the agent drops stopped containers itself (one hook exec less per container)")
	var g gateFlags
	g.add(fl)
	formats := outputs{"json", "yaml"}
	output := formats.add(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := formats.check(*output); err != nil {
			return err
		}
		if *hookPath == "" {
			dir, err := selfDir()
			if err != nil {
				return err
			}
			*hookPath = filepath.Join(dir, "ocigate-hook")
		}
		o := hooksd.Options{HookPath: *hookPath, Socket: *socket, NoPoststop: *noPoststop}
		if *failOpen {
			o.Extra = append(o.Extra, "--fail-open")
		}
		if *allowAnnotation {
			o.Extra = append(o.Extra, "--allow-fail-open-annotation")
		}
		if err := g.apply(&o, *dir, cmd.OutOrStdout()); err != nil {
			return err
		}
		return writeHooks(cmd.OutOrStdout(), o, *dir, *output)
	}
	return cmd
}

// writeHooks writes the hooks.d files of o into dir, or prints them as
// format when dir is "".
func writeHooks(out io.Writer, o hooksd.Options, dir, format string) error {
	if dir != "" {
		written, err := hooksd.Write(dir, o)
		for _, p := range written {
			fmt.Fprintln(out, "wrote", p)
		}
		return err
	}
	files, err := hooksd.Files(o)
	if err != nil {
		return err
	}
	for _, n := range slices.Sorted(maps.Keys(files)) {
		b := files[n]
		if format == "yaml" {
			if b, err = jsonToYAML(b); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "# %s\n%s", n, b)
	}
	return nil
}

// gateFlags are hooks' flags for a Kubernetes node (the chart's CRI-O
// init container): the hook as the node's gate, and a copy of the hook
// binary put on the host first.
type gateFlags struct {
	nriGate            bool
	exempt, exemptFile string
	copyFrom           string
}

func (g *gateFlags) add(fl *pflag.FlagSet) {
	fl.BoolVar(&g.nriGate, "nri-gate", false, "the hook as a Kubernetes node's gate (ocigate-hook --nri-gate): pods of "+
		"--exempt-namespaces start while no agent listens, every other is refused (docs/kubernetes.md)")
	fl.StringVar(&g.exempt, "exempt-namespaces", "", "with --nri-gate: comma-separated namespaces whose pods start while no agent listens")
	fl.StringVar(&g.exemptFile, "exempt-file", "", "with --nri-gate: file of more such namespaces (ocigate-kube --exempt-file)")
	fl.StringVar(&g.copyFrom, "copy-hook-from", "", "first copy this ocigate-hook to --hook-path, replacing it by rename (with --dir)")
}

// apply adds the gate's flags to o and copies the hook binary.
func (g *gateFlags) apply(o *hooksd.Options, dir string, out io.Writer) error {
	if !g.nriGate && (g.exempt != "" || g.exemptFile != "") {
		return usagef("--exempt-namespaces and --exempt-file are the gate's: they need --nri-gate")
	}
	if g.nriGate {
		o.Extra = append(o.Extra, "--nri-gate")
		if g.exempt != "" {
			o.Extra = append(o.Extra, "--exempt-namespaces="+g.exempt)
		}
		if g.exemptFile != "" {
			o.Extra = append(o.Extra, "--exempt-file="+g.exemptFile)
		}
	}
	if g.copyFrom == "" {
		return nil
	}
	if dir == "" {
		return usagef("--copy-hook-from writes the hook: it needs --dir")
	}
	b, err := os.ReadFile(g.copyFrom)
	if err != nil {
		return fmt.Errorf("copy the hook: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(o.HookPath), 0o755); err != nil {
		return fmt.Errorf("copy the hook: %w", err)
	}
	if err := atomicfile.Write(o.HookPath, b, 0o755); err != nil {
		return fmt.Errorf("copy the hook: %w", err)
	}
	fmt.Fprintln(out, "wrote", o.HookPath)
	return nil
}
