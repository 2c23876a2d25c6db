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

// installCmd runs `install RUNTIME` (uninstall false) or `uninstall RUNTIME`.
func installCmd(args []string, uninstall bool, out io.Writer) error {
	name := "install"
	if uninstall {
		name = "uninstall"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	dryRun := fs.Bool("dry-run", false, "print what would change, write nothing")
	hookPath := fs.String("hook-path", "", "absolute path of ocigate-hook (default: beside this binary)")
	socket := fs.String("socket", "", "agent socket the hook dials (default: the hook's, "+api.DefaultSocket+")")
	failOpen := fs.Bool("fail-open", false, "podman, crio, containerd: let containers start unprotected when the agent is unreachable")
	noPoststop := fs.Bool("no-poststop", false, "podman, crio, containerd, docker: createRuntime hook only; the agent drops stopped containers itself (periodic check, runtime events)")
	hooksDir := fs.String("hooks-dir", "", "podman, crio: hooks.d directory (default "+install.DefaultHooksDir+")")
	config := fs.String("config", "", "containerd: config.toml (default "+install.DefaultContainerdConfig+"); docker: daemon.json (default "+install.DefaultDockerConfig+")")
	specFile := fs.String("spec-file", "", "containerd: where to write the base runtime spec (default "+install.DefaultSpecFile+")")
	ctrSpec := fs.Bool("ctr-spec", false, "containerd: print the runtime spec with ocigate's hooks (for ctr run --config) and change nothing")
	wrapper := fs.String("wrapper-path", "", "docker: absolute path of ocigate-runc (default: beside this binary)")
	runc := fs.String("runc", "", "docker: the real runc the wrapper runs (default: the wrapper's search)")
	stateDir := fs.String("state-dir", install.DefaultStateDir, "where install keeps the original bytes of the files it edits")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: ocigate-agentd %s %s [flags]\n", name, strings.Join(install.Runtimes(), "|"))
		fs.PrintDefaults()
	}
	runtime := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		runtime, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if runtime == "" && fs.NArg() > 0 {
		runtime = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if runtime == "" {
		fs.Usage()
		return fmt.Errorf("want a runtime: %s", strings.Join(install.Runtimes(), ", "))
	}
	dir, err := selfDir()
	if err != nil {
		return err
	}
	o := install.Options{HookPath: *hookPath, Socket: *socket, FailOpen: *failOpen, NoPoststop: *noPoststop, HooksDir: *hooksDir, Config: *config,
		SpecFile: *specFile, WrapperPath: *wrapper, RuncPath: *runc, StateDir: *stateDir}
	// Paths end up in other programs' configs and in the install record:
	// make them absolute.
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
	if *ctrSpec {
		if runtime != "containerd" || uninstall {
			return fmt.Errorf("--ctr-spec is for install containerd")
		}
		b, err := install.ContainerdSpec(o)
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
	plan, err := install.Install(runtime, o)
	if uninstall {
		plan, err = install.Uninstall(runtime, o)
	}
	if err != nil {
		return err
	}
	plan.Print(out, *dryRun)
	if *dryRun || !plan.Changed() && !plan.Install {
		return nil
	}
	return plan.Apply()
}

func selfDir() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate this binary: %w", err)
	}
	return filepath.Dir(self), nil
}
