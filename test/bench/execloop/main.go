// Command execloop measures fork+exec: it runs a program N times and
// prints the mean ns per run. Built static and run inside containers by
// scripts/bench.sh, enforced and not, side by side.
//
// With "serve" for N it measures in bursts, for a caller that runs
// several such containers at once and takes a burst from each in turn:
// it warms up, then for each count K it reads on stdin runs the program
// K/20 times more to warm up and K times timed, and prints the timed
// runs' mean ns per run on stdout. It stops at the end of its input.
// Bursts a fraction of a second long, adjacent in time, are compared
// under the same state of the machine, where whole runs a second or
// more apart each are not: this VM's speed drifts from second to
// second by more than the differences measured.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: execloop N|serve PROGRAM [ARGS...]")
		os.Exit(2)
	}
	prog, args := os.Args[2], os.Args[3:]
	if os.Args[1] == "serve" {
		if err := serve(os.Stdin, os.Stdout, prog, args); err != nil {
			fmt.Fprintln(os.Stderr, "execloop:", err)
			os.Exit(1)
		}
		return
	}
	n, err := count(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "execloop:", err)
		os.Exit(2)
	}
	runs(prog, args, n/10) // warm up
	fmt.Println(timed(prog, args, n))
}

// serve measures a burst of runs for each count read from in.
func serve(in io.Reader, out io.Writer, prog string, args []string) error {
	runs(prog, args, 200) // warm up
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		k, err := count(strings.TrimSpace(sc.Text()))
		if err != nil {
			return err
		}
		runs(prog, args, k/20)
		if _, err := fmt.Fprintln(out, timed(prog, args, k)); err != nil {
			return fmt.Errorf("write the burst's result: %w", err)
		}
	}
	return sc.Err()
}

// count parses a number of runs.
func count(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad count %q", s)
	}
	return n, nil
}

// timed runs the program n times and returns the mean ns per run.
func timed(prog string, args []string, n int) int64 {
	start := time.Now()
	runs(prog, args, n)
	return time.Since(start).Nanoseconds() / int64(n)
}

// runs runs the program n times; a run that fails ends execloop.
func runs(prog string, args []string, n int) {
	for range n {
		if err := exec.Command(prog, args...).Run(); err != nil {
			fmt.Fprintln(os.Stderr, "execloop:", err)
			os.Exit(1)
		}
	}
}
