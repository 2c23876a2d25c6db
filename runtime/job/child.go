package job

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// Child is the stub's side: it waits on fd 3 for the release and then
// execs args[0] (an absolute path) with argv args[1:]. When the runner
// closes fd 3 without the release byte (the agent refused), it exits
// ExitFailed having run nothing.
func Child(args []string, stderr io.Writer) int {
	release := os.NewFile(3, "ocigate-job-release")
	if release == nil || len(args) < 2 {
		fmt.Fprintln(stderr, "ocigate-agentd: the job stub is started by run-job only")
		return ExitFailed
	}
	var b [1]byte
	n, _ := release.Read(b[:])
	release.Close()
	if n != 1 || b[0] != releaseByte {
		return ExitFailed
	}
	err := syscall.Exec(args[0], args[1:], os.Environ())
	fmt.Fprintf(stderr, "ocigate-agentd run-job: exec %s: %v\n", args[0], err)
	if err == syscall.ENOENT {
		return ExitNotFound
	}
	return ExitCannotExec
}
