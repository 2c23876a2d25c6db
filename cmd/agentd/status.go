package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocigate/ocigate/internal/api"
)

const statusLong = `Print the running agent's state: per enforcement point the backend this
kernel gave and why better ones were refused, the profiles, the
registered workloads, the event losses and the counters.

With --wait it waits until an agent answers: an agent creates its socket
once its programs are attached, its profiles loaded and pinned workloads
restored, so "status --wait 30s" is the readiness check of scripts that
start an agent. With --fail-degraded it exits 1 while a point that a loaded profile
needs does not enforce: the DaemonSet's readiness and liveness probe.`

// newStatusCmd returns `status`.
func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "status", Short: "show backends, workloads and counters of the running agent", Long: statusLong,
		Example: "  ocigate-agentd status --wait 30s\n  ocigate-agentd status --summary -o json", Args: noArgs}
	fl := cmd.Flags()
	socket := fl.String("socket", api.DefaultSocket, "agent API socket")
	timeout := fl.Duration("timeout", 5*time.Second, "deadline of each call to the agent")
	wait := fl.Duration("wait", 0, "wait up to this long for an agent to answer (while its socket is missing or refuses): "+
		"an agent answers once its programs are attached and its profiles loaded; 0: ask once")
	summary := fl.Bool("summary", false, "counters and backends only, no workload list")
	probe := fl.Bool("fail-degraded", false, "exit 1 when a point a loaded profile needs does not enforce on this kernel (a readiness or liveness probe that means it)")
	formats := outputs{"text", "json", "yaml"}
	output := formats.add(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *timeout <= 0 {
			return usagef("--timeout %v: want a positive duration", *timeout)
		}
		if *wait < 0 {
			return usagef("--wait %v: want 0 (ask once) or a positive duration", *wait)
		}
		if err := formats.check(*output); err != nil {
			return err
		}
		req := &api.Request{Op: api.OpStatus, Status: &api.StatusOptions{Summary: *summary}}
		resp, err := api.CallWaiting(cmd.Context(), *socket, req, *wait, *timeout)
		if err != nil {
			return err
		}
		if resp.Status == nil {
			return fmt.Errorf("agent answered without a status")
		}
		if err := printData(cmd.OutOrStdout(), *output, resp.Status, func(w io.Writer) error { printStatus(w, resp.Status); return nil }); err != nil {
			return err
		}
		if down := resp.Status.Degraded(); *probe && len(down) > 0 {
			return fmt.Errorf("enforcement %s", api.Enforcement(down))
		}
		return nil
	}
	return cmd
}

func printStatus(out io.Writer, st *api.Status) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "node:\t%s\nstarted:\t%s\nprofiles:\t%v\n", st.Node, st.StartedAt.Format(time.RFC3339), st.Profiles)
	if down := st.Degraded(); len(down) > 0 {
		fmt.Fprintf(tw, "enforcement:\t%s; workloads whose profile needs them are refused\n", api.Enforcement(down))
	}
	if all := st.Unavailable(); len(all) > len(st.Degraded()) {
		fmt.Fprintf(tw, "unavailable:\t%s, needed by no loaded profile\n", strings.Join(unneededPoints(st), ", "))
	}
	fmt.Fprintln(tw)
	printBackends(tw, st.Backends)
	fmt.Fprintf(tw, "\nWORKLOADS (%d)\nCONTAINER\tRUNTIME\tIMAGE\tPROFILE\tMODE\tCGROUP ID\tCGROUP\n", len(st.Workloads)+st.WorkloadsOmitted)
	for _, w := range st.Workloads {
		runtime := w.Runtime
		if w.Adopted {
			runtime += " (adopted)"
		}
		image := w.Image
		if image == "" {
			image = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", w.ContainerID, runtime, image, w.Profile, w.Mode, w.CgroupID, w.CgroupPath)
	}
	if st.WorkloadsOmitted > 0 {
		fmt.Fprintf(tw, "(%d more not listed)\n", st.WorkloadsOmitted)
	}
	c := st.Counters
	fmt.Fprintf(tw, "\nevents lost:\tkernel ring buffer %d, agent queue %d, sink %d, subscribers %d\n",
		c["kernel_events_lost"], c["events_dropped_queue"], c["events_sink_errors"], c["events_dropped_subscribers"])
	if len(st.Subscribers) > 0 {
		fmt.Fprintf(tw, "\nSUBSCRIBERS (%d)\nID\tSINCE\tFILTER\tSENT\tQUEUED\tDROPPED\n", len(st.Subscribers))
		for _, s := range st.Subscribers {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\n", s.ID, s.Since.Format(time.RFC3339), s.Filter, s.Sent, s.Queued, s.Dropped)
		}
	}
	fmt.Fprintln(tw, "\nCOUNTER\tVALUE")
	names := make([]string, 0, len(st.Counters))
	for k := range st.Counters {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(tw, "%s\t%d\n", k, st.Counters[k])
	}
	tw.Flush()
}

// printBackends lists how each point enforces; a point that does not
// (no backend could attach) says UNAVAILABLE with the kernel's reason.
func printBackends(tw io.Writer, backends []api.Backend) {
	fmt.Fprintln(tw, "POINT\tBACKEND\tMECHANISM")
	for _, b := range backends {
		if b.Error != "" {
			fmt.Fprintf(tw, "%s\tUNAVAILABLE\t%s\n", b.Point, b.Error)
			continue
		}
		mech := b.Mechanism
		if b.Detached {
			mech += " (detached: no loaded profile needs it)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Point, b.Backend, mech)
		for _, s := range b.Skipped {
			fmt.Fprintf(tw, "\t\t  not %s\n", s)
		}
	}
}

// unneededPoints names the unavailable points no loaded profile needs.
func unneededPoints(st *api.Status) []string {
	var out []string
	for _, b := range st.Backends {
		if b.Error != "" && b.Unneeded {
			out = append(out, b.Point)
		}
	}
	return out
}
