package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/workloadstate"
)

// bpfFlags are uninstall --bpf's own flags; it shares --socket and
// --state-dir with uninstall, with the agent's defaults.
type bpfFlags struct {
	on     bool
	pinDir *string
}

// add defines --bpf and --pin-dir on cmd.
func (b *bpfFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&b.on, "bpf", false, "remove the pinned BPF programs, maps and workload records (enforcement that outlived the agent ends)")
	b.pinDir = cmd.Flags().String("pin-dir", enforcer.DefaultPinDir, "with --bpf: the agent's --pin-dir")
}

// run runs uninstall --bpf with cmd's flags.
func (b *bpfFlags) run(cmd *cobra.Command, args []string, out io.Writer) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	stateDir, socket := workloadstate.DefaultDir, api.DefaultSocket
	if f := cmd.Flags().Lookup("state-dir"); f.Changed {
		stateDir = f.Value.String()
	}
	if f := cmd.Flags().Lookup("socket"); f.Changed {
		socket = f.Value.String()
	}
	return uninstallBPF(*b.pinDir, stateDir, socket, out)
}

// uninstallBPF removes on purpose what a pinning agent leaves behind: the
// pinned links (their programs detach: pinned workloads are no longer
// enforced), maps and workload records. It refuses while an agent
// answers on the socket or holds the pin directory.
func uninstallBPF(pinDir, stateDir, socket string, out io.Writer) error {
	if pinDir == "" {
		return fmt.Errorf("--pin-dir is empty")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := api.Call(ctx, socket, &api.Request{Op: api.OpStatus, Status: &api.StatusOptions{Summary: true}}); err == nil {
		return fmt.Errorf("an agent is running on %s: stop it first", socket)
	}
	removed, err := enforcer.RemovePins(pinDir)
	if err != nil {
		return err
	}
	records, err := workloadstate.RemoveAll(stateDir)
	if err != nil {
		return err
	}
	if len(removed) == 0 && records == 0 {
		fmt.Fprintf(out, "nothing pinned in %s, no workload records in %s\n", pinDir, stateDir)
		return nil
	}
	fmt.Fprintf(out, "unpinned %d BPF objects from %s (the workloads they enforced are no longer enforced); removed %d workload records from %s\n",
		len(removed), pinDir, records, stateDir)
	return nil
}
