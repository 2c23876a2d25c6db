package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// exitError ends a command with code; err, when set, is printed first.
type exitError struct {
	code int
	err  error
}

// Error says the code and the error.
func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

// Unwrap returns the error.
func (e *exitError) Unwrap() error { return e.err }

// usageError is a command line that cobra or a command refused: exit 2.
type usageError struct{ err error }

// Error is the refusal.
func (e *usageError) Error() string { return e.err.Error() }

// Unwrap returns the refusal.
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

const rootLong = `ocigate-agentd is ocigate's node agent and its command line.

The agent (ocigate-agentd run) loads ocigate's BPF programs, answers the
OCI hook (ocigate-hook) that registers each container at createRuntime,
and enforces each container's workload profile in the kernel; the other
commands ask it for its state and events, wire the hook into the
container runtimes, and check a host before install.

Flags may come before or after arguments. Every command that prints
takes -o (text, json or yaml; events: json, yaml or compact).

FILES
  /etc/ocigate/agentd.yaml    run's configuration (run --config)
  /etc/ocigate/profiles/      WorkloadProfiles and TracingPolicies
  /run/ocigate/agentd.sock    the agent's API socket (root only)
  /sys/fs/bpf/ocigate/        enforcement pinned across agent restarts
  /var/lib/ocigate/install/   what install changed, for uninstall

EXIT STATUS
  0 success; 1 failure; 2 a command line that is not understood.
  check: 1 when ocigate cannot protect containers on this host.`

// newRootCmd returns ocigate-agentd's command tree printing to out and
// errOut.
func newRootCmd(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "ocigate-agentd",
		Short:         "ocigate's node agent: enforce per-container profiles against reverse shells",
		Long:          rootLong,
		Version:       agentInfo().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetVersionTemplate("ocigate-agentd {{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%s: %w (see %s --help)", c.CommandPath(), err, c.CommandPath())}
	})
	root.AddCommand(newRunCmd(), newStatusCmd(), newEventsCmd(), newHooksCmd(),
		newInstallCmd(false), newInstallCmd(true), newRunJobCmd(), newProfilesCmd(),
		newVersionCmd(), newCheckCmd())
	return root
}

// execCLI runs the command line args (without the program name).
func execCLI(ctx context.Context, args []string, out, errOut io.Writer) error {
	root := newRootCmd(out, errOut)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// noArgs refuses positional arguments, naming them.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	return nil
}

// minArgs refuses fewer than n positional arguments.
func minArgs(n int, what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("%s: want %s", c.CommandPath(), what)
		}
		return nil
	}
}

// outputs lists the formats a command's -o takes, the default first.
type outputs []string

// add defines -o on cmd and returns where its value goes.
func (o outputs) add(cmd *cobra.Command) *string {
	return cmd.Flags().StringP("output", "o", o[0], "output format: "+strings.Join(o, ", "))
}

// check refuses a format not listed.
func (o outputs) check(format string) error {
	if !slices.Contains(o, format) {
		return usagef("-o %q: want %s", format, strings.Join(o, " or "))
	}
	return nil
}

// printData prints v as format: json (indented), yaml (the JSON's field
// names and order), or text, which text prints.
func printData(out io.Writer, format string, v any, text func(io.Writer) error) error {
	switch format {
	case "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		y, err := jsonToYAML(b)
		if err != nil {
			return err
		}
		_, err = out.Write(y)
		return err
	}
	return text(out)
}

// jsonToYAML turns a JSON document into block-style YAML with the same
// keys in the same order.
func jsonToYAML(b []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	blockStyle(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return buf.Bytes(), errors.Join(enc.Close())
}

// blockStyle turns JSON's flow style off throughout n.
func blockStyle(n *yaml.Node) {
	n.Style &^= yaml.FlowStyle | yaml.DoubleQuotedStyle
	for _, c := range n.Content {
		blockStyle(c)
	}
}
