package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/runtime/job"
)

// childCommand is the hidden command the job's stub runs as.
const childCommand = "__run-job-child"

const runJobLong = `Run a command in its own cgroup, registered with the agent before the
command's first instruction and enforced like a container, and print a
summary of its events at the end (with --events-file). The exit status
is the command's; 125 when it could not be run, 127 when it was not
found. Flags end at the first argument that is not one: the rest is the
command with its own flags ("--" may stand before it).`

// newRunJobCmd returns `run-job`.
func newRunJobCmd() *cobra.Command {
	cfg := job.Config{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		ChildPath: "/proc/self/exe", ChildArgs: []string{"ocigate-agentd", childCommand}}
	cmd := &cobra.Command{Use: "run-job [flags] [--] COMMAND [ARG...]", Short: "run a command in its own enforced cgroup", Long: runJobLong,
		Example: "  ocigate-agentd run-job --profile ci -- make test", Args: minArgs(1, "a COMMAND to run")}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVar(&cfg.Socket, "socket", api.DefaultSocket, "agent API socket")
	fl.StringVar(&cfg.Profile, "profile", "", "profile for the job, the runner's choice: nothing the job does can change it (default: the profile the agent selects)")
	fl.StringVar(&cfg.CgroupRoot, "cgroup-root", "", "cgroup v2 mount (default: detected, e.g. /sys/fs/cgroup/unified on hybrid hosts)")
	fl.StringVar(&cfg.Parent, "cgroup-parent", job.DefaultParent, "cgroup the job's own cgroup is created in")
	fl.StringVar(&cfg.ID, "id", "", "workload ID the agent records (default job-PID-TIME)")
	fl.StringVar(&cfg.EventsFile, "events-file", "", "the agent's --events-file: summarise this job's events from it")
	fl.DurationVar(&cfg.Timeout, "timeout", job.DefaultTimeout, "deadline for each answer of the agent")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg.Args = args
		cfg.Log = cmd.ErrOrStderr()
		if code := runJob(cfg); code != 0 {
			return &exitError{code: code}
		}
		return nil
	}
	return cmd
}

// runJob runs the job cfg describes and returns its exit code.
func runJob(cfg job.Config) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	cfg.Signals = sigs
	res, err := job.Run(context.Background(), cfg)
	if err != nil {
		// ErrNotRun: res.ExitCode says why (125, 127); otherwise the
		// command ran and its code stands, with a cleanup problem.
		fmt.Fprintf(cfg.Log, "ocigate-agentd run-job: %v\n", err)
	}
	return res.ExitCode
}
