// Command eventstorm makes decision events at a given rate: each thread
// dup3()s a TCP socket onto a descriptor of its own, which a Post
// selector on dup3 (family AF_INET) reports, one event per call — the
// cheapest syscall that makes one. It runs inside a registered
// monitor-mode workload (scripts/bench-events.sh starts it with
// run-job) and prints how many events it made, in what time, and the
// CPU time it took (its syscalls and the BPF programs included).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	rate := flag.Int("rate", 0, "events per second over all threads (0: as fast as they go)")
	threads := flag.Int("threads", 1, "threads making events")
	duration := flag.Duration("duration", 5*time.Second, "how long")
	flag.Parse()
	if *threads < 1 || *rate < 0 {
		fmt.Fprintln(os.Stderr, "eventstorm: want -threads >= 1 and -rate >= 0")
		os.Exit(2)
	}
	sock, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "eventstorm: socket:", err)
		os.Exit(1)
	}
	counts := make([]uint64, *threads)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range *threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i] = storm(sock, 100+i, float64(*rate)/float64(*threads), start, *duration)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	var total uint64
	for _, c := range counts {
		total += c
	}
	// Its own CPU, the kernel's share included (the syscalls and the
	// BPF programs they run): what making the events cost.
	var ru unix.Rusage
	cpu := 0.0
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err == nil {
		cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	fmt.Printf("generated %d\nseconds %.6f\ncpu_seconds %.6f\n", total, took.Seconds(), cpu)
}

// storm dup3s sock onto fd until d has passed, at rate calls per second
// (0: unthrottled), and returns the calls that succeeded.
func storm(sock, fd int, rate float64, start time.Time, d time.Duration) uint64 {
	runtime.LockOSThread()
	const batch = 64
	var n uint64
	for {
		for range batch {
			if unix.Dup3(sock, fd, 0) == nil {
				n++
			}
		}
		elapsed := time.Since(start)
		if elapsed >= d {
			return n
		}
		if rate > 0 {
			// Ahead of the rate: wait until it catches up.
			if ahead := time.Duration(float64(n)/rate*float64(time.Second)) - elapsed; ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
}
