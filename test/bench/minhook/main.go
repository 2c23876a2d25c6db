// Command minhook is the floor of a createRuntime hook written in Go:
// it registers a container with the agent through the same system calls
// as ocigate-hook (read the state, read config.json, read the process's
// cgroup, stat its cgroup directory and namespaces, read the runtime's
// name, one round trip on the agent's socket) and does nothing else: no
// flags, no JSON decoding (it finds the state's three fields by search
// and sends no annotations), no checks, no deadline, no goroutine.
// hookbench runs it next to ocigate-hook, against the agent and against
// a server that answers at once, so that a run shows what any Go hook
// pays here. Usage, as the hook's: minhook --socket PATH
// createRuntime|poststop, with the state on stdin; minhook --start
// exits at once (its start alone). Not for production.
package main

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--start" {
		return // the start alone: hookbench's floor for `ocigate-hook --version`
	}
	if len(os.Args) != 4 || os.Args[1] != "--socket" {
		fail("usage: minhook --socket PATH createRuntime|poststop")
	}
	socket, stage := os.Args[2], os.Args[3]
	state := readAll(0, 1024)
	id, pid, bundle := field(state, "id"), field(state, "pid"), field(state, "bundle")
	if stage == "poststop" {
		call(socket, `{"protocol":2,"op":"unregister","unregister":{"container_id":"`+id+`"}}`)
		return
	}
	readFile(bundle + "/config.json")
	call(socket, registration(id, pid, bundle))
}

// registration is the register request for the process pid: its cgroup
// (v2, as ocigate-hook resolves it here) and namespaces.
func registration(id, pid, bundle string) string {
	cgroup := readFile("/proc/" + pid + "/cgroup")
	i := bytes.Index(cgroup, []byte("0::/"))
	if i < 0 {
		fail("no cgroup v2 path in /proc/" + pid + "/cgroup")
	}
	path := string(bytes.TrimSpace(cgroup[i+3:]))
	var fs syscall.Statfs_t
	for _, mnt := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if err := syscall.Statfs(mnt, &fs); err != nil {
			fail("statfs " + mnt + ": " + err.Error())
		}
	}
	runtime := bytes.TrimSpace(readFile("/proc/" + strconv.Itoa(os.Getppid()) + "/comm"))
	req := `{"protocol":2,"op":"register","register":{"container_id":"` + id + `","runtime":"` + string(runtime) +
		`","bundle":"` + bundle + `","pid":` + pid + `,"identity":{"cgroup_id":` + inode("/sys/fs/cgroup/unified"+path) +
		`,"cgroup_path":"` + path + `","namespaces":{`
	for i, ns := range []string{"mnt", "pid", "net", "uts", "ipc", "cgroup", "user", "time"} {
		if i > 0 {
			req += ","
		}
		req += `"` + ns + `":` + inode("/proc/"+pid+"/ns/"+ns)
	}
	return req + "}}}}"
}

// call sends one request and fails unless the answer says ok.
func call(socket, req string) {
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		fail("socket: " + err.Error())
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: socket}); err != nil {
		fail("connect " + socket + ": " + err.Error())
	}
	n := len(req)
	msg := append([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, req...)
	if _, err := syscall.Write(fd, msg); err != nil {
		fail("write: " + err.Error())
	}
	// One frame, as the hook reads it: the agent closes the connection
	// only after its own bookkeeping.
	var hdr [4]byte
	readFull(fd, hdr[:])
	answer := make([]byte, int(hdr[0])<<24|int(hdr[1])<<16|int(hdr[2])<<8|int(hdr[3]))
	readFull(fd, answer)
	syscall.Close(fd)
	if !bytes.Contains(answer, []byte(`"ok":true`)) {
		fail("agent refused: " + string(answer))
	}
}

// readFull fills b from fd.
func readFull(fd int, b []byte) {
	for len(b) > 0 {
		n, err := syscall.Read(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n == 0 {
			fail("read the answer: cut short")
		}
		b = b[n:]
	}
}

// field finds the string or number member key of a JSON object by search.
func field(b []byte, key string) string {
	i := bytes.Index(b, []byte(`"`+key+`":`))
	if i < 0 {
		fail("state has no " + key)
	}
	b = bytes.TrimLeft(b[i+len(key)+3:], " ")
	if len(b) > 0 && b[0] == '"' {
		if j := bytes.IndexByte(b[1:], '"'); j >= 0 {
			return string(b[1 : 1+j])
		}
	}
	if j := bytes.IndexAny(b, ",}"); j > 0 {
		return string(bytes.TrimSpace(b[:j]))
	}
	fail("state's " + key + " is cut short")
	return ""
}

func inode(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		fail("stat " + path + ": " + err.Error())
	}
	return strconv.FormatUint(st.Ino, 10)
}

func readFile(path string) []byte {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		fail("open " + path + ": " + err.Error())
	}
	defer syscall.Close(fd)
	return readAll(fd, 4096)
}

// readAll reads fd to its end, from a buffer of size bytes.
func readAll(fd, size int) []byte {
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fail("read: " + err.Error())
		}
		if n == 0 {
			return buf
		}
		buf = buf[:len(buf)+n]
	}
}

func fail(msg string) {
	os.Stderr.WriteString("minhook: " + msg + "\n")
	os.Exit(1)
}
