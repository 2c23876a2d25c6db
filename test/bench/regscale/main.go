// Command regscale registers N workloads (5 000 by default) with a running
// agent, each on a real, empty cgroup of its own, and reports the agent's
// resident memory and the kernel memory of its BPF maps before, with all
// registered, and after unregistering them all, plus the registration
// latency. It prints markdown table rows. With --pprof (the agent's
// --pprof-addr) it saves the agent's heap profile, taken after a
// collection while all N are registered, to --heap-out. With --metrics
// (the agent's --metrics-addr) it breaks the agent's Go memory down from
// its go_memstats_* metrics, which an agent without the profiler serves
// too. Needs root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
)

func main() {
	socket := flag.String("socket", api.DefaultSocket, "agent socket")
	n := flag.Int("n", 5000, "workloads")
	par := flag.Int("parallel", 8, "registrations in flight")
	pprofAddr := flag.String("pprof", "", "the agent's --pprof-addr (host:port): save its heap profile with all registered")
	heapOut := flag.String("heap-out", "regscale-heap.pb.gz", "where --pprof's heap profile goes")
	pid := flag.Int("pid", 0, "the agent's pid: break its resident memory down by mapping with all registered")
	metricsAddr := flag.String("metrics", "", "the agent's --metrics-addr (host:port): break its Go memory down from go_memstats_*")
	flag.Parse()
	heap := func() error {
		if *pid > 0 {
			if err := rssByMapping(*pid); err != nil {
				return err
			}
		}
		if *metricsAddr != "" {
			if err := metricsMemory(*metricsAddr); err != nil {
				return err
			}
		}
		if *pprofAddr != "" {
			return saveHeap(*pprofAddr, *heapOut)
		}
		return nil
	}
	if err := run(*socket, *n, *par, heap); err != nil {
		fmt.Fprintln(os.Stderr, "regscale:", err)
		os.Exit(1)
	}
}

func counters(socket string) (map[string]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := api.Call(ctx, socket, &api.Request{Op: api.OpStatus, Status: &api.StatusOptions{Summary: true}})
	if err != nil {
		return nil, err
	}
	return resp.Status.Counters, nil
}

// rssRow is the agent's resident memory by kind of mapping, a line
// printed after the table.
var rssRow string

// rssByMapping reads /proc/PID/smaps into rssRow: the binary's pages,
// anonymous memory (the Go heap, stacks and runtime), BPF maps mapped
// into the agent (the ring buffer, its data pages mapped once),
// and the rest.
func rssByMapping(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return err
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	kb := map[string]uint64{}
	kind := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			kind = "anonymous"
			if len(f) >= 6 {
				kind = "other"
				switch name := strings.Join(f[5:], " "); {
				case name == exe:
					kind = "binary"
				case strings.HasPrefix(name, "anon_inode:bpf"):
					kind = "bpf"
				case strings.HasPrefix(name, "["):
					kind = "anonymous"
				}
			}
		case len(f) == 3 && f[0] == "Rss:":
			v, _ := strconv.ParseUint(f[1], 10, 64)
			kb[kind] += v
		}
	}
	rssKiB = kb
	m := func(k string) string { return fmt.Sprintf("%.1f", float64(kb[k])/1024) }
	rssRow = fmt.Sprintf("\nThe agent's RSS with all registered, settled, by mapping (MiB): its binary %s, anonymous memory (Go heap, stacks, runtime) %s, "+
		"BPF maps mapped into it (the ring buffer: its data pages, the consumer and producer pages) %s, other %s.\n", m("binary"), m("anonymous"), m("bpf"), m("other"))
	return nil
}

// memRow is the agent's Go memory, from its runtime.MemStats, a line
// printed after the table.
var memRow string

// rssKiB is the agent's RSS by kind of mapping (rssByMapping), goStats
// its runtime.MemStats (metricsMemory): floorRow's parts.
var (
	rssKiB  map[string]uint64
	goStats map[string]float64
)

// floorRow says what of the agent's idle RSS it cannot give back: the
// executable's pages, the ring buffer, the live heap, stacks and the
// runtime's metadata; the rest is free heap and fragmentation. The
// memory profiler's bucket table (BuckHashSys) is left out of the
// metadata: it is mapped at the first sampled allocation, in every Go
// program, and only the pages its entries touch are resident.
func floorRow() string {
	if rssKiB == nil || goStats == nil {
		return ""
	}
	st := goStats
	parts := []float64{float64(rssKiB["binary"]) / 1024, float64(rssKiB["bpf"]) / 1024, st["HeapAlloc"] / (1 << 20), st["Stack"] / (1 << 20),
		(st["GCSys"] + st["MSpan"] + st["MCache"] + st["OtherSys"]) / (1 << 20)}
	sum := 0.0
	for _, p := range parts {
		sum += p
	}
	return fmt.Sprintf("What it cannot give back while it runs (MiB): its binary %.1f (file-backed, shared with the page cache), the ring buffer %.1f, "+
		"the live heap %.1f (what the heap holds at the reading, some of it garbage until the next collection), stacks %.1f, runtime metadata %.1f "+
		"(besides the memory profiler's bucket table, %.1f mapped, resident only where touched): %.1f in all; the rest of its RSS is free heap and fragmentation.\n",
		parts[0], parts[1], parts[2], parts[3], parts[4], st["BuckHashSys"]/(1<<20), sum)
}

// memstatsMetrics names the go_memstats_* metric of each MemStats field
// memRow and floorRow use (for pairs such as Stack, the in-use one).
var memstatsMetrics = map[string]string{
	"go_memstats_heap_alloc_bytes": "HeapAlloc", "go_memstats_heap_idle_bytes": "HeapIdle",
	"go_memstats_heap_released_bytes": "HeapReleased", "go_memstats_heap_inuse_bytes": "HeapInuse",
	"go_memstats_stack_inuse_bytes": "Stack", "go_memstats_gc_sys_bytes": "GCSys",
	"go_memstats_mspan_inuse_bytes": "MSpan", "go_memstats_mcache_inuse_bytes": "MCache",
	"go_memstats_buck_hash_sys_bytes": "BuckHashSys", "go_memstats_other_sys_bytes": "OtherSys",
}

// metricsMemory reads the agent's Go memory (runtime.MemStats) from its
// go_memstats_* metrics into goStats and memRow: the live heap, free heap
// the runtime holds, stacks, and the runtime's own metadata.
func metricsMemory(addr string) error {
	c := http.Client{Timeout: 30 * time.Second}
	b, err := get(&c, "http://"+addr+"/metrics")
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	st := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && memstatsMetrics[f[0]] != "" {
			st[memstatsMetrics[f[0]]], _ = strconv.ParseFloat(f[1], 64)
		}
	}
	if len(st) != len(memstatsMetrics) {
		return fmt.Errorf("metrics: %d of the %d go_memstats_* metrics wanted", len(st), len(memstatsMetrics))
	}
	goStats = st
	m := func(v float64) string { return fmt.Sprintf("%.1f", v/(1<<20)) }
	memRow = fmt.Sprintf("Its Go memory (runtime.MemStats, MiB): live heap %s, free heap kept (not returned) %s, "+
		"stacks %s, runtime metadata %s.\n", m(st["HeapAlloc"]), m(st["HeapIdle"]-st["HeapReleased"]+st["HeapInuse"]-st["HeapAlloc"]),
		m(st["Stack"]), m(st["GCSys"]+st["MSpan"]+st["MCache"]+st["BuckHashSys"]+st["OtherSys"]))
	return nil
}

// get returns the body of a GET of url that answered 200.
func get(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// saveHeap saves the agent's heap profile (after a collection) to out.
func saveHeap(addr, out string) error {
	c := http.Client{Timeout: 30 * time.Second}
	b, err := get(&c, "http://"+addr+"/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return os.WriteFile(out, b, 0o644)
}

// settle is how long after the registrations the agent's idle memory
// is read (internal/memtrim looks every second).
const settle = 5 * time.Second

func run(socket string, n, par int, heap func() error) error {
	root, err := cgroupfilter.V2Mount()
	if err != nil {
		return err
	}
	parent := fmt.Sprintf("/ocigate-regscale-%d", os.Getpid())
	if err := os.Mkdir(filepath.Join(root, parent), 0o755); err != nil {
		return err
	}
	regs := make([]*api.Registration, n)
	defer func() {
		for _, r := range regs {
			if r != nil {
				os.Remove(filepath.Join(root, r.Identity.CgroupPath))
			}
		}
		os.Remove(filepath.Join(root, parent))
	}()
	for i := range regs {
		path := fmt.Sprintf("%s/w%d", parent, i)
		if err := os.Mkdir(filepath.Join(root, path), 0o755); err != nil {
			return err
		}
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil {
			return err
		}
		regs[i] = &api.Registration{ContainerID: fmt.Sprintf("regscale-%d-%d", os.Getpid(), i), Runtime: "regscale",
			Annotations: map[string]string{"io.kubernetes.cri.container-name": fmt.Sprintf("w%d", i)},
			Identity:    api.Identity{CgroupID: fi.Sys().(*syscall.Stat_t).Ino, CgroupPath: path}}
	}
	before, err := counters(socket)
	if err != nil {
		return err
	}
	took, err := each(regs, par, func(r *api.Registration) error {
		_, err := call(socket, &api.Request{Op: api.OpRegister, Register: r})
		return err
	})
	if err != nil {
		return err
	}
	with, err := counters(socket)
	if err != nil {
		return err
	}
	if with["workloads_map_entries"] < uint64(n) {
		return fmt.Errorf("%d workloads registered, the map holds %d", n, with["workloads_map_entries"])
	}
	// The agent gives the heap's free memory back once a burst is over
	// (internal/memtrim): what it keeps while idle, a few seconds later.
	time.Sleep(settle)
	settled, err := counters(socket)
	if err != nil {
		return err
	}
	with["agent_rss_settled_bytes"] = settled["agent_rss_bytes"]
	if err := heap(); err != nil {
		return err
	}
	if _, err := each(regs, par, func(r *api.Registration) error {
		_, err := call(socket, &api.Request{Op: api.OpUnregister, Unregister: &api.Unregistration{ContainerID: r.ContainerID}})
		return err
	}); err != nil {
		return err
	}
	after, err := counters(socket)
	if err != nil {
		return err
	}
	printTable(n, par, took, before, with, after)
	fmt.Print(rssRow)
	fmt.Print(memRow)
	fmt.Print(floorRow())
	if after["workloads_map_entries"] != before["workloads_map_entries"] {
		return fmt.Errorf("after unregistering: %d map entries, %d before", after["workloads_map_entries"], before["workloads_map_entries"])
	}
	return nil
}

// printTable prints the table rows of a run.
func printTable(n, par int, took []time.Duration, before, with, after map[string]uint64) {
	mib := func(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }
	fmt.Printf("| %d registered workloads (real empty cgroups) | none registered | %d registered | all unregistered | target |\n", n, n)
	fmt.Println("|---|---|---|---|---|")
	fmt.Printf("| agent RSS (MiB, VmRSS), at once | %s | %s | %s | |\n",
		mib(before["agent_rss_bytes"]), mib(with["agent_rss_bytes"]), mib(after["agent_rss_bytes"]))
	fmt.Printf("| agent RSS (MiB, VmRSS), %s after the registrations | | %s | | <= 48 |\n", settle, mib(with["agent_rss_settled_bytes"]))
	fmt.Printf("| process cache entries | %d | %d | %d | |\n",
		before["process_cache_entries"], with["process_cache_entries"], after["process_cache_entries"])
	fmt.Printf("| BPF maps memory (MiB, memlock of the shared maps) | %s | %s | %s | |\n",
		mib(before["bpf_maps_bytes"]), mib(with["bpf_maps_bytes"]), mib(after["bpf_maps_bytes"]))
	fmt.Printf("| workloads map entries | %d | %d | %d | |\n",
		before["workloads_map_entries"], with["workloads_map_entries"], after["workloads_map_entries"])
	fmt.Printf("| registration round trip, %d in flight (us): p50 / p99 / max | %d | %d | %d | |\n",
		par, percentile(took, 0.5).Microseconds(), percentile(took, 0.99).Microseconds(), percentile(took, 1).Microseconds())
}

func call(socket string, req *api.Request) (*api.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return api.Call(ctx, socket, req)
}

// each runs f over regs, par at a time, and returns each call's time.
func each(regs []*api.Registration, par int, f func(*api.Registration) error) ([]time.Duration, error) {
	took := make([]time.Duration, len(regs))
	errs := make([]error, len(regs))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				start := time.Now()
				errs[i] = f(regs[i])
				took[i] = time.Since(start)
			}
		}()
	}
	for i := range regs {
		next <- i
	}
	close(next)
	wg.Wait()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	return took, errors.Join(errs...)
}

func percentile(d []time.Duration, p float64) time.Duration {
	i := int(float64(len(d))*p+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}
