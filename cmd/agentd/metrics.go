package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// serveMetrics serves reg at http://addr/metrics until stop is called,
// and returns the address it listens on. Next to reg's metrics it serves
// the agent process's own, under Prometheus's standard names: the Go
// runtime's (go_*: heap, stacks, GC, goroutines) and the process's
// (process_*: resident memory, CPU, open files), which a DaemonSet's
// memory and CPU dashboards read.
func serveMetrics(addr string, reg *prometheus.Registry, log *zap.Logger) (string, func(), error) {
	self := prometheus.NewRegistry()
	self.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{reg, self}, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      zap.NewStdLog(log.Named("metrics")),
	}))
	return serveHTTP("--metrics-addr", addr, mux, log.Named("metrics"))
}

// servePprof serves Go's profiler at http://addr/debug/pprof/ (run
// --pprof-addr), to profile the agent under load.
func servePprof(addr string, log *zap.Logger) (string, func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	return serveHTTP("--pprof-addr", addr, mux, log.Named("pprof"))
}

// serveHTTP serves h on addr until stop is called, and returns the
// address it listens on.
func serveHTTP(flagName, addr string, h http.Handler, log *zap.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("%s %s: %w", flagName, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", zap.Error(err))
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	return ln.Addr().String(), stop, nil
}
