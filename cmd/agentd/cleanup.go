package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/workloadstate"
)

// wantsBPF reports whether uninstall's arguments ask for --bpf.
func wantsBPF(args []string) bool {
	for _, a := range args {
		switch a {
		case "--bpf", "-bpf", "--bpf=true", "-bpf=true":
			return true
		}
	}
	return false
}

// uninstallBPF removes on purpose what a pinning agent leaves behind: the
// pinned links (their programs detach: pinned workloads are no longer
// enforced), maps and workload records. It refuses while an agent
// answers on the socket or holds the pin directory.
func uninstallBPF(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("uninstall --bpf", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Bool("bpf", true, "remove the pinned BPF programs, maps and workload records")
	pinDir := fs.String("pin-dir", enforcer.DefaultPinDir, "the agent's --pin-dir")
	stateDir := fs.String("state-dir", workloadstate.DefaultDir, "the agent's --state-dir")
	socket := fs.String("socket", api.DefaultSocket, "the agent's socket: nothing is removed while an agent answers there")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *pinDir == "" {
		return fmt.Errorf("--pin-dir is empty")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := api.Call(ctx, *socket, &api.Request{Op: api.OpStatus, Status: &api.StatusOptions{Summary: true}}); err == nil {
		return fmt.Errorf("an agent is running on %s: stop it first", *socket)
	}
	removed, err := enforcer.RemovePins(*pinDir)
	if err != nil {
		return err
	}
	records, err := workloadstate.RemoveAll(*stateDir)
	if err != nil {
		return err
	}
	if len(removed) == 0 && records == 0 {
		fmt.Fprintf(out, "nothing pinned in %s, no workload records in %s\n", *pinDir, *stateDir)
		return nil
	}
	fmt.Fprintf(out, "unpinned %d BPF objects from %s (the workloads they enforced are no longer enforced); removed %d workload records from %s\n",
		len(removed), *pinDir, records, *stateDir)
	return nil
}
