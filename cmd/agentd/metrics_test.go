package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func TestServeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "ocigate_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	addr, stop, err := serveMetrics("127.0.0.1:0", reg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "ocigate_test_total 3") {
		t.Fatalf("%s: %s", resp.Status, b)
	}
	// The agent process's own: what memory dashboards and make bench read.
	for _, name := range []string{"go_memstats_heap_alloc_bytes ", "go_memstats_stack_inuse_bytes ", "go_goroutines ",
		"process_resident_memory_bytes ", "process_cpu_seconds_total "} {
		if !strings.Contains(string(b), "\n"+name) {
			t.Errorf("no %s in /metrics", strings.TrimSpace(name))
		}
	}
	if resp, err := http.Get("http://" + addr + "/"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("/ answered %v, %v", resp, err)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Fatal("metrics still served after stop")
	}
	if _, _, err := serveMetrics("127.0.0.1:bad", reg, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "--metrics-addr 127.0.0.1:bad") {
		t.Fatalf("bad address: %v", err)
	}
}

func TestServePprof(t *testing.T) {
	addr, stop, err := servePprof("127.0.0.1:0", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "goroutine profile") {
		t.Fatalf("%s: %.200s", resp.Status, b)
	}
	if _, _, err := servePprof("127.0.0.1:bad", zap.NewNop()); err == nil || !strings.Contains(err.Error(), "--pprof-addr") {
		t.Fatalf("bad address: %v", err)
	}
}
