// Command ocigate-runc is a runc-compatible runtime wrapper for Docker,
// which has no setting for OCI hooks. Registered as a runtime in
// /etc/docker/daemon.json ("runtimes": {"ocigate": {"path": ".../ocigate-runc"}}),
// it adds ocigate's createRuntime and poststop hooks to the bundle's
// config.json on create, run and restore, then execs the real runc with
// the same arguments. Every other call goes to runc unchanged.
//
// Its own options come before runc's subcommand (Docker passes a runtime's
// runtimeArgs there) and are not passed on:
//
//	--ocigate-runc=PATH          the real runc (default: the first of /usr/bin/runc, /usr/sbin/runc, /usr/local/bin/runc, /usr/local/sbin/runc)
//	--ocigate-hook=PATH          ocigate-hook (default: beside this binary)
//	--ocigate-socket=PATH        the agent socket the hook dials (default: the hook's)
//	--ocigate-runtime-name=NAME  the runtime name the hook reports (default docker; empty: the hook detects it)
//
// When the config cannot be changed the wrapper exits 1 without running
// runc, so the container does not start unprotected.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ocigate/ocigate/runtime/hooksd"
	"github.com/ocigate/ocigate/runtime/spechooks"
)

// runcCandidates are tried in order when --ocigate-runc is not given.
var runcCandidates = []string{"/usr/bin/runc", "/usr/sbin/runc", "/usr/local/bin/runc", "/usr/local/sbin/runc"}

const defaultRuntimeName = "docker"

func main() {
	path, argv, err := prepare(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "ocigate-runc: %v\n", err)
		os.Exit(1)
	}
	err = syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "ocigate-runc: exec %s: %v\n", path, err)
	os.Exit(1)
}

// prepare parses the command line, adds the hooks to the bundle of a
// creating subcommand and returns what to exec.
func prepare(args []string) (string, []string, error) {
	inv, err := parseArgs(args)
	if err != nil {
		return "", nil, err
	}
	runc, err := findRunc(inv.own["runc"])
	if err != nil {
		return "", nil, err
	}
	argv := append([]string{"runc"}, inv.args...)
	if inv.command == "" || !creating[inv.command] {
		return runc, argv, nil
	}
	o, err := hookOptions(inv.own)
	if err != nil {
		return "", nil, err
	}
	bundle := inv.bundle
	if bundle == "" {
		bundle = "." // runc's default: the current directory
	}
	if err := addHooks(filepath.Join(bundle, "config.json"), o); err != nil {
		return "", nil, fmt.Errorf("%s: container not started: %w", inv.command, err)
	}
	return runc, argv, nil
}

// findRunc returns the real runc, refusing this wrapper itself.
func findRunc(flag string) (string, error) {
	candidates := runcCandidates
	if flag != "" {
		candidates = []string{flag}
	}
	self, selfErr := os.Stat("/proc/self/exe")
	for _, c := range candidates {
		fi, err := os.Stat(c)
		if err != nil {
			if flag != "" {
				return "", fmt.Errorf("--ocigate-runc: %w", err)
			}
			continue
		}
		if selfErr == nil && os.SameFile(fi, self) {
			return "", fmt.Errorf("runc at %s is this wrapper: give the real runc with --ocigate-runc", c)
		}
		return c, nil
	}
	return "", fmt.Errorf("no runc found at %v: give its path with --ocigate-runc", candidates)
}

func hookOptions(own map[string]string) (hooksd.Options, error) {
	o := hooksd.Options{HookPath: own["hook"], Socket: own["socket"], NoPoststop: own["poststop"] == "false"}
	if o.HookPath == "" {
		self, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("locate this binary to find ocigate-hook beside it: %w", err)
		}
		o.HookPath = filepath.Join(filepath.Dir(self), "ocigate-hook")
	}
	name, set := own["runtime-name"]
	if !set {
		name = defaultRuntimeName
	}
	if name != "" {
		o.Extra = []string{"--runtime", name}
	}
	return o, nil
}

// addHooks rewrites config.json with the hooks, unless it has them. The
// new file replaces the old one by rename, with the same mode.
func addHooks(path string, o hooksd.Options) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("bundle config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("bundle config %s is not a regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("bundle config: %w", err)
	}
	out, changed, err := spechooks.Add(b, o)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config.json.ocigate-*")
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	_, werr := tmp.Write(out)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), fi.Mode().Perm())); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	return nil
}
