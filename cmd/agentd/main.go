// Command ocigate-agentd is the ocigate node agent and its CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/ocigate/ocigate/runtime/job"
)

func main() {
	// No memory profiling unless --pprof-addr asks (startAgent): its
	// sample buckets (BuckHashSys, 1.5 MiB in make bench) are for nothing.
	runtime.MemProfileRate = 0
	// The run-job stub re-executes this binary: no CLI stands between it
	// and the job's command.
	if len(os.Args) > 1 && os.Args[1] == childCommand {
		os.Exit(job.Child(os.Args[2:], os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := execCLI(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode says err and returns the process's exit code: 0 without an
// error; the code of an *exitError (the command has said why); 2 for a
// usage error; 1 otherwise.
func exitCode(err error, stderr *os.File) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "ocigate-agentd: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "ocigate-agentd: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
