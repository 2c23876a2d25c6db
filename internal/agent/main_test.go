package agent

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// sleeperEnv makes the test binary a helper that only sleeps: a real,
// multi-threaded process to send signals to. The Go runtime would ignore
// SIGUSR1 and SIGUSR2; the sleeper exits with 128+N on them, as a shell
// reports a death by signal N. It prints "ready" once it listens.
const sleeperEnv = "OCIGATE_AGENT_TEST_SLEEPER"

func TestMain(m *testing.M) {
	if os.Getenv(sleeperEnv) != "" {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1, syscall.SIGUSR2)
		fmt.Println("ready")
		select {
		case s := <-ch:
			os.Exit(128 + int(s.(syscall.Signal)))
		case <-time.After(time.Minute):
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}
