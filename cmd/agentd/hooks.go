package main

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ocigate/ocigate/internal/api"
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
