package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
)

// running is a started job: the stub waits in its cgroup for the release.
type running struct {
	cfg      Config
	cmd      *exec.Cmd
	cg       *cgroup
	res      *Result
	release  *os.File // the write end of the stub's fd 3
	resolver cgroupfilter.Resolver
	exited   chan struct{} // the command (or the stub) has exited, not yet reaped
}

// releaseByte tells the stub to exec the command.
const releaseByte = 'G'

func (j *running) run(ctx context.Context) (Result, error) {
	j.exited = make(chan struct{})
	go func() {
		waitExited(j.cmd.Process.Pid)
		close(j.exited)
	}()
	stopSignals := j.forwardSignals()
	defer stopSignals()

	events := openEvents(j.cfg.EventsFile, j.cfg.Log)
	w, err := j.register(ctx)
	if err != nil {
		j.abort()
		return *j.res, errors.Join(fmt.Errorf("%w (fail-closed): %w", err, ErrNotRun), j.cleanup(false))
	}
	if err := j.releaseStub(); err != nil {
		j.abort()
		return *j.res, errors.Join(fmt.Errorf("%w: %w", err, ErrNotRun), j.cleanup(true))
	}
	<-j.exited
	cerr := j.cleanup(true)
	j.res.ExitCode = exitCode(j.cmd.ProcessState)
	if events != nil {
		time.Sleep(j.cfg.settle) // the agent writes events asynchronously
	}
	summarize(j.cfg.Log, j.cfg.ID, w, j.res.ExitCode, events)
	return *j.res, cerr
}

// waitExited returns once pid has exited, leaving it to be reaped by
// exec.Cmd.Wait: the job's cgroup is emptied first, so that a background
// process holding the command's output pipes cannot keep Wait waiting.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// register resolves the stub's identity and registers it; the agent
// answers only once the workload's maps are written.
func (j *running) register(ctx context.Context) (*api.Workload, error) {
	pid := j.cmd.Process.Pid
	ident, err := j.resolver.Resolve(pid)
	if err != nil {
		return nil, fmt.Errorf("resolve the job's cgroup: %w", err)
	}
	if ident.CgroupPath != j.res.Cgroup {
		return nil, fmt.Errorf("the job's stub is in cgroup %s, not %s", ident.CgroupPath, j.res.Cgroup)
	}
	// The profile is the runner's configuration (its run-job command
	// line), never the job's: a registration field, not an annotation.
	reg := &api.Registration{ContainerID: j.cfg.ID, Runtime: RuntimeName, Pid: pid, Identity: api.IdentityOf(ident), Profile: j.cfg.Profile}
	ctx, cancel := context.WithTimeout(ctx, j.cfg.Timeout)
	defer cancel()
	resp, err := api.Call(ctx, j.cfg.Socket, &api.Request{Op: api.OpRegister, Register: reg})
	if err != nil {
		return nil, err
	}
	return resp.Workload, nil
}

func (j *running) unregister() error {
	ctx, cancel := context.WithTimeout(context.Background(), j.cfg.Timeout)
	defer cancel()
	_, err := api.Call(ctx, j.cfg.Socket, &api.Request{Op: api.OpUnregister, Unregister: &api.Unregistration{ContainerID: j.cfg.ID}})
	return err
}

func (j *running) releaseStub() error {
	if _, err := j.release.Write([]byte{releaseByte}); err != nil {
		return fmt.Errorf("release the job: %w", err)
	}
	if err := j.release.Close(); err != nil {
		return fmt.Errorf("release the job: %w", err)
	}
	return nil
}

// abort ends the stub before it runs anything: closing the pipe unwritten
// makes it exit.
func (j *running) abort() {
	_ = j.release.Close()
	select {
	case <-j.exited:
	case <-time.After(2 * time.Second):
		_ = j.cmd.Process.Kill()
		<-j.exited
	}
}

// cleanup kills what is left in the cgroup, reaps the command, then
// unregisters (only now: a leftover process must not run unenforced) and
// removes the cgroup.
func (j *running) cleanup(registered bool) error {
	var errs []error
	if n, err := j.cg.kill(); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		fmt.Fprintf(j.cfg.Log, "ocigate: killed %d process(es) the job left behind\n", n)
	}
	_ = j.cmd.Wait() // the exit status is in ProcessState; output pipes are drained
	if registered {
		if err := j.unregister(); err != nil {
			errs = append(errs, fmt.Errorf("unregister %s: %w", j.cfg.ID, err))
		}
	}
	if err := j.cg.rmdir(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (j *running) forwardSignals() (stop func()) {
	if j.cfg.Signals == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-j.cfg.Signals:
				_ = j.cmd.Process.Signal(sig)
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// exitCode is the shell's view: the exit status, or 128+N for signal N.
func exitCode(st *os.ProcessState) int {
	if st == nil {
		return ExitFailed
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitSignalDelta + int(ws.Signal())
	}
	if code := st.ExitCode(); code >= 0 {
		return code
	}
	return ExitFailed
}
