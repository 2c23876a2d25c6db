package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/runtime/job"
)

// childCommand is the hidden command the job's stub runs as.
const childCommand = "__run-job-child"

// runJob runs `run-job [flags] -- COMMAND...` and returns the exit code.
func runJob(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run-job", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := job.Config{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Log: stderr,
		ChildPath: "/proc/self/exe", ChildArgs: []string{"ocigate-agentd", childCommand}}
	fs.StringVar(&cfg.Socket, "socket", api.DefaultSocket, "agent API socket")
	fs.StringVar(&cfg.Profile, "profile", "", "profile for the job, the runner's choice: nothing the job does can change it (default: the profile the agent selects)")
	fs.StringVar(&cfg.CgroupRoot, "cgroup-root", "", "cgroup v2 mount (default: detected, e.g. /sys/fs/cgroup/unified on hybrid hosts)")
	fs.StringVar(&cfg.Parent, "cgroup-parent", job.DefaultParent, "cgroup the job's own cgroup is created in")
	fs.StringVar(&cfg.ID, "id", "", "workload ID the agent records (default job-PID-TIME)")
	fs.StringVar(&cfg.EventsFile, "events-file", "", "the agent's --events-file: summarise this job's events from it")
	fs.DurationVar(&cfg.Timeout, "timeout", job.DefaultTimeout, "deadline for each answer of the agent")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ocigate-agentd run-job [flags] -- COMMAND [ARG...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Args = fs.Args()
	if len(cfg.Args) == 0 {
		fs.Usage()
		return 2
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	cfg.Signals = sigs
	res, err := job.Run(context.Background(), cfg)
	if err != nil {
		// ErrNotRun: res.ExitCode says why (125, 127); otherwise the
		// command ran and its code stands, with a cleanup problem.
		fmt.Fprintf(stderr, "ocigate-agentd run-job: %v\n", err)
	}
	return res.ExitCode
}
