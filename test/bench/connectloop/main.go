// Command connectloop measures loopback TCP connect latency: it listens on
// 127.0.0.1, connects and closes N times, and prints ns per connect. Built
// static and run inside containers by scripts/bench.sh.
package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	n := 20000
	if len(os.Args) > 1 {
		v, err := strconv.Atoi(os.Args[1])
		if err != nil || v <= 0 {
			fmt.Fprintf(os.Stderr, "connectloop: bad count %q\n", os.Args[1])
			os.Exit(2)
		}
		n = v
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "connectloop: listen:", err)
		os.Exit(1)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	for i := 0; i < n/10; i++ { // warm up
		if c, err := net.Dial("tcp4", addr); err == nil {
			c.Close()
		}
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "connectloop: connect:", err)
			os.Exit(1)
		}
		c.Close()
	}
	fmt.Println(time.Since(start).Nanoseconds() / int64(n))
}
