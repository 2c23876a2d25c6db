package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/sdnotify"
)

// mainInit is when package main was initialised: the process start when
// /proc/self/stat cannot say.
var mainInit = time.Now()

// clockTicks is USER_HZ, the unit of /proc's times: 100 on every
// architecture Go's linux ports build for.
const clockTicks = 100

// processStart is when this process started: its start time in
// /proc/self/stat (clock ticks after boot, so to 10 ms), which counts the
// exec and the Go runtime's start; mainInit when that cannot be read.
func processStart() time.Time {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return mainInit
	}
	ticks, err := startTicks(string(stat))
	var now unix.Timespec
	if err != nil || unix.ClockGettime(unix.CLOCK_BOOTTIME, &now) != nil {
		return mainInit
	}
	sinceStart := time.Duration(now.Nano()) - time.Duration(ticks)*time.Second/clockTicks
	return time.Now().Add(-sinceStart)
}

// startTicks returns field 22 of a /proc/PID/stat line, the start time.
// The command name (field 2) is in parentheses and may hold any byte, so
// the fields are counted after its last ')'.
func startTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/self/stat %q: no command name", stat)
	}
	fields := strings.Fields(stat[i+1:]) // from field 3, state
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/self/stat: %d fields, want at least 22", len(fields)+2)
	}
	ticks, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/stat start time: %w", err)
	}
	return ticks, nil
}

// programsOrigin says whether Load loaded the programs or took over the
// ones an earlier agent of the same build left pinned.
func programsOrigin(pins *enforcer.PinState) string {
	if pins != nil && pins.Reused {
		return "reused"
	}
	return "loaded"
}

// announceReady logs "agent ready" with the time since the process
// started and tells the service manager (READY=1), once the socket
// listens with everything loaded behind it.
func announceReady(log *zap.Logger, notifier *sdnotify.Notifier, socket, cgroupRoot, enforcement string, pins *enforcer.PinState, started time.Time) {
	after := time.Since(started)
	programs := programsOrigin(pins)
	log.Info("agent ready", zap.String("socket", socket), zap.String("cgroup_root", cgroupRoot), zap.Int("pid", os.Getpid()),
		zap.Duration("ready_after", after), zap.String("programs", programs), zap.String("enforcement", enforcement))
	status := fmt.Sprintf("STATUS=enforcement %s; ready after %v, programs %s; API on %s", enforcement, after.Round(time.Millisecond), programs, socket)
	if err := notifier.Send("READY=1", status); err != nil {
		log.Warn("service manager not told that the agent is ready", zap.Error(err))
	}
}

// announceStopping tells the service manager that the agent stops.
func announceStopping(log *zap.Logger, notifier *sdnotify.Notifier) {
	if err := notifier.Send("STOPPING=1", "STATUS=stopping"); err != nil {
		log.Warn("service manager not told that the agent stops", zap.Error(err))
	}
}
