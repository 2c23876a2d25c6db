// Command interleave times commands side by side: each round runs every
// command once, in an order shuffled anew each round, so that load that
// comes and goes on a shared machine falls on all of them alike, and so
// does whatever one command leaves behind for the next (a rotation would
// have each command follow the same one almost every round: after a
// hooked `runc run`, the agent's late work). It prints each command's
// median, mean and p90 in microseconds, one line per command:
//
//	NAME median_us MEDIAN mean_us MEAN p90_us P90
//
// A command that fails stops the run with its output.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 30, "rounds")
	warmup := flag.Int("warmup", 3, "rounds run first and not counted")
	seed := flag.Uint64("seed", 1, "seed of the rounds' orders (the same seed, the same orders)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: interleave [-n N] [-warmup W] NAME=COMMAND... (COMMAND split on spaces)")
		flag.PrintDefaults()
	}
	flag.Parse()
	cmds, err := parse(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "interleave:", err)
		os.Exit(2)
	}
	times, err := run(cmds, *n, *warmup, rand.New(rand.NewPCG(*seed, 0)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "interleave:", err)
		os.Exit(1)
	}
	for i, c := range cmds {
		med, mean, p90 := stats(times[i])
		fmt.Printf("%s median_us %d mean_us %d p90_us %d\n", c.name, med.Microseconds(), mean.Microseconds(), p90.Microseconds())
	}
}

type command struct {
	name string
	argv []string
}

// parse reads NAME=COMMAND arguments.
func parse(args []string) ([]command, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no command given")
	}
	var cmds []command
	for _, a := range args {
		name, line, ok := strings.Cut(a, "=")
		argv := strings.Fields(line)
		if !ok || name == "" || len(argv) == 0 {
			return nil, fmt.Errorf("%q: want NAME=COMMAND", a)
		}
		cmds = append(cmds, command{name, argv})
	}
	return cmds, nil
}

// run runs warmup+n rounds, each in an order rnd shuffles, and returns
// each command's times of the counted rounds.
func run(cmds []command, n, warmup int, rnd *rand.Rand) ([][]time.Duration, error) {
	times := make([][]time.Duration, len(cmds))
	order := make([]int, len(cmds))
	for i := range order {
		order[i] = i
	}
	for r := 0; r < warmup+n; r++ {
		rnd.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, i := range order {
			d, err := timed(cmds[i].argv)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", cmds[i].name, err)
			}
			if r >= warmup {
				times[i] = append(times[i], d)
			}
		}
	}
	return times, nil
}

// timed runs argv with no input and returns how long it took.
func timed(argv []string) (time.Duration, error) {
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%w: %s", err, out.String())
	}
	return d, nil
}

// stats are the median, mean and 90th percentile of ds.
func stats(ds []time.Duration) (med, mean, p90 time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return s[len(s)/2], sum / time.Duration(len(s)), s[len(s)*9/10]
}
