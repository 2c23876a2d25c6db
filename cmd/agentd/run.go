package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
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
	"github.com/ocigate/ocigate/profiles"
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
	pprofAddr := fs.String("pprof-addr", "", "serve Go's profiler at http://ADDR/debug/pprof/, e.g. 127.0.0.1:6060 (empty: off)")
	bpfStats := fs.Bool("bpf-stats", false, "turn on the kernel's BPF run time accounting while the agent runs (ocigate_bpf_program_*; costs a little per program run)")
	if err := fs.Parse(args); err != nil {
		return err
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
	enf, err := bpf.Load(bpf.Options{CgroupRoot: root, Enforcer: *enforcer, Logger: log})
	if err != nil {
		return err
	}
	defer enf.Close()
	catalog, err := profiles.NewCatalog(true, *profileDir)
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	ag, err := agent.New(agent.Config{Enforcer: enf, Catalog: catalog, Resolver: resolver, Logger: log,
		SinkTypes: eventsTypes})
	if err != nil {
		return err
	}
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
	go profilewatch.Watch(ctx, []string{*profileDir}, func(why string) {
		c, err := profiles.NewCatalog(true, *profileDir)
		if err == nil {
			err = ag.Reload(c)
		}
		if err != nil {
			log.Error("profiles not reloaded; the previous ones stay in force", zap.String("why", why), zap.Error(err))
		}
	}, 2*time.Second)
	log.Info("agent ready", zap.String("socket", *socket), zap.String("cgroup_root", root), zap.Int("pid", os.Getpid()))
	err = srv.Serve(ctx)
	stop()
	<-eventsDone
	log.Info("agent stopped; enforcement detached")
	return err
}

// Events file defaults: at most 6 × 100 MiB on disk.
const (
	defaultEventsMaxSize = 100 << 20
	defaultEventsBackups = 5
)

// The agent's garbage collection: every event is an allocation, most
// short-lived, so the collector runs at 5× the live heap rather than 2×,
// and harder as the heap nears 256 MiB. GOGC and GOMEMLIMIT override.
const (
	agentGCPercent   = 400
	agentMemoryLimit = 256 << 20
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
	cfg.OutputPaths = []string{"stderr"}
	return cfg.Build()
}
