package main

import (
	"flag"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ocigate/ocigate/internal/agentconfig"
)

const runLong = `Run the node agent: load the BPF programs (or take over those an earlier
agent left pinned), compile the profiles into the maps, restore pinned
workloads, adopt running containers, then create the API socket and
answer the hooks until SIGTERM or SIGINT. Enforcement stays pinned after
it stops (--pin-dir).

--config FILE reads run's flags from a YAML file, one key per flag name
(events-file: /var/log/ocigate/events.jsonl); flags on the command line
win over the file. Under systemd (NOTIFY_SOCKET set) the agent sends
READY=1 once it answers, and STOPPING=1 at SIGTERM. SIGUSR1 reopens the
events file, for logrotate.`

// newRunCmd returns `run`; its flags are agentconfig's.
func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "run", Short: "load the BPF programs, listen for hooks, enforce and report", Long: runLong,
		Example: "  ocigate-agentd run --config /etc/ocigate/agentd.yaml\n" +
			"  ocigate-agentd run --events-file /var/log/ocigate/events.jsonl --log-format json", Args: noArgs}
	parsed := agentconfig.Default()
	gofs := flag.NewFlagSet("run", flag.ContinueOnError)
	parsed.AddFlags(gofs)
	cmd.Flags().AddGoFlagSet(gofs)
	file := cmd.Flags().String("config", "", "YAML file of run's flags, keyed by flag name (the package's: "+agentconfig.DefaultFile+"); command-line flags win")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := agentconfig.Load(*file, changedFlags(cmd.Flags(), "config"))
		if err != nil {
			return err
		}
		return startAgent(cfg)
	}
	return cmd
}

// changedFlags returns the flags of fs given on the command line, but
// not those named in except, as name → value.
func changedFlags(fs *pflag.FlagSet, except ...string) map[string]string {
	out := map[string]string{}
	fs.Visit(func(f *pflag.Flag) {
		for _, e := range except {
			if f.Name == e {
				return
			}
		}
		out[f.Name] = f.Value.String()
	})
	return out
}
