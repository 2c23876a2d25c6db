package enforcer

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/hostfs"
	"github.com/ocigate/ocigate/profiles"
)

// helperEnv makes the test binary a helper process: it does one socket
// operation and prints its result ("ok" or "errno=N"). It is the
// "other binary" of the matchBinaries tests too.
const helperEnv = "OCIGATE_BPF_TEST_HELPER"

// execThreadEnv makes the test binary exec the program it names (with
// argument "true") from a thread other than its leader, as a Go program's
// exec often does.
const execThreadEnv = "OCIGATE_BPF_TEST_EXEC_FROM_THREAD"

// exitThreadsEnv makes the test binary start the number of threads it
// names, each running, and end them all at once with exit_group: their
// exits race on every CPU.
const exitThreadsEnv = "OCIGATE_BPF_TEST_EXIT_THREADS"

// connectBurstEnv makes the test binary connect to 127.0.0.2 on ports 1
// to the number it names, one socket each, and print "ok" when every
// connect was refused with EPERM.
const connectBurstEnv = "OCIGATE_BPF_TEST_CONNECT_BURST"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(helperMain(spec))
	}
	if path := os.Getenv(execThreadEnv); path != "" {
		os.Exit(execFromThread(path))
	}
	if n := os.Getenv(exitThreadsEnv); n != "" {
		os.Exit(exitThreads(n))
	}
	if n := os.Getenv(connectBurstEnv); n != "" {
		os.Exit(connectBurst(n))
	}
	code := m.Run()
	if shared.e != nil {
		shared.log.stop()
		if err := shared.e.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "Close of the shared enforcer: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// helperMain runs "OP NET ADDR:PORT": OP is connect, sendto or bind; NET
// is tcp4, tcp6, udp4 or udp6.
func helperMain(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 3 {
		fmt.Fprintf(os.Stderr, "helper: bad spec %q\n", spec)
		return 2
	}
	op, network := f[0], f[1]
	ap, err := netip.ParseAddrPort(f[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		return 2
	}
	family, typ := unix.AF_INET, unix.SOCK_STREAM
	if strings.HasSuffix(network, "6") {
		family = unix.AF_INET6
	}
	if strings.HasPrefix(network, "udp") {
		typ = unix.SOCK_DGRAM
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(family, typ, 0)
	if err == nil {
		switch op {
		case "connect":
			err = unix.Connect(fd, sa)
		case "sendto":
			err = unix.Sendto(fd, []byte("x"), 0, sa)
		case "bind":
			err = unix.Bind(fd, sa)
		default:
			fmt.Fprintf(os.Stderr, "helper: unknown op %q\n", op)
			return 2
		}
		unix.Close(fd)
	}
	var errno syscall.Errno
	switch {
	case err == nil:
		fmt.Println("ok")
	case errors.As(err, &errno):
		fmt.Printf("errno=%d\n", int(errno))
	default:
		fmt.Printf("error=%v\n", err)
	}
	return 0
}

// connectBurst connects to 127.0.0.2 on ports 1 to n, all from one
// thread; it pauses 1 ms every 256 connects, so that the reader keeps
// up with the records.
func connectBurst(n string) int {
	runtime.LockOSThread()
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 || count > 65535 {
		fmt.Fprintf(os.Stderr, "connect burst: bad count %q\n", n)
		return 2
	}
	for port := 1; port <= count; port++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			fmt.Printf("socket: %v\n", err)
			return 1
		}
		err = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 2}})
		unix.Close(fd)
		if !errors.Is(err, unix.EPERM) {
			fmt.Printf("connect to port %d: %v, want EPERM\n", port, err)
			return 1
		}
		if port%256 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	fmt.Println("ok")
	return 0
}

// execFromThread execs path from a thread that is not the thread group's
// leader (the main goroutine keeps the leader); it returns only on a
// failure.
func execFromThread(path string) int {
	runtime.LockOSThread()
	done := make(chan int)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			fmt.Fprintln(os.Stderr, "exec thread: on the leader")
			done <- 2
			return
		}
		err := unix.Exec(path, []string{path, "true"}, os.Environ())
		fmt.Fprintf(os.Stderr, "exec thread: %v\n", err)
		done <- 1
	}()
	return <-done
}

// exitThreads starts n threads, each blocked in a read of its own, and
// calls exit_group once all of them are in it: the kill wakes them all at
// once. It returns only on bad input.
func exitThreads(n string) int {
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 {
		fmt.Fprintf(os.Stderr, "exit threads: bad count %q\n", n)
		return 2
	}
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil {
		fmt.Fprintf(os.Stderr, "exit threads: %v\n", err)
		return 2
	}
	var started sync.WaitGroup
	started.Add(count)
	for range count {
		go func() {
			runtime.LockOSThread()
			started.Done()
			unix.Read(fds[0], make([]byte, 1))
		}()
	}
	started.Wait()
	time.Sleep(time.Millisecond) // the last ones reach their read
	unix.Exit(0)
	return 0
}

// shared is the enforcer of the tests that load programs: the verifier
// takes half a minute over them, so they are loaded once, and one reader
// collects every event.
var shared struct {
	once sync.Once
	e    *Enforcer
	root string
	log  *eventLog
	err  error
}

// loadForTest returns the shared enforcer, loaded at the host's cgroup v2
// root, with the default profile (again) as id 1.
func loadForTest(t *testing.T) (*Enforcer, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loading BPF programs needs root")
	}
	shared.once.Do(func() {
		if _, err := hostfs.EnsureAll(); err != nil {
			shared.err = err
			return
		}
		if shared.root, shared.err = cgroupfilter.V2Mount(); shared.err != nil {
			return
		}
		start := time.Now()
		if shared.e, shared.err = Load(Options{CgroupRoot: shared.root}); shared.err != nil {
			return
		}
		t.Logf("Load took %v", time.Since(start))
		shared.log, shared.err = startEventLog(shared.e)
	})
	if shared.err != nil {
		t.Fatalf("Load: %v", shared.err)
	}
	if err := shared.e.LoadProfile(1, profiles.Default()); err != nil {
		t.Fatalf("LoadProfile: %v", err)
	}
	return shared.e, shared.root
}

// testCgroup creates a cgroup under root and returns its path and ID.
func testCgroup(t *testing.T, root string) (string, uint64) {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprintf("ocigate-unit-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "_")))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() {
		// The last process may still be leaving the cgroup.
		var err error
		for i := 0; i < 100; i++ {
			if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("remove cgroup %s: %v", dir, err)
	})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, fi.Sys().(*syscall.Stat_t).Ino
}
