package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/agent"
	"github.com/ocigate/ocigate/internal/agentconfig"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/apiserver"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/hostfs"
	"github.com/ocigate/ocigate/internal/memtrim"
	"github.com/ocigate/ocigate/internal/profilewatch"
	"github.com/ocigate/ocigate/internal/sdnotify"
	"github.com/ocigate/ocigate/internal/workloadstate"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/runtime/containerd"
	"github.com/ocigate/ocigate/runtime/describe"
	"github.com/ocigate/ocigate/runtime/nriplugin"
	"github.com/ocigate/ocigate/runtime/running"
)

// agentRun is what a running agent's loops share.
type agentRun struct {
	cfg      agentconfig.Config
	log      *zap.Logger
	enf      *enforcer.Enforcer
	ag       *agent.Agent
	desc     *describe.Describer
	resolver cgroupfilter.Resolver
	notifier *sdnotify.Notifier
	started  time.Time
}

// startAgent runs.
func runAgent(args []string, stderr io.Writer) error {
	cfg, err := agentconfig.Parse(args, stderr)
	if err != nil {
		return err
	}
	return startAgent(cfg)
}

// startAgent runs an agent with cfg, refused unless valid. It loads
// everything the agent enforces with — programs attached, profiles
// compiled into the maps, pinned workloads restored — and only then
// creates the API socket: an agent that answers (status --wait, hooks) is
// ready. It returns when the agent stops.
func startAgent(cfg agentconfig.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	r := &agentRun{cfg: cfg, started: processStart()}
	lvl, err := cfg.Level()
	if err != nil {
		return err
	}
	if r.log, err = newLogger(lvl, cfg.LogFormat); err != nil {
		return err
	}
	defer r.log.Sync()
	if r.notifier, err = sdnotify.FromEnv(); err != nil {
		r.log.Warn("the service manager is not told when the agent is ready", zap.Error(err))
	}
	tuneGC()
	profileMemory(cfg.PprofAddr)
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
	stopDiagnostics, err := startDiagnostics(cfg, r.ag, r.log)
	if err != nil {
		return err
	}
	defer stopDiagnostics()
	sink, err := openSink(cfg.EventsFile, events.Rotation{MaxSize: cfg.EventsMaxSize, MaxBackups: cfg.EventsMaxBackups})
	if err != nil {
		return err
	}
	defer sink.Close()
	reader, err := r.enf.NewEventReader()
	if err != nil {
		return err
	}
	// A marker an agent that died left says nothing of this one's NRI
	// plugin: gone before the socket listens (api.NRIMarker).
	if err := nriLink(cfg.Socket, nil, r.log).disconnected(); err != nil {
		return err
	}
	srv, err := apiserver.Listen(cfg.Socket, r.ag, r.log)
	if err != nil {
		return err
	}
	defer os.Remove(cfg.Socket)
	defer os.Remove(api.NRIMarker(cfg.Socket))
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
	cfg := r.cfg
	r.resolver = cgroupfilter.Resolver{CgroupRoot: cfg.CgroupRoot}
	root, err := r.resolver.Root()
	if err != nil {
		return err
	}
	r.resolver.CgroupRoot = root
	if cfg.PinDir == "" {
		warnStalePins(r.log)
	}
	if r.enf, err = enforcer.Load(enforcer.Options{CgroupRoot: root, Enforcer: cfg.Enforcer, Logger: r.log, PinDir: cfg.PinDir}); err != nil {
		return loadError(r.log, err)
	}
	r.desc = &describe.Describer{DockerRoot: cfg.DockerRoot}
	if cfg.ContainerdSocket != "" {
		r.desc.Containerd = containerd.New(cfg.ContainerdSocket)
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
	if cfg.PinDir != "" {
		if state, err = workloadstate.Open(cfg.StateDir); err != nil {
			return err
		}
	}
	catalog, err := profiles.NewCatalog(true, cfg.ProfileDir)
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	r.ag, err = agent.New(agent.Config{Enforcer: r.enf, Catalog: catalog, Resolver: r.resolver, Logger: r.log, Describer: r.desc,
		State: state, SinkTypes: cfg.EventsTypes, ReaderNice: cfg.EventsReaderNice, TrustedAnnotations: cfg.TrustedAnnotations, HookReports: cfg.HookReports})
	return err
}

// startDiagnostics turns on what --bpf-stats, --metrics-addr and
// --pprof-addr ask for; stop turns it off.
func startDiagnostics(cfg agentconfig.Config, ag *agent.Agent, log *zap.Logger) (func(), error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	if cfg.BPFStats {
		closer, err := enforcer.EnableStats()
		if err != nil {
			return nil, err
		}
		stops = append(stops, func() { closer.Close() })
	}
	if cfg.MetricsAddr != "" {
		addr, stopMetrics, err := serveMetrics(cfg.MetricsAddr, ag.Metrics(), log)
		if err != nil {
			stopAll()
			return nil, err
		}
		stops = append(stops, stopMetrics)
		log.Info("metrics served", zap.String("url", "http://"+addr+"/metrics"))
	}
	if cfg.PprofAddr != "" {
		addr, stopPprof, err := servePprof(cfg.PprofAddr, log)
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
func (r *agentRun) serve(srv *apiserver.Server, reader *record.Reader, sink *events.Writer) error {
	cfg, log, ag := r.cfg, r.log, r.ag
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		ag.RunEvents(ctx, reader, sink)
	}()
	r.startLoops(ctx)
	go reopenOnSIGUSR1(ctx, sink, cfg.EventsFile, log)
	announceReady(log, r.notifier, cfg.Socket, r.resolver.CgroupRoot, ag.Enforcement(), r.enf.Pins(), r.started)
	err := srv.Serve(ctx)
	announceStopping(log, r.notifier)
	stop()
	<-eventsDone
	if cfg.PinDir != "" {
		log.Info("agent stopped; enforcement stays pinned for the next agent ("+
			"`ocigate-agentd uninstall --bpf` removes it)", zap.String("pin_dir", cfg.PinDir), zap.Int("workloads", ag.Registry().Len()))
	} else {
		log.Info("agent stopped; enforcement detached")
	}
	return err
}

// busyEventRate is the rate of written events (per second) above which
// the heap is not trimmed: a trim's pause would fill the queues.
const busyEventRate = 1000

// eventsFlowing reports, at each call, whether the agent wrote events at
// busyEventRate or more since the last call.
func eventsFlowing(st *agent.Stats) func() bool {
	last, at := st.EventsWritten.Load(), time.Now()
	return func() bool {
		n, now := st.EventsWritten.Load(), time.Now()
		rate := float64(n-last) / now.Sub(at).Seconds()
		last, at = n, now
		return rate >= busyEventRate
	}
}

// startLoops starts what runs beside the API until ctx ends: the cgroup
// watch, the periodic check, containerd's events, NRI, adoption, the
// profiles watch, and the return of the heap's free memory after bursts.
func (r *agentRun) startLoops(ctx context.Context) {
	cfg, log, ag := r.cfg, r.log, r.ag
	go ag.RunCgroupWatch(ctx)
	go (&memtrim.Trimmer{Busy: eventsFlowing(ag.Stats())}).Run(ctx)
	if cfg.ReconcileInterval > 0 {
		go ag.RunReconcile(ctx, cfg.ReconcileInterval)
	}
	if r.desc.Containerd != nil {
		go watchContainerd(ctx, r.desc.Containerd, ag, log)
	}
	if cfg.NRI {
		ag.Stats().NRIEnabled.Store(true)
		link := nriLink(cfg.Socket, &ag.Stats().NRIConnected, log)
		go runNRI(ctx, nriplugin.New(nriAgent{ag, link, log}, r.resolver, log), link, cfg.NRISocket, cfg.NRIIndex, log)
	}
	if cfg.Adopt {
		lister := &running.Lister{RuncBinary: cfg.RuncBinary, RuncRoots: cfg.RuncRoots}
		if r.desc.Containerd != nil && socketExists(cfg.ContainerdSocket) {
			lister.Containerd = r.desc.Containerd
		}
		go adoptRunning(ctx, ag, lister, log)
	}
	go profilewatch.Watch(ctx, []string{cfg.ProfileDir}, func(why string) {
		c, err := profiles.NewCatalog(true, cfg.ProfileDir)
		if err == nil {
			err = ag.Reload(c)
		}
		if err != nil {
			log.Error("profiles not reloaded; the previous ones stay in force", zap.String("why", why), zap.Error(err))
		}
	}, 2*time.Second)
}

// reopenOnSIGUSR1 reopens the events file at its path at each SIGUSR1
// until ctx ends: logrotate renames the file, then signals, and the
// events go on in a new file at the path.
func reopenOnSIGUSR1(ctx context.Context, sink *events.Writer, path string, log *zap.Logger) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigs:
		}
		if err := sink.Reopen(); err != nil {
			log.Error("events file not reopened; events go on to the file open before", zap.String("path", path), zap.Error(err))
			continue
		}
		log.Info("events file reopened (SIGUSR1)", zap.String("path", path))
	}
}

// loadError returns err, said plainly when no point at all can enforce
// on this kernel: such an agent has nothing to protect with and must not
// run (the hooks would register workloads with it for nothing), so it
// stops and run exits non-zero. Any other degradation leaves it running.
func loadError(log *zap.Logger, err error) error {
	if !errors.Is(err, enforcer.ErrNothingEnforces) {
		return err
	}
	log.Error("no enforcement point can attach on this kernel (each point's reason is logged above): the agent stops")
	return fmt.Errorf("the agent cannot enforce anything on this kernel: %w", err)
}

// warnStalePins warns of what a pinning agent left in the default
// directory: an agent run without pinning does not touch it, and it keeps
// enforcing.
func warnStalePins(log *zap.Logger) {
	if entries, err := os.ReadDir(filepath.Join(enforcer.DefaultPinDir, "links")); err == nil && len(entries) > 0 {
		log.Warn("programs pinned by an earlier agent still enforce; `ocigate-agentd uninstall --bpf` removes them",
			zap.String("pin_dir", enforcer.DefaultPinDir), zap.Int("links", len(entries)))
	}
}

// The agent's garbage collection: Go's default target (the heap grows
// to twice the live heap between collections), and harder as the heap
// nears 48 MiB. It was 3x: every event is an allocation, most
// short-lived, but `make bench` profiles the collector at 2-4 % of one
// CPU at 300 000-400 000 events/s, while with 3x the agent's anonymous
// memory was 40 MiB for a live heap of 14 (pprof) with 5 000 workloads
// and a process cache of 32 000 entries. GOGC and GOMEMLIMIT override.
const (
	agentGCPercent   = 100
	agentMemoryLimit = 48 << 20
)

// memProfileRate is Go's default runtime.MemProfileRate.
const memProfileRate = 512 * 1024

// profileMemory turns memory profiling on (main turned it off) when
// the profiler is served (--pprof-addr): heap profiles then show what
// was allocated from the agent's start on, not the packages' init.
func profileMemory(pprofAddr string) {
	if pprofAddr != "" {
		runtime.MemProfileRate = memProfileRate
	}
}

// tuneGC sets the collector's target and memory limit unless GOGC and
// GOMEMLIMIT do.
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

// newLogger returns the agent's logger: lines on stderr from lvl up, as
// format says (console or json).
func newLogger(lvl zapcore.Level, format string) (*zap.Logger, error) {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Encoding = format
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	// An error is one line (an unavailable enforcement point, a refused
	// registration), not a Go stack trace.
	cfg.DisableStacktrace = true
	cfg.OutputPaths = []string{"stderr"}
	return cfg.Build()
}
