// Command execloop measures fork+exec: it runs a program N times and
// prints the mean ns per run. Built static and run inside containers by
// scripts/bench.sh, enforced and not, side by side.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: execloop N PROGRAM [ARGS...]")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "execloop: bad count %q\n", os.Args[1])
		os.Exit(2)
	}
	run := func() {
		if err := exec.Command(os.Args[2], os.Args[3:]...).Run(); err != nil {
			fmt.Fprintln(os.Stderr, "execloop:", err)
			os.Exit(1)
		}
	}
	for i := 0; i < n/10; i++ { // warm up
		run()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		run()
	}
	fmt.Println(time.Since(start).Nanoseconds() / int64(n))
}
