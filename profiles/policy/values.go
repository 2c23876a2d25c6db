package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// named is a symbolic constant accepted in place of a number.
type named struct {
	name  string
	value int64
}

// Symbolic values, in the order error messages list them.
var (
	protocolNames = []named{
		{"IPPROTO_IP", 0}, {"IPPROTO_ICMP", 1}, {"IPPROTO_TCP", 6}, {"IPPROTO_UDP", 17},
		{"IPPROTO_ICMPV6", 58}, {"IPPROTO_SCTP", 132}, {"IPPROTO_RAW", 255},
	}
	familyNames = []named{
		{"AF_UNIX", 1}, {"AF_INET", 2}, {"AF_INET6", 10}, {"AF_NETLINK", 16}, {"AF_PACKET", 17},
	}
	stateNames = []named{
		{"TCP_ESTABLISHED", 1}, {"TCP_SYN_SENT", 2}, {"TCP_SYN_RECV", 3}, {"TCP_FIN_WAIT1", 4},
		{"TCP_FIN_WAIT2", 5}, {"TCP_TIME_WAIT", 6}, {"TCP_CLOSE", 7}, {"TCP_CLOSE_WAIT", 8},
		{"TCP_LAST_ACK", 9}, {"TCP_LISTEN", 10}, {"TCP_CLOSING", 11}, {"TCP_NEW_SYN_RECV", 12},
	}
	signalNames = []named{
		{"SIGHUP", 1}, {"SIGINT", 2}, {"SIGQUIT", 3}, {"SIGILL", 4}, {"SIGTRAP", 5},
		{"SIGABRT", 6}, {"SIGBUS", 7}, {"SIGFPE", 8}, {"SIGKILL", 9}, {"SIGUSR1", 10},
		{"SIGSEGV", 11}, {"SIGUSR2", 12}, {"SIGPIPE", 13}, {"SIGALRM", 14}, {"SIGTERM", 15},
		{"SIGSTKFLT", 16}, {"SIGCHLD", 17}, {"SIGCONT", 18}, {"SIGSTOP", 19}, {"SIGTSTP", 20},
		{"SIGTTIN", 21}, {"SIGTTOU", 22}, {"SIGURG", 23}, {"SIGXCPU", 24}, {"SIGXFSZ", 25},
		{"SIGVTALRM", 26}, {"SIGPROF", 27}, {"SIGWINCH", 28}, {"SIGIO", 29}, {"SIGPWR", 30},
		{"SIGSYS", 31},
	}
	capabilityNames = []named{
		{"CAP_CHOWN", 0}, {"CAP_DAC_OVERRIDE", 1}, {"CAP_DAC_READ_SEARCH", 2}, {"CAP_FOWNER", 3},
		{"CAP_FSETID", 4}, {"CAP_KILL", 5}, {"CAP_SETGID", 6}, {"CAP_SETUID", 7}, {"CAP_SETPCAP", 8},
		{"CAP_LINUX_IMMUTABLE", 9}, {"CAP_NET_BIND_SERVICE", 10}, {"CAP_NET_BROADCAST", 11}, {"CAP_NET_ADMIN", 12},
		{"CAP_NET_RAW", 13}, {"CAP_IPC_LOCK", 14}, {"CAP_IPC_OWNER", 15}, {"CAP_SYS_MODULE", 16},
		{"CAP_SYS_RAWIO", 17}, {"CAP_SYS_CHROOT", 18}, {"CAP_SYS_PTRACE", 19}, {"CAP_SYS_PACCT", 20},
		{"CAP_SYS_ADMIN", 21}, {"CAP_SYS_BOOT", 22}, {"CAP_SYS_NICE", 23}, {"CAP_SYS_RESOURCE", 24},
		{"CAP_SYS_TIME", 25}, {"CAP_SYS_TTY_CONFIG", 26}, {"CAP_MKNOD", 27}, {"CAP_LEASE", 28},
		{"CAP_AUDIT_WRITE", 29}, {"CAP_AUDIT_CONTROL", 30}, {"CAP_SETFCAP", 31}, {"CAP_MAC_OVERRIDE", 32},
		{"CAP_MAC_ADMIN", 33}, {"CAP_SYSLOG", 34}, {"CAP_WAKE_ALARM", 35}, {"CAP_BLOCK_SUSPEND", 36},
		{"CAP_AUDIT_READ", 37}, {"CAP_PERFMON", 38}, {"CAP_BPF", 39}, {"CAP_CHECKPOINT_RESTORE", 40},
	}
)

func lookup(names []named, s string) (int64, bool) {
	for _, n := range names {
		if n.name == s {
			return n.value, true
		}
	}
	return 0, false
}

func nameList(names []named) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n.name
	}
	return strings.Join(parts, ", ")
}

// scalarValue returns the text of a values[] item, which may be a YAML
// string or integer. raw is the text as written; text is the same with
// integers in decimal (YAML also reads 0x10 and 0o20 as integers).
func scalarValue(n *yaml.Node) (raw, text string, err error) {
	if n.Kind != yaml.ScalarNode {
		return "", "", fmt.Errorf("must be a string or an integer, not %s", kindName(n))
	}
	switch n.ShortTag() {
	case "!!str":
		return n.Value, n.Value, nil
	case "!!int":
		var v int64
		if n.Decode(&v) != nil {
			return n.Value, n.Value, nil // out of int64 range: the caller says why
		}
		return n.Value, strconv.FormatInt(v, 10), nil
	case "!!float", "!!bool":
		return "", "", fmt.Errorf("must be a string or an integer, not %s (quote it if it is text)", kindName(n))
	}
	return "", "", fmt.Errorf("must be a string or an integer, not %s", kindName(n))
}

// parseCIDR parses an IPv4 or IPv6 CIDR as matchArgs address operators
// take it. A bare address is a /32 or /128. Host bits are allowed (as in
// Tetragon) and cleared. An IPv4-mapped IPv6 prefix stays IPv6.
func parseCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or an IP address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parsePortRange parses a port (0-65535) or an inclusive range "N-M" or
// "N:M" with N <= M.
func parsePortRange(s string) (PortRange, error) {
	if i := strings.IndexAny(s, "-:"); i >= 0 {
		lo, err1 := parsePort(s[:i])
		hi, err2 := parsePort(s[i+1:])
		if err1 != nil || err2 != nil {
			return PortRange{}, fmt.Errorf("%q is not a port range (N-M or N:M, ports 0-65535)", s)
		}
		if lo > hi {
			return PortRange{}, fmt.Errorf("%q is an empty port range (start above end)", s)
		}
		return PortRange{lo, hi}, nil
	}
	p, err := parsePort(s)
	if err != nil {
		return PortRange{}, fmt.Errorf("%q is not a port (0-65535)", s)
	}
	return PortRange{p, p}, nil
}

var errNotDecimal = errors.New("not a decimal number")

func parsePort(s string) (uint16, error) {
	if !isDigits(s) {
		return 0, errNotDecimal
	}
	v, err := strconv.ParseUint(s, 10, 16)
	return uint16(v), err
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseNamed parses a symbolic name from names or a decimal in [0, hi].
func parseNamed(s, what string, names []named, hi int64) (int64, error) {
	if v, ok := lookup(names, s); ok {
		return v, nil
	}
	if isDigits(s) {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil && v <= hi {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%q is not %s (%s, or 0-%d)", s, what, nameList(names), hi)
}

// parseProtocol parses an IPPROTO_ name or a number 0-255.
func parseProtocol(s string) (int64, error) {
	return parseNamed(s, "a protocol", protocolNames, 255)
}

// parseFamily parses an AF_ name or a number 0-65535.
func parseFamily(s string) (int64, error) {
	return parseNamed(s, "an address family", familyNames, 65535)
}

// parseState parses a TCP_ state name or a number 0-255.
func parseState(s string) (int64, error) {
	return parseNamed(s, "a TCP state", stateNames, 255)
}

// parseSignal parses a signal name (SIGKILL, ...) or a number 1-64.
func parseSignal(s string) (int, error) {
	if v, ok := lookup(signalNames, s); ok {
		return int(v), nil
	}
	if isDigits(s) {
		if v, err := strconv.Atoi(s); err == nil && v >= 1 && v <= 64 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%q is not a signal (a number 1-64 or SIGKILL, SIGTERM, SIGUSR1, ...)", s)
}

// parseInt32 parses a decimal int32, or with family an AF_ name too.
func parseInt32(s string, family bool) (int64, error) {
	if family {
		if v, ok := lookup(familyNames, s); ok {
			return v, nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		if family {
			return 0, fmt.Errorf("%q is not an integer or an address family (%s)", s, nameList(familyNames))
		}
		return 0, fmt.Errorf("%q is not a 32-bit integer", s)
	}
	return v, nil
}
