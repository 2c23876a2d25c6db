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
	"github.com/ocigate/ocigate/internal/hostfs"
	"github.com/ocigate/ocigate/internal/profilewatch"
	"github.com/ocigate/ocigate/internal/workloadstate"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/runtime/containerd"
	"github.com/ocigate/ocigate/runtime/describe"
	"github.com/ocigate/ocigate/runtime/nriplugin"
	"github.com/ocigate/ocigate/runtime/running"
)

func runAgent(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	socket := fs.String("socket", api.DefaultSocket, "API socket path")
	eventsFile := fs.String("events-file", "", "append events to this file; - or empty: stdout")
	eventsMaxSize := byteSize(defaultEventsMaxSize)
	fs.Var(&eventsMaxSize, "events-max-size", "rotate the events file before it grows past this size (KiB, MiB, GiB); 0: never")
	eventsBackups := fs.Int("events-max-backups", defaultEventsBackups, "rotated events files kept (PATH.1 newest … PATH.N)")
	var eventsTypes listFlag
	fs.Var(&eventsTypes, "events-types", "event types the events file gets: "+strings.Join(events.Types, ", ")+" (repeat or comma-separate; default all)")
	cgroupRoot := fs.String("cgroup-root", "", "cgroup v2 mount (default: detected)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	enforcer := fs.String("enforcer", bpf.BackendAuto, "auto (best per point: lsm > fmod_ret > fallback), lsm, fmod_ret or fallback")
	profileDir := fs.String("profiles", defaultProfileDir, "directory of WorkloadProfile and TracingPolicy YAML files, watched for changes")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9743 (empty: off)")
	containerdSocket := fs.String("containerd-socket", containerd.DefaultSocket, "containerd's API socket, asked for the image of its containers (empty: never asked)")
	adopt := fs.Bool("adopt", true, "at start, register the containers already running (containerd, --runc-roots), marked adopted")
	var runcRoots stringList = []string{"/run/runc"}
	fs.Var(&runcRoots, "runc-roots", "comma-separated runc state roots whose containers are adopted at start (default /run/runc: runc's and podman's; empty: none)")
	runcBinary := fs.String("runc", "runc", "the runc binary used to list --runc-roots")
	nriOn := fs.Bool("nri", false, "also serve as an NRI plugin (containerd >= 1.7, CRI-O): register at StartContainer, unregister at stop/remove, adopt at connect")
	nriSocket := fs.String("nri-socket", "/var/run/nri/nri.sock", "the runtime's NRI socket")
	nriIndex := fs.String("nri-index", "10", "the plugin's NRI index (order among plugins)")
	reconcileEvery := fs.Duration("reconcile-interval", 3*time.Second, "how often to drop workloads whose container is gone without poststop (cgroup removed, or empty on two checks); 0: never")
	pprofAddr := fs.String("pprof-addr", "", "serve Go's profiler at http://ADDR/debug/pprof/, e.g. 127.0.0.1:6060 (empty: off)")
	bpfStats := fs.Bool("bpf-stats", false, "turn on the kernel's BPF run time accounting while the agent runs (ocigate_bpf_program_*; costs a little per program run)")
	pinDir := fs.String("pin-dir", bpf.DefaultPinDir, "bpffs directory where maps and links stay pinned, so that enforcement outlives the agent and a restarted agent takes it over (empty: detach everything on exit)")
	stateDir := fs.String("state-dir", workloadstate.DefaultDir, "directory of the workload records a restarted agent reads (with --pin-dir)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *reconcileEvery < 0 {
		return fmt.Errorf("--reconcile-interval %v: want 0 (off) or a positive duration", *reconcileEvery)
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	defer log.Sync()
	tuneGC()

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
	resolver := cgroupfilter.Resolver{CgroupRoot: *cgroupRoot}
	root, err := resolver.Root()
	if err != nil {
		return err
	}
	resolver.CgroupRoot = root
	if *pinDir == "" {
		warnStalePins(log)
	}
	enf, err := bpf.Load(bpf.Options{CgroupRoot: root, Enforcer: *enforcer, Logger: log, PinDir: *pinDir})
	if err != nil {
		return loadError(log, err)
	}
	defer enf.Close()
	var state *workloadstate.Store
	if *pinDir != "" {
		if state, err = workloadstate.Open(*stateDir); err != nil {
			return err
		}
	}
	catalog, err := profiles.NewCatalog(true, *profileDir)
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	desc := &describe.Describer{}
	if *containerdSocket != "" {
		desc.Containerd = containerd.New(*containerdSocket)
		defer desc.Containerd.Close()
	}
	ag, err := agent.New(agent.Config{Enforcer: enf, Catalog: catalog, Resolver: resolver, Logger: log, Describer: desc, State: state,
		SinkTypes: eventsTypes})
	if err != nil {
		return err
	}
	// Loading parsed the objects and the kernel's BTF: give the memory
	// that took back before the long run starts.
	debug.FreeOSMemory()
	if *bpfStats {
		closer, err := bpf.EnableStats()
		if err != nil {
			return err
		}
		defer closer.Close()
	}
	if *metricsAddr != "" {
		addr, stopMetrics, err := serveMetrics(*metricsAddr, ag.Metrics(), log)
		if err != nil {
			return err
		}
		defer stopMetrics()
		log.Info("metrics served", zap.String("url", "http://"+addr+"/metrics"))
	}
	if *pprofAddr != "" {
		addr, stopPprof, err := servePprof(*pprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
		log.Info("profiler served", zap.String("url", "http://"+addr+"/debug/pprof/"))
	}
	sink, err := openSink(*eventsFile, events.Rotation{MaxSize: int64(eventsMaxSize), MaxBackups: *eventsBackups})
	if err != nil {
		return err
	}
	defer sink.Close()
	reader, err := enf.NewEventReader()
	if err != nil {
		return err
	}
	srv, err := apiserver.Listen(*socket, ag, log)
	if err != nil {
		return err
	}
	defer os.Remove(*socket)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		ag.RunEvents(ctx, reader, sink)
	}()
	if *reconcileEvery > 0 {
		go ag.RunReconcile(ctx, *reconcileEvery)
	}
	if desc.Containerd != nil {
		go watchContainerd(ctx, desc.Containerd, ag, log)
	}
	if *nriOn {
		go runNRI(ctx, nriplugin.New(nriAgent{ag, log}, resolver, log), *nriSocket, *nriIndex, log)
	}
	if *adopt {
		lister := &running.Lister{RuncBinary: *runcBinary, RuncRoots: runcRoots}
		if desc.Containerd != nil && socketExists(*containerdSocket) {
			lister.Containerd = desc.Containerd
		}
		go adoptRunning(ctx, ag, lister, log)
	}
	go profilewatch.Watch(ctx, []string{*profileDir}, func(why string) {
		c, err := profiles.NewCatalog(true, *profileDir)
		if err == nil {
			err = ag.Reload(c)
		}
		if err != nil {
			log.Error("profiles not reloaded; the previous ones stay in force", zap.String("why", why), zap.Error(err))
		}
	}, 2*time.Second)
	log.Info("agent ready", zap.String("socket", *socket), zap.String("cgroup_root", root), zap.Int("pid", os.Getpid()),
		zap.String("enforcement", ag.Enforcement()))
	err = srv.Serve(ctx)
	stop()
	<-eventsDone
	if *pinDir != "" {
		log.Info("agent stopped; enforcement stays pinned for the next agent ("+
			"`ocigate-agentd uninstall --bpf` removes it)", zap.String("pin_dir", *pinDir), zap.Int("workloads", ag.Registry().Len()))
	} else {
		log.Info("agent stopped; enforcement detached")
	}
	return err
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
