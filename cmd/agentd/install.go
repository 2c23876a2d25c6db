package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/runtime/install"
)

// installFlags is the command line of install and uninstall.
type installFlags struct {
	runtime         string
	opts            install.Options
	dryRun, ctrSpec bool
}

// installCmd runs `install RUNTIME` (uninstall false) or `uninstall RUNTIME`.
func installCmd(args []string, uninstall bool, out io.Writer) error {
	f, err := parseInstallFlags(args, uninstall, out)
	if err != nil {
		return err
	}
	if err := completePaths(&f.opts); err != nil {
		return err
	}
	if f.ctrSpec {
		if f.runtime != "containerd" || uninstall {
			return fmt.Errorf("--ctr-spec is for install containerd")
		}
		b, err := install.ContainerdSpec(f.opts)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	plan, err := install.Install(f.runtime, f.opts)
	if uninstall {
		plan, err = install.Uninstall(f.runtime, f.opts)
	}
	if err != nil {
		return err
	}
	plan.Print(out, f.dryRun)
	if f.dryRun || !plan.Changed() && !plan.Install {
		return nil
	}
	return plan.Apply()
}

// parseInstallFlags reads `[un]install RUNTIME [flags]`; the runtime may
// also follow the flags.
func parseInstallFlags(args []string, uninstall bool, out io.Writer) (installFlags, error) {
	name := "install"
	if uninstall {
		name = "uninstall"
	}
	var f installFlags
	o := &f.opts
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.BoolVar(&f.dryRun, "dry-run", false, "print what would change, write nothing")
	fs.StringVar(&o.HookPath, "hook-path", "", "absolute path of ocigate-hook (default: beside this binary)")
	fs.StringVar(&o.Socket, "socket", "", "agent socket the hook dials (default: the hook's, "+api.DefaultSocket+")")
	fs.BoolVar(&o.FailOpen, "fail-open", false, "podman, crio, containerd: let containers start unprotected when the agent is unreachable")
	fs.BoolVar(&o.AllowFailOpenAnnotation, "allow-fail-open-annotation", false,
		"podman, crio, containerd: when the agent is unreachable, let a container whose annotation says ocigate.io/failure-policy: open start unprotected (docs/trust.md)")
	fs.BoolVar(&o.NoPoststop, "no-poststop", false, "podman, crio, containerd, docker: createRuntime hook only; the agent drops stopped containers itself (periodic check, runtime events)")
	fs.StringVar(&o.HooksDir, "hooks-dir", "", "podman, crio: hooks.d directory (default "+install.DefaultHooksDir+")")
	fs.StringVar(&o.Config, "config", "", "containerd: config.toml (default "+install.DefaultContainerdConfig+"); docker: daemon.json (default "+install.DefaultDockerConfig+")")
	fs.StringVar(&o.SpecFile, "spec-file", "", "containerd: where to write the base runtime spec (default "+install.DefaultSpecFile+")")
	fs.BoolVar(&f.ctrSpec, "ctr-spec", false, "containerd: print the runtime spec with ocigate's hooks (for ctr run --config) and change nothing")
	fs.StringVar(&o.WrapperPath, "wrapper-path", "", "docker: absolute path of ocigate-runc (default: beside this binary)")
	fs.StringVar(&o.RuncPath, "runc", "", "docker: the real runc the wrapper runs (default: the wrapper's search)")
	fs.StringVar(&o.StateDir, "state-dir", install.DefaultStateDir, "where install keeps the original bytes of the files it edits")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: ocigate-agentd %s %s [flags]\n", name, strings.Join(install.Runtimes(), "|"))
		fs.PrintDefaults()
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		f.runtime, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.runtime == "" && fs.NArg() > 0 {
		f.runtime = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f.runtime == "" {
		fs.Usage()
		return f, fmt.Errorf("want a runtime: %s", strings.Join(install.Runtimes(), ", "))
	}
	return f, nil
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
