// Command probe is a tiny static program copied into the e2e test
// containers as /probe. Each subcommand performs one socket operation and
// reports the outcome on stdout, so a test can assert what happened inside
// the container from outside:
//
//	probe connect HOST:PORT   TCP connect
//	probe udp HOST:PORT       unconnected UDP sendto
//	probe udprecv HOST:PORT   bind a UDP socket, wait for one datagram
//	probe raw                 socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)
//	probe packet              socket(AF_PACKET, SOCK_RAW, 0)
//	probe rawdrop [hold]      send a malformed IP header on a raw socket: the kernel drops it (EINVAL);
//	                          hold: then wait a second (the agent reads the process's mappings)
//	probe api SOCKET          send {"op":"status"} to the agent's unix socket
//
// It prints "ok" and exits 0, or prints "error: <errno text>" and exits 1.
// The api subcommand (run on the host, e.g. as an unprivileged user) tells
// apart an agent that answered {"ok":false} ("refused: <error>") and one
// that closed the connection ("closed: <error>"); both exit 1.
// Usage errors exit 2. Raw syscalls are used instead of the net package so
// that the reported errno is exactly the one the kernel returned.
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/internal/testenv/probe"
)

// main runs the subcommand os.Args[1] (see the package comment).
func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch cmd := os.Args[1]; cmd {
	case "connect", "udp", "udpconnect", "udprecv":
		if len(os.Args) != 3 {
			usage()
		}
		ap, perr := probe.ParseAddr(os.Args[2])
		if perr != nil {
			fmt.Fprintf(os.Stderr, "probe: %v\n", perr)
			os.Exit(2)
		}
		switch cmd {
		case "connect":
			err = probe.TCPConnect(ap, connectTimeout)
		case "udp":
			err = probe.UDPSendto(ap)
		case "udprecv":
			err = probe.UDPReceive(ap, connectTimeout)
		default:
			err = probe.UDPConnect(ap)
		}
	case "passbind":
		if len(os.Args) != 3 {
			usage()
		}
		err = passBind(os.Args[2])
	case "bindfd":
		if len(os.Args) != 4 {
			usage()
		}
		err = bindFD(os.Args[2], os.Args[3])
	case "memfdexec":
		err = memfdExec(len(os.Args) > 2 && os.Args[2] == "proc")
	case "raw":
		err = probe.OpenSocket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
	case "packet":
		err = probe.OpenSocket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	case "rawdrop":
		if err = probe.RawDrop(); err == nil && len(os.Args) > 2 && os.Args[2] == "hold" {
			time.Sleep(time.Second)
		}
	case "api":
		if len(os.Args) != 3 {
			usage()
		}
		os.Exit(apiStatus(os.Args[2]))
	default:
		usage()
	}
	if err != nil {
		fmt.Printf("error: %s\n", probe.ErrText(err))
		os.Exit(1)
	}
	fmt.Println("ok")
}

// connectTimeout bounds the connect subcommand.
const connectTimeout = 5 * time.Second

// usage prints the usage and exits 2.
func usage() {
	fmt.Fprintln(os.Stderr, "usage: probe connect HOST:PORT | udp HOST:PORT | udpconnect HOST:PORT | udprecv HOST:PORT | memfdexec [proc] | raw | packet | rawdrop [hold] | api SOCKET")
	os.Exit(2)
}

// passBind creates a TCP socket and hands it to a child process (another
// tgid) that binds and listens on port: the socket's creator and its user
// differ, as TrackSock attributes. Prints both pids.
func passBind(port string) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "socket")
	defer f.Close()
	cmd := exec.Command(os.Args[0], "bindfd", "3", port)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Printf("parent %d\n", os.Getpid())
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("child: %w", err)
	}
	// Stay a moment: the agent reads the creator's command line from /proc
	// when it reports the child's use of the socket.
	time.Sleep(time.Second)
	return nil
}

// bindFD binds the inherited socket fd to 127.0.0.1:port and listens.
func bindFD(fdArg, port string) error {
	fd, err := strconv.Atoi(fdArg)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	fmt.Printf("child %d\n", os.Getpid())
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: p, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return syscall.Listen(fd, 1)
}

// memfdExec runs busybox from an anonymous file: memfd_create, a copy of
// /bin/busybox, execveat(fd, "", AT_EMPTY_PATH) — a fileless exec; with
// proc, execve("/proc/self/fd/N") instead. It only returns when the exec
// fails.
func memfdExec(proc bool) error {
	fd, err := unix.MemfdCreate("payload", 0)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	src, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return err
	}
	if _, err := unix.Write(fd, src); err != nil {
		return fmt.Errorf("write memfd: %w", err)
	}
	path, err := unix.BytePtrFromString("")
	if err != nil {
		return err
	}
	argv, err := cStrings([]string{"sh", "-c", "echo fileless-ran"})
	if err != nil {
		return err
	}
	envv, err := cStrings(os.Environ())
	if err != nil {
		return err
	}
	if proc {
		err := unix.Exec(fmt.Sprintf("/proc/self/fd/%d", fd), []string{"sh", "-c", "echo fileless-ran"}, os.Environ())
		return fmt.Errorf("execve: %w", err)
	}
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(path)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])), unix.AT_EMPTY_PATH, 0)
	return fmt.Errorf("execveat: %w", errno)
}

// cStrings is a NULL-terminated array of C strings.
func cStrings(ss []string) ([]*byte, error) {
	out := make([]*byte, 0, len(ss)+1)
	for _, s := range ss {
		p, err := unix.BytePtrFromString(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return append(out, nil), nil
}

// apiStatus sends one status request to the agent socket, framed as the
// agent's API frames messages (4-byte big-endian length, then JSON), and
// reports how the agent reacted. It returns the exit code.
func apiStatus(socket string) int {
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		fmt.Printf("error: %s\n", probe.ErrText(err))
		return 1
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	body := []byte(`{"op":"status"}`)
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := conn.Write(append(frame, body...)); err != nil {
		fmt.Printf("closed: write: %s\n", probe.ErrText(err))
		return 1
	}
	var hdr [4]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		fmt.Printf("closed: read: %s\n", probe.ErrText(err))
		return 1
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > 16<<20 {
		fmt.Printf("error: response of %d bytes\n", n)
		return 1
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(conn, data); err != nil {
		fmt.Printf("closed: read: %s\n", probe.ErrText(err))
		return 1
	}
	var resp struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		fmt.Printf("error: bad response %q: %v\n", data, err)
		return 1
	}
	if !resp.OK {
		fmt.Printf("refused: %s\n", resp.Error)
		return 1
	}
	fmt.Println("ok")
	return 0
}
