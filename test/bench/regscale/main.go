// Command regscale registers N workloads (5 000 by default) with a running
// agent, each on a real, empty cgroup of its own, and reports the agent's
// resident memory and the kernel memory of its BPF maps before, with all
// registered, and after unregistering them all, plus the registration
// latency. It prints markdown table rows. Needs root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
	flag.Parse()
	if err := run(*socket, *n, *par); err != nil {
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

func run(socket string, n, par int) error {
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
	mib := func(b uint64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }
	fmt.Printf("| %d registered workloads (real empty cgroups) | none registered | %d registered | all unregistered | target |\n", n, n)
	fmt.Println("|---|---|---|---|---|")
	fmt.Printf("| agent RSS (MiB, VmRSS) | %s | %s | %s | <= 64 |\n",
		mib(before["agent_rss_bytes"]), mib(with["agent_rss_bytes"]), mib(after["agent_rss_bytes"]))
	fmt.Printf("| BPF maps memory (MiB, memlock of the shared maps) | %s | %s | %s | |\n",
		mib(before["bpf_maps_bytes"]), mib(with["bpf_maps_bytes"]), mib(after["bpf_maps_bytes"]))
	fmt.Printf("| workloads map entries | %d | %d | %d | |\n",
		before["workloads_map_entries"], with["workloads_map_entries"], after["workloads_map_entries"])
	fmt.Printf("| registration round trip, %d in flight (us): p50 / p99 / max | %d | %d | %d | |\n",
		par, percentile(took, 0.5).Microseconds(), percentile(took, 0.99).Microseconds(), percentile(took, 1).Microseconds())
	if after["workloads_map_entries"] != before["workloads_map_entries"] {
		return fmt.Errorf("after unregistering: %d map entries, %d before", after["workloads_map_entries"], before["workloads_map_entries"])
	}
	return nil
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
