// Command ocigate-agentd is the ocigate node agent and its CLI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ocigate/ocigate/runtime/job"
)

const usage = `usage: ocigate-agentd COMMAND [flags]

commands:
  run      load the BPF programs, listen for hooks, enforce and report
  status   show backends, workloads and counters of the running agent
           [--wait DURATION] [--timeout DURATION] [--summary] [-o text|json]
           --wait: until an agent is ready (answers) or DURATION passed
  events   print the running agent's recent events; --follow streams new ones
           [--follow] [--container ID] [--type T] [--policy P] [--tail N] [-o json|compact]
  hooks    print the hooks.d JSON (podman, CRI-O) for this agent's hook
  install RUNTIME [--dry-run]     wire the hook into podman, crio, containerd or docker
  uninstall RUNTIME [--dry-run]   undo install (byte for byte where nothing else changed)
  uninstall --bpf [--pin-dir DIR] [--state-dir DIR]   remove the pinned BPF programs and maps
           (enforcement that outlived the agent ends) and the workload records
  run-job [--profile NAME] -- COMMAND...   run a command in its own enforced cgroup
  profiles check FILE...   validate profiles and policies (no agent needed)
  profiles show [NAME]     print compiled profiles (built-ins plus --profiles DIR)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runAgent(os.Args[2:], os.Stderr)
	case "status":
		err = status(os.Args[2:], os.Stdout)
	case "events":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		err = eventsCmd(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
	case "hooks":
		err = hooks(os.Args[2:], os.Stdout)
	case "run-job":
		os.Exit(runJob(os.Args[2:], os.Stderr))
	case childCommand:
		os.Exit(job.Child(os.Args[2:], os.Stderr))
	case "install", "uninstall":
		if os.Args[1] == "uninstall" && wantsBPF(os.Args[2:]) {
			err = uninstallBPF(os.Args[2:], os.Stdout)
			break
		}
		err = installCmd(os.Args[2:], os.Args[1] == "uninstall", os.Stdout)
	case "profiles":
		var code int
		code, err = profilesCmd(os.Args[2:], os.Stdout, os.Stderr)
		if err == nil && code != 0 {
			os.Exit(code)
		}
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "ocigate-agentd: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return // the command printed its usage
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ocigate-agentd %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
