package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/runtime/hooksd"
)

func hooks(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("hooks", flag.ContinueOnError)
	hookPath := fs.String("hook-path", "", "absolute path of ocigate-hook (default: beside this binary)")
	socket := fs.String("socket", api.DefaultSocket, "agent socket the hook dials")
	dir := fs.String("dir", "", "write the files into this hooks.d directory instead of printing them")
	failOpen := fs.Bool("fail-open", false, "let containers start unprotected when the agent is unreachable")
	allowAnnotation := fs.Bool("allow-fail-open-annotation", false,
		"when the agent is unreachable, let a container whose annotation says ocigate.io/failure-policy: open start unprotected")
	noPoststop := fs.Bool("no-poststop", false, "createRuntime only: the agent drops stopped containers itself (one hook exec less per container)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *hookPath == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("locate this binary: %w", err)
		}
		*hookPath = filepath.Join(filepath.Dir(self), "ocigate-hook")
	}
	o := hooksd.Options{HookPath: *hookPath, Socket: *socket, NoPoststop: *noPoststop}
	if *failOpen {
		o.Extra = append(o.Extra, "--fail-open")
	}
	if *allowAnnotation {
		o.Extra = append(o.Extra, "--allow-fail-open-annotation")
	}
	if *dir != "" {
		written, err := hooksd.Write(*dir, o)
		for _, p := range written {
			fmt.Fprintln(out, "wrote", p)
		}
		return err
	}
	files, err := hooksd.Files(o)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(out, "# %s\n%s", n, files[n])
	}
	return nil
}
