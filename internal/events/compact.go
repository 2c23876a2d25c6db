package events

import (
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// CompactTime is the time layout of compact lines (UTC, milliseconds).
const CompactTime = "2006-01-02T15:04:05.000Z07:00"

// Compact renders an event as one human line, without newline:
//
//	TIME CONTAINER PROCESS WHAT VERDICT [policy=NAME] [predicate=NAME]
//
// e.g. "2026-11-23T13:43:36.965Z web-1 /bin/nc[24731] connect
// 127.0.0.2:4444 denied EPERM policy=demo-stand-in-attacker"; an exec
// or relay verdict names the predicate that fired (its evidence is in
// the JSON event).
func Compact(e *Event) string {
	var b strings.Builder
	b.WriteString(e.Time.UTC().Format(CompactTime))
	b.WriteByte(' ')
	b.WriteString(orDash(shortContainer(e)))
	kp := e.ProcessKprobe
	switch {
	case e.ProcessExec != nil:
		b.WriteString(" " + processLabel(&e.ProcessExec.Process) + " " + execLabel(e.ProcessExec))
		return b.String()
	case e.ProcessExit != nil:
		b.WriteString(" " + processLabel(&e.ProcessExit.Process) + " " + exitLabel(e.ProcessExit))
		return b.String()
	case e.OcigateClaim != nil:
		b.WriteString(" " + claimLabel(e.OcigateClaim))
		return b.String()
	case kp == nil:
		b.WriteString(" - ")
		b.WriteString(orDash(e.Type()))
		return b.String()
	}
	b.WriteByte(' ')
	b.WriteString(processLabel(&kp.Process))
	b.WriteByte(' ')
	b.WriteString(what(e))
	if e.Ocigate != nil && e.Ocigate.CallerPid != 0 {
		b.WriteString(" (socket used by pid " + strconv.FormatUint(uint64(e.Ocigate.CallerPid), 10) + ")")
	}
	b.WriteByte(' ')
	b.WriteString(verdictLabel(e))
	if kp.PolicyName != "" {
		b.WriteString(" policy=" + kp.PolicyName)
	}
	if e.Ocigate != nil && e.Ocigate.Predicate != "" {
		b.WriteString(" predicate=" + e.Ocigate.Predicate)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// shortContainer is the container's name when known, else its ID, cut
// to 12 characters when it is a 64-hex-digit runtime ID.
func shortContainer(e *Event) string {
	if p := e.Process(); p != nil && p.Pod != nil && p.Pod.Container.Name != "" {
		return p.Pod.Container.Name
	}
	if c := e.OcigateClaim; c != nil && c.Pod != nil && c.Pod.Container.Name != "" {
		return c.Pod.Container.Name
	}
	id := e.ContainerID()
	if len(id) == 64 && strings.Trim(id, "0123456789abcdef") == "" {
		return id[:12]
	}
	return id
}

func processLabel(p *Process) string {
	return orDash(p.Binary) + "[" + strconv.FormatUint(uint64(p.Pid.Value), 10) + "]"
}

// compactArgsMax bounds the arguments shown on a compact line.
const compactArgsMax = 80

// execLabel: "exec ARGUMENTS (parent BINARY[PID])", the arguments on one
// line and cut.
func execLabel(ex *Exec) string {
	args := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, ex.Process.Arguments)
	if len(args) > compactArgsMax {
		args = args[:compactArgsMax] + "..."
	}
	out := join("exec", args)
	if ex.Parent != nil {
		out += " (parent " + processLabel(ex.Parent) + ")"
	}
	return out
}

// exitLabel: "exit status N" or "exit signal SIGNAME".
func exitLabel(ex *Exit) string {
	if ex.Signal != "" {
		return "exit signal " + ex.Signal
	}
	return "exit status " + strconv.FormatUint(uint64(ex.Status), 10)
}

// what says what the process did, from the enforcement point (or the
// function when the point is unknown) and the key arguments.
func what(e *Event) string {
	kp := e.Hook()
	point := ""
	if e.Ocigate != nil {
		point = e.Ocigate.Point
	}
	sock := firstSock(kp.Args)
	switch {
	case point == "connect" || point == "" && strings.Contains(kp.FunctionName, "connect"):
		return join("connect", sockAddr(sock, true), protoIfNotTCP(sock))
	case point == "sendmsg" || point == "" && strings.Contains(kp.FunctionName, "sendmsg"):
		return join("send", sockAddr(sock, true), protoIfNotTCP(sock))
	case point == "bind":
		return join("bind", sockAddr(sock, false), protoIfNotTCP(sock))
	case point == "listen" || point == "" && kp.FunctionName == "inet_csk_listen_start":
		return join("listen", sockAddr(sock, false))
	case point == "close" || point == "" && kp.FunctionName == "tcp_close":
		return join("close", sockAddr(sock, true), protoIfNotTCP(sock))
	case point == "sock_create" || point == "" && kp.FunctionName == "sk_alloc":
		return join("socket", sockKind(sock))
	case point == "exec" || point == "" && kp.FunctionName == "security_bprm_check":
		return join("exec", firstPath(kp.Args), stdioNote(kp.Args, e.Ocigate))
	case point == "dup" || point == "" && strings.HasPrefix(kp.FunctionName, "dup"):
		return dupLabel(kp)
	case point == "memfd" || point == "" && kp.FunctionName == "memfd_create":
		return join("memfd_create", strings.TrimPrefix(firstPath(kp.Args), "memfd:"))
	}
	name := kp.FunctionName
	if kp.Subsys != "" {
		name = kp.Subsys + "/" + kp.Event
	}
	return join(orDash(name), genericArgs(kp.Args))
}

func join(parts ...string) string {
	out := parts[0]
	for _, p := range parts[1:] {
		if p != "" {
			out += " " + p
		}
	}
	return out
}

// firstSock is the first socket, packet or socket address argument, as
// a socket.
func firstSock(args []Arg) *SockArg {
	for _, a := range args {
		switch {
		case a.SockArg != nil:
			return a.SockArg
		case a.SkbArg != nil:
			k := a.SkbArg
			return &SockArg{Family: k.Family, Protocol: k.Protocol, Saddr: k.Saddr, Daddr: k.Daddr, Sport: k.Sport, Dport: k.Dport}
		case a.SockaddrArg != nil:
			return &SockArg{Family: a.SockaddrArg.Family, Daddr: a.SockaddrArg.Addr, Dport: a.SockaddrArg.Port}
		}
	}
	return nil
}

// firstPath is the first file, path, linux_binprm or string argument.
func firstPath(args []Arg) string {
	for _, a := range args {
		if p := argPath(a); p != "" {
			return p
		}
	}
	return ""
}

// argPath is a's path or string, "" if it has none.
func argPath(a Arg) string {
	for _, f := range []*FileArg{a.FileArg, a.LinuxBinprmArg, a.PathArg} {
		if f != nil {
			return f.Path
		}
	}
	if a.StringArg != nil {
		return *a.StringArg
	}
	return ""
}

// sockAddr is the destination (peer) when preferred and known, else the
// local address: "1.2.3.4:4444", "[2001:db8::1]:53".
func sockAddr(s *SockArg, peer bool) string {
	if s == nil {
		return ""
	}
	if peer && s.Daddr != "" || s.Saddr == "" {
		return hostPort(s.Daddr, s.Dport)
	}
	return hostPort(s.Saddr, s.Sport)
}

// hostPort is net.JoinHostPort, written out so that the package, which
// the hook links, does not pull in the net package.
func hostPort(addr string, port uint32) string {
	switch {
	case addr == "" && port == 0:
		return ""
	case port == 0:
		return addr
	}
	p := strconv.FormatUint(uint64(port), 10)
	if strings.IndexByte(addr, ':') >= 0 { // as net.JoinHostPort brackets IPv6
		return "[" + addr + "]:" + p
	}
	return addr + ":" + p
}

// short turns AF_INET, SOCK_RAW, IPPROTO_UDP into inet, raw, udp.
func short(name, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(name, prefix))
}

func protoIfNotTCP(s *SockArg) string {
	if s == nil || s.Protocol == "" || s.Protocol == "IPPROTO_TCP" || s.Protocol == "IPPROTO_IP" && s.Type == "SOCK_STREAM" {
		return ""
	}
	return short(s.Protocol, "IPPROTO_")
}

func sockKind(s *SockArg) string {
	if s == nil {
		return ""
	}
	kind := []string{short(s.Family, "AF_"), short(s.Type, "SOCK_")}
	if s.Protocol != "" && s.Protocol != "IPPROTO_IP" {
		kind = append(kind, short(s.Protocol, "IPPROTO_"))
	}
	return strings.Join(kind, " ")
}

var stdioNames = [3]string{"stdin", "stdout", "stderr"}

// stdioNote names the standard descriptors an exec had on a socket: its
// int arguments (the built-in selectors' events), or og's stdio_sockets.
func stdioNote(args []Arg, og *Ocigate) string {
	var fds []string
	for _, a := range args {
		if a.IntArg != nil && a.IntArg.Value >= 0 && a.IntArg.Value < 3 {
			fds = append(fds, stdioNames[a.IntArg.Value])
		}
	}
	if og != nil && len(fds) == 0 {
		for _, fd := range og.StdioSockets {
			if fd >= 0 && fd < 3 {
				fds = append(fds, stdioNames[fd])
			}
		}
	}
	if len(fds) == 0 {
		return ""
	}
	return "(" + strings.Join(fds, ", ") + " on a socket)"
}

func dupLabel(kp *Kprobe) string {
	name := kp.FunctionName
	if !strings.HasPrefix(name, "dup") {
		name = "dup"
	}
	var fds []int64
	for _, a := range kp.Args {
		if a.IntArg != nil {
			fds = append(fds, a.IntArg.Value)
		}
	}
	if len(fds) < 2 {
		return join(name, genericArgs(kp.Args))
	}
	return name + " fd " + strconv.FormatInt(fds[0], 10) + " -> " + strconv.FormatInt(fds[1], 10)
}

func genericArgs(args []Arg) string {
	var out []string
	for _, a := range args {
		switch {
		case a.SockArg != nil:
			out = append(out, join(sockKind(a.SockArg), sockAddr(a.SockArg, true)))
		case a.SockaddrArg != nil:
			out = append(out, hostPort(a.SockaddrArg.Addr, a.SockaddrArg.Port))
		case a.SkbArg != nil:
			out = append(out, sockAddr(firstSock([]Arg{a}), true))
		case a.IntArg != nil:
			out = append(out, strconv.FormatInt(a.IntArg.Value, 10))
		case a.SyscallID != nil:
			out = append(out, "syscall "+strconv.FormatUint(uint64(a.SyscallID.ID), 10))
		case argPath(a) != "":
			out = append(out, argPath(a))
		}
	}
	return strings.Join(out, " ")
}

// verdictLabel: posted, denied EPERM, killed, monitor: would deny (or
// would kill).
func verdictLabel(e *Event) string {
	og, kp := e.Ocigate, e.Hook()
	if og == nil {
		switch kp.Action {
		case ActionPost, "":
			return "posted"
		case ActionSigkill:
			return "killed"
		}
		return "denied"
	}
	switch og.Verdict {
	case "reported":
		return "posted"
	case "denied":
		if og.Errno != 0 {
			return "denied " + errnoName(og.Errno)
		}
		return "denied"
	case "killed":
		return "killed"
	case "would-deny":
		if kp.Action == ActionSigkill {
			return "monitor: would kill"
		}
		return "monitor: would deny"
	}
	return orDash(og.Verdict)
}

func errnoName(n int32) string {
	if name := unix.ErrnoName(syscall.Errno(n)); name != "" {
		return name
	}
	return "errno " + strconv.Itoa(int(n))
}
