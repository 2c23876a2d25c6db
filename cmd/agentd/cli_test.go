package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// The tests' ways into the command line: each runs one command through
// the whole cobra tree, as main does.

// status runs `status args...`.
func status(args []string, out io.Writer) error {
	return execCLI(context.Background(), append([]string{"status"}, args...), out, io.Discard)
}

// eventsCmd runs `events args...`.
func eventsCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	return execCLI(ctx, append([]string{"events"}, args...), out, errOut)
}

// installCmd runs `install args...` or `uninstall args...`.
func installCmd(args []string, uninstall bool, out io.Writer) error {
	name := "install"
	if uninstall {
		name = "uninstall"
	}
	return execCLI(context.Background(), append([]string{name}, args...), out, out)
}

// uninstallBPFCmd runs `uninstall args...` (with --bpf among them).
func uninstallBPFCmd(args []string, out io.Writer) error {
	return execCLI(context.Background(), append([]string{"uninstall"}, args...), out, out)
}

// profilesCmd runs `profiles args...` and returns the exit code main
// would.
func profilesCmd(args []string, out, errOut io.Writer) (int, error) {
	err := execCLI(context.Background(), append([]string{"profiles"}, args...), out, errOut)
	var ee *exitError
	var ue *usageError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.code, ee.err
	case errors.As(err, &ue):
		return 2, err
	}
	return 1, err
}

// Flags may follow positional arguments: the example said
// `no profile "web"` because --profiles after the name was ignored.
func TestFlagsAfterArguments(t *testing.T) {
	var out, errOut bytes.Buffer
	code, err := profilesCmd([]string{"show", "reverse-shell", "--profiles", t.TempDir(), "-o", "json"}, &out, &errOut)
	if code != 0 || err != nil || !strings.Contains(out.String(), `"name": "reverse-shell"`) {
		t.Fatalf("exit %d, %v: %s", code, err, out.String())
	}
	out.Reset()
	if err := installCmd([]string{"podman", "--dry-run", "--hooks-dir", t.TempDir(), "--hook-path", "/x/ocigate-hook"}, false, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "[dry run]") {
		t.Fatalf("--dry-run after the runtime was not seen:\n%s", out.String())
	}
}

// version prints the build in each format; -o yaml keeps the JSON names.
func TestVersionCommand(t *testing.T) {
	for format, want := range map[string]string{"text": "ocigate-agentd dev commit ", "json": `"bpf_objects": "`, "yaml": "bpf_objects: "} {
		var out bytes.Buffer
		if err := execCLI(context.Background(), []string{"version", "-o", format}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), want) || strings.Contains(out.String(), "unknown\n") && format == "text" {
			t.Errorf("-o %s: %q lacks %q", format, out.String(), want)
		}
	}
	var out bytes.Buffer
	if err := execCLI(context.Background(), []string{"--version"}, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "ocigate-agentd dev") {
		t.Fatalf("--version: %v %q", err, out.String())
	}
}

// Every command has a help text with a description, and completion
// scripts are generated.
func TestHelpAndCompletion(t *testing.T) {
	root := newRootCmd(io.Discard, io.Discard)
	for _, c := range root.Commands() {
		if c.Short == "" {
			t.Errorf("%s has no short description", c.Name())
		}
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		if err := execCLI(context.Background(), []string{"completion", shell}, &out, io.Discard); err != nil || out.Len() < 1000 {
			t.Errorf("completion %s: %v, %d bytes", shell, err, out.Len())
		}
	}
	var out bytes.Buffer
	if err := execCLI(context.Background(), []string{"run", "--help"}, &out, io.Discard); err != nil ||
		!strings.Contains(out.String(), "--pin-dir") || !strings.Contains(out.String(), "--config") || !strings.Contains(out.String(), "--log-format") {
		t.Fatalf("run --help: %v\n%s", err, out.String())
	}
}

// Unknown commands and flags are usage errors (exit 2).
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"status", "--frob"}, {"status", "-o", "xml"}} {
		err := execCLI(context.Background(), args, io.Discard, io.Discard)
		var ue *usageError
		if !errors.As(err, &ue) && !strings.Contains(strings.ToLower(err.Error()), "unknown command") {
			t.Errorf("%q: %v is no usage error", args, err)
		}
	}
}
