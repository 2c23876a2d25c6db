// Package agentconfig is the node agent's configuration: what
// `ocigate-agentd run` is told, from its flags or from a Config that a
// test builds.
package agentconfig

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	nriapi "github.com/containerd/nri/pkg/api"
	"go.uber.org/zap/zapcore"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/flagvalue"
	"github.com/ocigate/ocigate/internal/hookreport"
	"github.com/ocigate/ocigate/internal/workloadstate"
	"github.com/ocigate/ocigate/runtime/containerd"
	"github.com/ocigate/ocigate/runtime/docker"
)

// Config is what an agent runs with. Each field is one flag of run, named
// in its comment; Default holds the flags' defaults.
type Config struct {
	// Socket is the API socket path, created once the agent is ready
	// (--socket).
	Socket string
	// LogLevel is debug, info, warn or error (--log-level).
	LogLevel string
	// LogFormat is console (text lines) or json (--log-format).
	LogFormat string
	// CgroupRoot is the cgroup v2 mount; "" detects it (--cgroup-root).
	CgroupRoot string
	// Enforcer is the backend: auto, lsm, fmod_ret or fallback
	// (--enforcer).
	Enforcer string
	// ProfileDir is the directory of the users' profiles and policies,
	// watched for changes (--profiles).
	ProfileDir string

	// EventsFile is the file events are appended to; "" or "-" is stdout
	// (--events-file).
	EventsFile string
	// EventsMaxSize is the size in bytes past which the events file
	// rotates; 0 never (--events-max-size).
	EventsMaxSize int64
	// EventsMaxBackups is how many rotated events files are kept
	// (--events-max-backups).
	EventsMaxBackups int
	// EventsTypes are the event types the events file gets; none: all
	// (--events-types).
	EventsTypes []string
	// EventsReaderNice is the nice value of the thread that reads the
	// kernel's records (--events-reader-nice); 0 leaves it as the rest
	// of the agent.
	EventsReaderNice int

	// Adopt registers the containers already running at start (--adopt).
	Adopt bool
	// ContainerdSocket is containerd's API socket; "" never asks it
	// (--containerd-socket).
	ContainerdSocket string
	// RuncRoots are the runc state roots adopted from (--runc-roots).
	RuncRoots []string
	// RuncBinary lists the RuncRoots (--runc).
	RuncBinary string

	// NRI also serves as an NRI plugin (--nri) on NRISocket (--nri-socket)
	// at NRIIndex among the plugins (--nri-index).
	NRI       bool
	NRISocket string
	NRIIndex  string

	// ReconcileInterval is how often workloads whose container is gone
	// are dropped; 0 never (--reconcile-interval).
	ReconcileInterval time.Duration

	// MetricsAddr serves Prometheus metrics; "" off (--metrics-addr).
	MetricsAddr string
	// PprofAddr serves Go's profiler; "" off (--pprof-addr).
	PprofAddr string
	// BPFStats turns on the kernel's BPF run time accounting
	// (--bpf-stats).
	BPFStats bool

	// PinDir is the bpffs directory where enforcement stays pinned; ""
	// detaches everything on exit (--pin-dir).
	PinDir string
	// StateDir holds the workload records a restarted agent reads
	// (--state-dir).
	StateDir string

	// TrustedAnnotations are the annotation keys the operator vouches
	// for: their values count as a container's identity, not as claims
	// of its spec (--trusted-annotations; docs/trust.md). None by default.
	TrustedAnnotations []string
	// HookReports is where hooks leave the refusals they made while no
	// agent answered; "" never reads them (--hook-reports).
	HookReports string
	// DockerRoot is dockerd's data root, where the image of a Docker
	// container is read (--docker-root).
	DockerRoot string
}

// Defaults of the events file: at most 6 × 100 MiB on disk.
const (
	DefaultEventsMaxSize    = 100 << 20
	DefaultEventsMaxBackups = 5
)

// DefaultEventsReaderNice runs the thread that reads the kernel's
// records ahead of the workloads when the CPUs are busy. The ring buffer
// holds 4 MiB of records, about 17 ms at 500 000 records a second; at
// that rate on two CPUs the reader waited for a CPU 11-22% of the time
// at nice 0, 7-12% at -5 and 5-8% at -10, and the kernel lost records
// in 7, 6 and 3 of 12 steps of 500 000-600 000 a second
// (scripts/bench-events.sh, alternated). The reader's CPU is what the
// records cost; the priority only decides who waits. auditd boosts
// itself for the same reason (priority_boost).
const DefaultEventsReaderNice = -10

// DefaultProfileDir is where the agent looks for the users' profiles.
const DefaultProfileDir = "/etc/ocigate/profiles"

// Default returns the Config of `run` without flags.
func Default() Config {
	return Config{
		Socket:            api.DefaultSocket,
		LogLevel:          "info",
		LogFormat:         "console",
		Enforcer:          enforcer.BackendAuto,
		ProfileDir:        DefaultProfileDir,
		EventsMaxSize:     DefaultEventsMaxSize,
		EventsReaderNice:  DefaultEventsReaderNice,
		EventsMaxBackups:  DefaultEventsMaxBackups,
		Adopt:             true,
		ContainerdSocket:  containerd.DefaultSocket,
		RuncRoots:         []string{"/run/runc"},
		RuncBinary:        "runc",
		NRISocket:         "/var/run/nri/nri.sock",
		NRIIndex:          "10",
		ReconcileInterval: 3 * time.Second,
		PinDir:            enforcer.DefaultPinDir,
		StateDir:          workloadstate.DefaultDir,
		HookReports:       hookreport.DefaultDir,
		DockerRoot:        docker.DefaultDataRoot,
	}
}

// AddFlags defines run's flags on fs, each setting its field of c; a
// flag's default is the field's value now.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Socket, "socket", c.Socket, "API socket path (created once the agent is ready)")
	fs.StringVar(&c.EventsFile, "events-file", c.EventsFile, "append events to this file; - or empty: stdout")
	fs.Var((*flagvalue.ByteSize)(&c.EventsMaxSize), "events-max-size", "rotate the events file before it grows past this size (KiB, MiB, GiB); 0: never")
	fs.IntVar(&c.EventsMaxBackups, "events-max-backups", c.EventsMaxBackups, "rotated events files kept (PATH.1 newest … PATH.N)")
	fs.IntVar(&c.EventsReaderNice, "events-reader-nice", c.EventsReaderNice,
		"nice value (-20 to 19) of the thread that reads the kernel's records: lower runs it sooner when the CPUs are busy, before the ring buffer fills; 0: as the rest of the agent")
	fs.Var((*flagvalue.List)(&c.EventsTypes), "events-types", "event types the events file gets: "+strings.Join(events.Types, ", ")+" (repeat or comma-separate; default all)")
	fs.StringVar(&c.CgroupRoot, "cgroup-root", c.CgroupRoot, "cgroup v2 mount (default: detected)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "the log on stderr: console (text lines) or json (one object per line)")
	fs.StringVar(&c.Enforcer, "enforcer", c.Enforcer, "auto (best per point: lsm > fmod_ret > fallback), lsm, fmod_ret or fallback")
	fs.StringVar(&c.ProfileDir, "profiles", c.ProfileDir, "directory of WorkloadProfile and TracingPolicy YAML files, watched for changes")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9743 (empty: off)")
	fs.StringVar(&c.ContainerdSocket, "containerd-socket", c.ContainerdSocket, "containerd's API socket, asked for the image of its containers (empty: never asked)")
	fs.BoolVar(&c.Adopt, "adopt", c.Adopt, "at start, register the containers already running (containerd, --runc-roots), marked adopted")
	fs.Var((*flagvalue.CommaList)(&c.RuncRoots), "runc-roots", "comma-separated runc state roots whose containers are adopted at start (default /run/runc: runc's and podman's; empty: none)")
	fs.StringVar(&c.RuncBinary, "runc", c.RuncBinary, "the runc binary used to list --runc-roots")
	fs.BoolVar(&c.NRI, "nri", c.NRI, "also serve as an NRI plugin (containerd >= 1.7, CRI-O): register at StartContainer, unregister at stop/remove, adopt at connect")
	fs.StringVar(&c.NRISocket, "nri-socket", c.NRISocket, "the runtime's NRI socket")
	fs.StringVar(&c.NRIIndex, "nri-index", c.NRIIndex, "the plugin's NRI index (order among plugins)")
	fs.DurationVar(&c.ReconcileInterval, "reconcile-interval", c.ReconcileInterval, "how often to drop workloads whose container is gone without poststop (cgroup removed, or empty on two checks); 0: never")
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "serve Go's profiler at http://ADDR/debug/pprof/, e.g. 127.0.0.1:6060 (empty: off)")
	fs.BoolVar(&c.BPFStats, "bpf-stats", c.BPFStats, "turn on the kernel's BPF run time accounting while the agent runs (ocigate_bpf_program_*; costs a little per program run)")
	fs.StringVar(&c.PinDir, "pin-dir", c.PinDir, "bpffs directory where maps and links stay pinned, so that enforcement outlives the agent and a restarted agent takes it over (empty: detach everything on exit)")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "directory of the workload records a restarted agent reads (with --pin-dir)")
	fs.Var((*flagvalue.CommaList)(&c.TrustedAnnotations), "trusted-annotations", "comma-separated annotation keys whose values are the operator's, not the container spec's "+
		"(e.g. ocigate.io/profile,ocigate.io/failure-policy on a host where only root starts containers; docs/trust.md); default none")
	fs.StringVar(&c.HookReports, "hook-reports", c.HookReports, "directory where hooks leave the refusals they made while no agent answered; reported as ocigate_claim events (empty: not read)")
	fs.StringVar(&c.DockerRoot, "docker-root", c.DockerRoot, "dockerd's --data-root, where the image of a Docker container is read")
}

// Parse reads run's command line into a validated Config. Usage and flag
// errors go to output.
func Parse(args []string, output io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(output)
	c.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(output, "usage: ocigate-agentd run [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q: run takes flags only", fs.Args())
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Args returns the flags of run that give an agent c: those whose value
// differs from the default, each as --name=value.
func (c Config) Args() []string {
	bound := Default()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	bound.AddFlags(fs) // each flag's DefValue is the default…
	bound = c          // …and its Value now reads c's field
	var args []string
	fs.VisitAll(func(f *flag.Flag) {
		if v := f.Value.String(); v != f.DefValue {
			args = append(args, "--"+f.Name+"="+v)
		}
	})
	return args
}

// Validate returns every problem of c, each naming its flag, or nil.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Socket == "" {
		bad("--socket: want the API socket's path")
	}
	if _, err := c.Level(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "console" && c.LogFormat != "json" {
		bad("--log-format %q: want console or json", c.LogFormat)
	}
	if c.EventsMaxSize < 0 {
		bad("--events-max-size %d: want 0 (never rotate) or a positive size", c.EventsMaxSize)
	}
	if c.EventsMaxBackups < 0 {
		bad("--events-max-backups %d: want 0 or more", c.EventsMaxBackups)
	}
	if c.EventsReaderNice < -20 || c.EventsReaderNice > 19 {
		bad("--events-reader-nice %d: want a nice value from -20 to 19", c.EventsReaderNice)
	}
	for _, t := range c.EventsTypes {
		if !events.KnownType(t) {
			bad("--events-types: event type %q: want one of %s", t, strings.Join(events.Types, ", "))
		}
	}
	if c.Adopt && len(c.RuncRoots) > 0 && c.RuncBinary == "" {
		bad("--runc: want the runc binary that lists --runc-roots %s", strings.Join(c.RuncRoots, ","))
	}
	if c.NRI {
		if c.NRISocket == "" {
			bad("--nri-socket: want the runtime's NRI socket with --nri")
		}
		if err := nriapi.CheckPluginIndex(c.NRIIndex); err != nil {
			bad("--nri-index: %w", err)
		}
	}
	if c.ReconcileInterval < 0 {
		bad("--reconcile-interval %v: want 0 (off) or a positive duration", c.ReconcileInterval)
	}
	for _, k := range c.TrustedAnnotations {
		if k == "" || strings.ContainsAny(k, " \t\r\n=") {
			bad("--trusted-annotations: %q is not an annotation key", k)
		}
	}
	if c.PinDir != "" && c.StateDir == "" {
		bad("--state-dir: want a directory for the workload records with --pin-dir %s", c.PinDir)
	}
	return errors.Join(errs...)
}

// Level is LogLevel parsed.
func (c Config) Level() (zapcore.Level, error) {
	lvl, err := zapcore.ParseLevel(c.LogLevel)
	if err != nil {
		return lvl, fmt.Errorf("--log-level: %w", err)
	}
	return lvl, nil
}
