// Package job runs a plain command (a CI job, a script) under ocigate's
// enforcement without a container: it creates a cgroup, starts a stub
// there that waits, registers the cgroup with the agent like the OCI hook
// registers a container, and only when the agent answers lets the stub
// exec the command, so the command's first instruction already runs
// enforced. Fail-closed: when the agent is unreachable or refuses, the
// command never runs.
package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
)

// Defaults.
const (
	DefaultParent  = "/ocigate.slice"
	DefaultTimeout = 5 * time.Second
	// RuntimeName is what the agent records as the workload's runtime.
	RuntimeName = "job"
)

// Exit codes of the job runner itself, as env(1) and docker run use them.
const (
	ExitFailed      = 125 // ocigate could not run the command protected
	ExitCannotExec  = 126
	ExitNotFound    = 127
	exitSignalDelta = 128
)

// ErrNotRun wraps the errors after which the command did not run.
var ErrNotRun = errors.New("the command did not run")

// Config describes one job.
type Config struct {
	Args       []string // the command and its arguments
	Socket     string   // agent socket (default api.DefaultSocket)
	Profile    string   // the profile the runner's configuration names (Registration.Profile); empty: the agent's choice
	CgroupRoot string   // cgroup v2 mount (default: detected)
	Parent     string   // cgroup the job's cgroup is made in, relative to the root (default DefaultParent)
	ID         string   // workload ID (default job-PID-TIME)
	EventsFile string   // the agent's events file, for the summary
	Timeout    time.Duration

	// Child is the stub's executable and its argv up to the command: it
	// must end up in Child() (the ocigate-agentd binary re-executed with
	// its hidden child command).
	ChildPath string
	ChildArgs []string

	Stdin          io.Reader // *os.File passes straight through
	Stdout, Stderr io.Writer
	Log            io.Writer           // summary and diagnostics (default os.Stderr)
	Signals        <-chan os.Signal    // forwarded to the command
	settle         time.Duration       // wait for the agent's last events (tests shorten it)
	now            func() time.Time    // tests
	onStarted      func(cgroup string) // tests: called once the stub is in its cgroup
}

// Result is what a job did.
type Result struct {
	ExitCode int
	Workload string // the registered ID
	Cgroup   string // cgroup path, relative to the root
}

// Run runs the job to completion and returns the command's exit code
// (128+N when a signal N ended it). An error means the command did not
// run (errors.Is ErrNotRun) or ocigate could not clean up after it.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.defaults()
	res := Result{ExitCode: ExitFailed, Workload: cfg.ID}
	if len(cfg.Args) == 0 {
		return res, fmt.Errorf("no command: %w", ErrNotRun)
	}
	bin, err := exec.LookPath(cfg.Args[0])
	if err != nil {
		res.ExitCode = ExitNotFound
		return res, fmt.Errorf("%w: %w", err, ErrNotRun)
	}
	root := cfg.CgroupRoot
	if root == "" {
		if root, err = cgroupfilter.V2Mount(); err != nil {
			return res, fmt.Errorf("%w: %w", err, ErrNotRun)
		}
	}
	res.Cgroup = path.Join("/", cfg.Parent, cfg.ID)
	cg, err := createCgroup(root, res.Cgroup)
	if err != nil {
		return res, fmt.Errorf("%w: %w", err, ErrNotRun)
	}
	defer cg.close()

	stubEnd, release, err := os.Pipe()
	if err != nil {
		_ = cg.remove()
		return res, fmt.Errorf("release pipe: %w: %w", err, ErrNotRun)
	}
	defer release.Close()
	defer stubEnd.Close()
	cmd := &exec.Cmd{
		Path:        cfg.ChildPath,
		Args:        append(append(append([]string(nil), cfg.ChildArgs...), bin), cfg.Args...),
		Stdin:       cfg.Stdin,
		Stdout:      cfg.Stdout,
		Stderr:      cfg.Stderr,
		ExtraFiles:  []*os.File{stubEnd}, // fd 3
		SysProcAttr: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.fd},
	}
	if err := cmd.Start(); err != nil {
		_ = cg.remove()
		return res, fmt.Errorf("start the job's stub in cgroup %s: %w: %w", res.Cgroup, err, ErrNotRun)
	}
	stubEnd.Close() // the stub's copy is the only read end now
	if cfg.onStarted != nil {
		cfg.onStarted(cg.dir)
	}
	j := &running{cfg: cfg, cmd: cmd, cg: cg, res: &res, release: release, resolver: cgroupfilter.Resolver{CgroupRoot: root}}
	return j.run(ctx)
}

func (c *Config) defaults() {
	if c.Socket == "" {
		c.Socket = api.DefaultSocket
	}
	if c.Parent == "" {
		c.Parent = DefaultParent
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ID == "" {
		c.ID = fmt.Sprintf("job-%d-%s", os.Getpid(), strconv.FormatInt(c.now().UnixNano(), 36))
	}
	if c.ChildPath == "" {
		c.ChildPath = "/proc/self/exe"
	}
	if c.Log == nil {
		c.Log = os.Stderr
	}
	if c.settle == 0 {
		c.settle = 300 * time.Millisecond
	}
}

// cgroup is the job's cgroup directory, open for CLONE_INTO_CGROUP.
type cgroup struct {
	dir string
	fd  int
}

func createCgroup(root, rel string) (*cgroup, error) {
	dir := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup parent: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	return &cgroup{dir: dir, fd: fd}, nil
}

func (c *cgroup) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// kill SIGKILLs every process in the cgroup, the command's own exited
// (not yet reaped) process aside, until none is left, and says how many
// there were.
func (c *cgroup) kill() (int, error) {
	deadline := time.Now().Add(5 * time.Second)
	killed := 0
	for {
		pids, err := c.procs()
		if err != nil {
			return killed, err
		}
		if len(pids) == 0 {
			return killed, nil
		}
		killed = max(killed, len(pids))
		if time.Now().After(deadline) {
			return killed, fmt.Errorf("cgroup %s: processes %v outlived SIGKILL", c.dir, pids)
		}
		if err := os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0); err != nil {
			for _, pid := range pids { // kernels before 5.14 have no cgroup.kill
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// remove empties and removes the cgroup.
func (c *cgroup) remove() error {
	_, err := c.kill()
	return errors.Join(err, c.rmdir())
}

func (c *cgroup) rmdir() error {
	var err error
	for i := 0; i < 100; i++ { // EBUSY until the last exit is complete
		if err = os.Remove(c.dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup: %w", err)
}

func (c *cgroup) procs() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list cgroup processes: %w", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
