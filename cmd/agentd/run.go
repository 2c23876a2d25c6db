package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/agent"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/apiserver"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/flagvalue"
	"github.com/ocigate/ocigate/internal/hostfs"
	"github.com/ocigate/ocigate/internal/profilewatch"
	"github.com/ocigate/ocigate/internal/sdnotify"
	"github.com/ocigate/ocigate/internal/workloadstate"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/runtime/containerd"
	"github.com/ocigate/ocigate/runtime/describe"
	"github.com/ocigate/ocigate/runtime/nriplugin"
	"github.com/ocigate/ocigate/runtime/running"
)

// runFlags is the command line of run.
type runFlags struct {
	socket, eventsFile, cgroupRoot, logLevel, enforcer, profileDir string
	metricsAddr, pprofAddr, containerdSocket, runcBinary           string
	nriSocket, nriIndex, pinDir, stateDir                          string
	eventsMaxSize                                                  flagvalue.ByteSize
	eventsBackups                                                  int
	eventsTypes                                                    flagvalue.List
	runcRoots                                                      flagvalue.CommaList
	adopt, nriOn, bpfStats                                         bool
	reconcileEvery                                                 time.Duration
}

func parseRunFlags(args []string) (*runFlags, error) {
	f := &runFlags{eventsMaxSize: defaultEventsMaxSize, runcRoots: flagvalue.CommaList{"/run/runc"}}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&f.socket, "socket", api.DefaultSocket, "API socket path (created once the agent is ready)")
	fs.StringVar(&f.eventsFile, "events-file", "", "append events to this file; - or empty: stdout")
	fs.Var(&f.eventsMaxSize, "events-max-size", "rotate the events file before it grows past this size (KiB, MiB, GiB); 0: never")
	fs.IntVar(&f.eventsBackups, "events-max-backups", defaultEventsBackups, "rotated events files kept (PATH.1 newest … PATH.N)")
	fs.Var(&f.eventsTypes, "events-types", "event types the events file gets: "+strings.Join(events.Types, ", ")+" (repeat or comma-separate; default all)")
	fs.StringVar(&f.cgroupRoot, "cgroup-root", "", "cgroup v2 mount (default: detected)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.enforcer, "enforcer", bpf.BackendAuto, "auto (best per point: lsm > fmod_ret > fallback), lsm, fmod_ret or fallback")
	fs.StringVar(&f.profileDir, "profiles", defaultProfileDir, "directory of WorkloadProfile and TracingPolicy YAML files, watched for changes")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9743 (empty: off)")
	fs.StringVar(&f.containerdSocket, "containerd-socket", containerd.DefaultSocket, "containerd's API socket, asked for the image of its containers (empty: never asked)")
	fs.BoolVar(&f.adopt, "adopt", true, "at start, register the containers already running (containerd, --runc-roots), marked adopted")
	fs.Var(&f.runcRoots, "runc-roots", "comma-separated runc state roots whose containers are adopted at start (default /run/runc: runc's and podman's; empty: none)")
	fs.StringVar(&f.runcBinary, "runc", "runc", "the runc binary used to list --runc-roots")
	fs.BoolVar(&f.nriOn, "nri", false, "also serve as an NRI plugin (containerd >= 1.7, CRI-O): register at StartContainer, unregister at stop/remove, adopt at connect")
	fs.StringVar(&f.nriSocket, "nri-socket", "/var/run/nri/nri.sock", "the runtime's NRI socket")
	fs.StringVar(&f.nriIndex, "nri-index", "10", "the plugin's NRI index (order among plugins)")
	fs.DurationVar(&f.reconcileEvery, "reconcile-interval", 3*time.Second, "how often to drop workloads whose container is gone without poststop (cgroup removed, or empty on two checks); 0: never")
	fs.StringVar(&f.pprofAddr, "pprof-addr", "", "serve Go's profiler at http://ADDR/debug/pprof/, e.g. 127.0.0.1:6060 (empty: off)")
	fs.BoolVar(&f.bpfStats, "bpf-stats", false, "turn on the kernel's BPF run time accounting while the agent runs (ocigate_bpf_program_*; costs a little per program run)")
	fs.StringVar(&f.pinDir, "pin-dir", bpf.DefaultPinDir, "bpffs directory where maps and links stay pinned, so that enforcement outlives the agent and a restarted agent takes it over (empty: detach everything on exit)")
	fs.StringVar(&f.stateDir, "state-dir", workloadstate.DefaultDir, "directory of the workload records a restarted agent reads (with --pin-dir)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if f.reconcileEvery < 0 {
		return nil, fmt.Errorf("--reconcile-interval %v: want 0 (off) or a positive duration", f.reconcileEvery)
	}
	return f, nil
}

// agentRun is what a running agent's loops share.
type agentRun struct {
	f        *runFlags
	log      *zap.Logger
	enf      *bpf.Enforcer
	ag       *agent.Agent
	desc     *describe.Describer
	resolver cgroupfilter.Resolver
	notifier *sdnotify.Notifier
	started  time.Time
}

// runAgent loads everything the agent enforces with — programs attached,
// profiles compiled into the maps, pinned workloads restored — and only
// then creates the API socket: an agent that answers (status --wait,
// hooks) is ready.
func runAgent(args []string) error {
	r := &agentRun{started: processStart()}
	var err error
	if r.f, err = parseRunFlags(args); err != nil {
		return err
	}
	f := r.f
	if r.log, err = newLogger(f.logLevel); err != nil {
		return err
	}
	defer r.log.Sync()
	if r.notifier, err = sdnotify.FromEnv(); err != nil {
		r.log.Warn("the service manager is not told when the agent is ready", zap.Error(err))
	}
	tuneGC()
	if err := ensureMounts(r.log); err != nil {
		return err
	}
	if err := r.loadEnforcement(); err != nil {
		return err
	}
	defer r.enf.Close()
	if r.desc.Containerd != nil {
		defer r.desc.Containerd.Close()
	}
	// Loading parsed the objects and the kernel's BTF: give the memory
	// that took back before the long run starts.
	debug.FreeOSMemory()
	stopDiagnostics, err := startDiagnostics(f, r.ag, r.log)
	if err != nil {
		return err
	}
	defer stopDiagnostics()
	sink, err := openSink(f.eventsFile, events.Rotation{MaxSize: int64(f.eventsMaxSize), MaxBackups: f.eventsBackups})
	if err != nil {
		return err
	}
	defer sink.Close()
	reader, err := r.enf.NewEventReader()
	if err != nil {
		return err
	}
	srv, err := apiserver.Listen(f.socket, r.ag, r.log)
	if err != nil {
		return err
	}
	defer os.Remove(f.socket)
	return r.serve(srv, reader, sink)
}

// ensureMounts mounts the file systems the agent needs (bpffs, tracefs).
func ensureMounts(log *zap.Logger) error {
	mounts, err := hostfs.EnsureAll()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		switch {
		case m.Err != nil:
			log.Warn("optional file system unavailable", zap.String("fs", m.FSType), zap.Error(m.Err))
		case m.Mounted:
			log.Info("mounted", zap.String("fs", m.FSType), zap.String("path", m.Path))
		}
	}
	return nil
}

// loadEnforcement attaches the programs (or takes the pinned ones over)
// and makes the agent: profiles loaded into the maps, pinned workloads
// restored. On error what it opened is closed.
func (r *agentRun) loadEnforcement() (err error) {
	f := r.f
	r.resolver = cgroupfilter.Resolver{CgroupRoot: f.cgroupRoot}
	root, err := r.resolver.Root()
	if err != nil {
		return err
	}
	r.resolver.CgroupRoot = root
	if f.pinDir == "" {
		warnStalePins(r.log)
	}
	if r.enf, err = bpf.Load(bpf.Options{CgroupRoot: root, Enforcer: f.enforcer, Logger: r.log, PinDir: f.pinDir}); err != nil {
		return loadError(r.log, err)
	}
	r.desc = &describe.Describer{}
	if f.containerdSocket != "" {
		r.desc.Containerd = containerd.New(f.containerdSocket)
	}
	defer func() {
		if err != nil {
			if r.desc.Containerd != nil {
				r.desc.Containerd.Close()
			}
			r.enf.Close()
		}
	}()
	var state *workloadstate.Store
	if f.pinDir != "" {
		if state, err = workloadstate.Open(f.stateDir); err != nil {
			return err
		}
	}
	catalog, err := profiles.NewCatalog(true, f.profileDir)
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	r.ag, err = agent.New(agent.Config{Enforcer: r.enf, Catalog: catalog, Resolver: r.resolver, Logger: r.log, Describer: r.desc,
		State: state, SinkTypes: f.eventsTypes})
	return err
}

// startDiagnostics turns on what --bpf-stats, --metrics-addr and
// --pprof-addr ask for; stop turns it off.
func startDiagnostics(f *runFlags, ag *agent.Agent, log *zap.Logger) (func(), error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if f.bpfStats {
		closer, err := bpf.EnableStats()
		if err != nil {
			return nil, err
		}
		stops = append(stops, func() { closer.Close() })
	}
	if f.metricsAddr != "" {
		addr, stopMetrics, err := serveMetrics(f.metricsAddr, ag.Metrics(), log)
		if err != nil {
			stopAll()
			return nil, err
		}
		stops = append(stops, stopMetrics)
		log.Info("metrics served", zap.String("url", "http://"+addr+"/metrics"))
	}
	if f.pprofAddr != "" {
		addr, stopPprof, err := servePprof(f.pprofAddr, log)
		if err != nil {
			stopAll()
			return nil, err
		}
		stops = append(stops, stopPprof)
		log.Info("profiler served", zap.String("url", "http://"+addr+"/debug/pprof/"))
	}
	return stopAll, nil
}

// serve runs the agent's loops and answers on srv until SIGINT or
// SIGTERM.
func (r *agentRun) serve(srv *apiserver.Server, reader *bpf.EventReader, sink *events.Writer) error {
	f, log, ag := r.f, r.log, r.ag
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		ag.RunEvents(ctx, reader, sink)
	}()
	r.startLoops(ctx)
	announceReady(log, r.notifier, f.socket, r.resolver.CgroupRoot, ag.Enforcement(), r.enf.Pins(), r.started)
	err := srv.Serve(ctx)
	announceStopping(log, r.notifier)
	stop()
	<-eventsDone
	if f.pinDir != "" {
		log.Info("agent stopped; enforcement stays pinned for the next agent ("+
			"`ocigate-agentd uninstall --bpf` removes it)", zap.String("pin_dir", f.pinDir), zap.Int("workloads", ag.Registry().Len()))
	} else {
		log.Info("agent stopped; enforcement detached")
	}
	return err
}

// startLoops starts what runs beside the API until ctx ends: the periodic
// check, containerd's events, NRI, adoption and the profiles watch.
func (r *agentRun) startLoops(ctx context.Context) {
	f, log, ag := r.f, r.log, r.ag
	if f.reconcileEvery > 0 {
		go ag.RunReconcile(ctx, f.reconcileEvery)
	}
	if r.desc.Containerd != nil {
		go watchContainerd(ctx, r.desc.Containerd, ag, log)
	}
	if f.nriOn {
		go runNRI(ctx, nriplugin.New(nriAgent{ag, log}, r.resolver, log), f.nriSocket, f.nriIndex, log)
	}
	if f.adopt {
		lister := &running.Lister{RuncBinary: f.runcBinary, RuncRoots: f.runcRoots}
		if r.desc.Containerd != nil && socketExists(f.containerdSocket) {
			lister.Containerd = r.desc.Containerd
		}
		go adoptRunning(ctx, ag, lister, log)
	}
	go profilewatch.Watch(ctx, []string{f.profileDir}, func(why string) {
		c, err := profiles.NewCatalog(true, f.profileDir)
		if err == nil {
			err = ag.Reload(c)
		}
		if err != nil {
			log.Error("profiles not reloaded; the previous ones stay in force", zap.String("why", why), zap.Error(err))
		}
	}, 2*time.Second)
}

// loadError: an agent on a kernel where no point at all can enforce has
// nothing to protect with and must not run (the hooks would register
// workloads with it for nothing): it stops, and run exits non-zero. Any
// other degradation leaves it running.
func loadError(log *zap.Logger, err error) error {
	if !errors.Is(err, bpf.ErrNothingEnforces) {
		return err
	}
	log.Error("no enforcement point can attach on this kernel (each point's reason is logged above): the agent stops")
	return fmt.Errorf("the agent cannot enforce anything on this kernel: %w", err)
}

// warnStalePins: an agent run without pinning does not touch what a
// pinning agent left in the default directory, which keeps enforcing.
func warnStalePins(log *zap.Logger) {
	if entries, err := os.ReadDir(filepath.Join(bpf.DefaultPinDir, "links")); err == nil && len(entries) > 0 {
		log.Warn("programs pinned by an earlier agent still enforce; `ocigate-agentd uninstall --bpf` removes them",
			zap.String("pin_dir", bpf.DefaultPinDir), zap.Int("links", len(entries)))
	}
}

// Events file defaults: at most 6 × 100 MiB on disk.
const (
	defaultEventsMaxSize = 100 << 20
	defaultEventsBackups = 5
)

// The agent's garbage collection: every event is an allocation, most
// short-lived, so the collector runs at 3× the live heap rather than 2×,
// and harder as the heap nears 48 MiB, which keeps the agent's resident
// memory under its 64 MiB budget (`make bench`). GOGC and GOMEMLIMIT
// override.
const (
	agentGCPercent   = 200
	agentMemoryLimit = 48 << 20
)

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(agentGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(agentMemoryLimit)
	}
}

// openSink opens the events file ("-" or "": stdout, not rotated).
func openSink(path string, rot events.Rotation) (*events.Writer, error) {
	if path == "" || path == "-" {
		return events.NewWriter(os.Stdout), nil
	}
	return events.OpenFile(path, rot)
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	// An error is one line (an unavailable enforcement point, a refused
	// registration), not a Go stack trace.
	cfg.DisableStacktrace = true
	cfg.OutputPaths = []string{"stderr"}
	return cfg.Build()
}
