package main

import (
	"fmt"
	"strings"
)

// runcGlobalValue are runc's global options that take a value (runc 1.1:
// --log, --log-format, --root, --criu, --rootless); the others (--debug,
// --systemd-cgroup) are booleans. runc parses options with Go's flag
// package: one or two dashes, the value after "=" or as the next
// argument.
var runcGlobalValue = map[string]bool{"log": true, "log-format": true, "root": true, "criu": true, "rootless": true}

// runcCreateValue are the options of create, run and restore that take a
// value.
var runcCreateValue = map[string]bool{
	"bundle": true, "b": true, "console-socket": true, "pid-file": true, "preserve-fds": true,
	// restore
	"image-path": true, "work-path": true, "manage-cgroups-mode": true, "empty-ns": true,
	"lsm-profile": true, "lsm-mount-context": true,
}

// creating are the subcommands that create a container from a bundle: the
// wrapper adds the hooks to the bundle's config.json before runc reads
// it.
var creating = map[string]bool{"create": true, "run": true, "restore": true}

// invocation is the wrapper's command line taken apart.
type invocation struct {
	own     map[string]string // --ocigate-NAME options, by NAME
	args    []string          // what runc gets (the --ocigate-* options removed)
	command string            // runc's subcommand ("" if none)
	bundle  string            // --bundle/-b of a creating subcommand ("" if not given)
}

// ownOptions are the wrapper's options; Docker's daemon.json passes them
// as runtimeArgs, which come before runc's subcommand.
var ownOptions = map[string]bool{"runc": true, "hook": true, "socket": true, "runtime-name": true, "poststop": true}

const ownPrefix = "ocigate-"

// flagName splits "-x", "--x" or "--x=v" into name, value and whether a
// value was attached. ok is false for a non-option ("-" or not dashed).
func flagName(arg string) (name, value string, hasValue, ok bool) {
	if len(arg) < 2 || arg[0] != '-' {
		return "", "", false, false
	}
	s := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
	if s == "" || s[0] == '-' || s[0] == '=' {
		return "", "", false, false
	}
	name, value, hasValue = strings.Cut(s, "=")
	return name, value, hasValue, true
}

// parseArgs takes the wrapper's own options out of the global options,
// finds runc's subcommand and, for create, run and restore, the bundle.
func parseArgs(args []string) (*invocation, error) {
	inv := &invocation{own: map[string]string{}}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			inv.args = append(inv.args, a)
			i++
			break
		}
		name, value, hasValue, ok := flagName(a)
		if !ok {
			break
		}
		if own, isOwn := strings.CutPrefix(name, ownPrefix); isOwn {
			if !ownOptions[own] {
				return nil, fmt.Errorf("unknown option %q (want --ocigate-runc, --ocigate-hook, --ocigate-socket, --ocigate-runtime-name or --ocigate-poststop)", a)
			}
			if !hasValue {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("option %s needs a value", a)
				}
				i++
				value = args[i]
			}
			inv.own[own] = value
			continue
		}
		inv.args = append(inv.args, a)
		if runcGlobalValue[name] && !hasValue && i+1 < len(args) {
			i++
			inv.args = append(inv.args, args[i])
		}
	}
	if i >= len(args) {
		return inv, nil
	}
	inv.command = args[i]
	inv.args = append(inv.args, args[i:]...)
	if creating[inv.command] {
		inv.bundle = findBundle(args[i+1:])
	}
	return inv, nil
}

// findBundle returns the --bundle/-b value among a subcommand's options,
// which end at the first non-option (the container ID) or "--".
func findBundle(args []string) string {
	bundle := ""
	for i := 0; i < len(args); i++ {
		name, value, hasValue, ok := flagName(args[i])
		if !ok || args[i] == "--" {
			break
		}
		if !runcCreateValue[name] || hasValue {
			if name == "bundle" || name == "b" {
				bundle = value
			}
			continue
		}
		if i+1 >= len(args) {
			break
		}
		i++
		if name == "bundle" || name == "b" {
			bundle = args[i]
		}
	}
	return bundle
}
