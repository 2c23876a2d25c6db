// Command connectloop measures loopback TCP connect latency: it listens on
// 127.0.0.1, connects and closes N times, and prints ns per connect. Built
// static and run inside containers by scripts/bench.sh. The client closes
// with a reset (SO_LINGER 0), so no connection is left in TIME_WAIT: tens
// of thousands of them, from the rounds before, would make each connect's
// search for a free port slower round after round (the containers share
// the host's network namespace), and the later of two alternating
// commands slower than the earlier. Client and server run on one P: with
// two, where the scheduler put the two goroutines made a whole round
// vary by +-10% (a wake across CPUs costs an IPI, in a VM an exit); on
// one the rounds vary by +-3%, and the programs' time is a larger part
// of a shorter connect.
package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	runtime.GOMAXPROCS(1)
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
			closeReset(c)
		}
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp4", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "connectloop: connect:", err)
			os.Exit(1)
		}
		closeReset(c)
	}
	fmt.Println(time.Since(start).Nanoseconds() / int64(n))
}

// closeReset closes c with a reset: nothing stays in TIME_WAIT.
func closeReset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
