package profiles

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ocigate/ocigate/profiles/policy"
)

// pred is the selector predicate an argument operator fills.
type pred int

const (
	pDaddr pred = iota
	pSaddr
	pDport
	pSport
	pProtocol
	pFamily
	pState
	pType
	pFds
	pPath
	pName
)

var predNames = []string{"destination address", "source address", "destination port",
	"source port", "protocol", "family", "state", "socket type", "new descriptor", "path", "name"}

// operand is what one matchArgs operator means.
type operand struct {
	p    pred
	not  bool
	priv bool // *PortPriv: the privileged ports, no values
}

// sockOps are the operators on sock, socket and skb arguments.
var sockOps = map[string]operand{
	"DAddr": {p: pDaddr}, "NotDAddr": {p: pDaddr, not: true},
	"SAddr": {p: pSaddr}, "NotSAddr": {p: pSaddr, not: true},
	"DPort": {p: pDport}, "NotDPort": {p: pDport, not: true},
	"SPort": {p: pSport}, "NotSPort": {p: pSport, not: true},
	"DPortPriv": {p: pDport, priv: true}, "NotDPortPriv": {p: pDport, not: true, priv: true},
	"SPortPriv": {p: pSport, priv: true}, "NotSPortPriv": {p: pSport, not: true, priv: true},
	"NotSportPriv": {p: pSport, not: true, priv: true},
	"Protocol":     {p: pProtocol}, "Family": {p: pFamily}, "State": {p: pState},
}

// sockaddrOps are the operators on sockaddr arguments. Tetragon's sockaddr
// "SAddr" and "SPort" are the address and port in the sockaddr: for a
// connect or a send, the destination (for a bind, sockaddrBindOps).
var sockaddrOps = map[string]operand{
	"SAddr": {p: pDaddr}, "NotSAddr": {p: pDaddr, not: true},
	"SPort": {p: pDport}, "NotSPort": {p: pDport, not: true},
	"SPortPriv": {p: pDport, priv: true}, "NotSPortPriv": {p: pDport, not: true, priv: true},
	"NotSportPriv": {p: pDport, not: true, priv: true},
	"Family":       {p: pFamily},
}

// sockaddrBindOps: the sockaddr of a bind is the local address.
var sockaddrBindOps = map[string]operand{
	"SAddr": {p: pSaddr}, "NotSAddr": {p: pSaddr, not: true},
	"SPort": {p: pSport}, "NotSPort": {p: pSport, not: true},
	"SPortPriv": {p: pSport, priv: true}, "NotSPortPriv": {p: pSport, not: true, priv: true},
	"NotSportPriv": {p: pSport, not: true, priv: true},
	"Family":       {p: pFamily},
}

// intArgs are the integer arguments ocigate reads, by call and index: the
// predicate Equal fills.
var intArgs = map[string]map[int]pred{
	"sk_alloc":               {1: pFamily},
	"security_socket_create": {0: pFamily, 1: pType, 2: pProtocol},
	"socket_create":          {0: pFamily, 1: pType, 2: pProtocol},
	"sys_socket":             {0: pFamily, 1: pType, 2: pProtocol},
	"dup":                    {1: pFds},
	"dup2":                   {1: pFds},
	"dup3":                   {1: pFds},
	"fcntl":                  {1: pFds},
	"sys_dup2":               {1: pFds},
	"sys_dup3":               {1: pFds},
}

// selBuilder fills one selector's predicates from matchArgs, refusing a
// second predicate of one kind: the kernel holds one per kind.
type selBuilder struct {
	c   *compiler
	s   *Selector
	set map[pred]string // predicate → "OPERATOR at line N" that set it
	h   hookDef
}

// claim reserves predicate p for m; false (an error) when another match
// of the selector has it.
func (b *selBuilder) claim(p pred, m *policy.ArgMatch, field string) bool {
	if prev, dup := b.set[p]; dup {
		b.c.errorf(m.Pos, field, "%s: a selector holds one %s match and %s sets it already", m.Operator, predNames[p], prev)
		return false
	}
	b.set[p] = fmt.Sprintf("%s at line %d", m.Operator, m.Line)
	return true
}

// arg compiles one matchArgs entry of hook k.
func (b *selBuilder) arg(k *policy.Kprobe, m *policy.ArgMatch, field string) {
	for _, d := range k.Args {
		if _, anc := policy.AncestorComm(d.Resolve); anc && d.Index == m.Index {
			b.c.errorf(m.Pos, field, "%s on %s: not supported: ocigate reports the comm (the event's argument) but does not match it in the kernel; closest: matchBinaries", m.Operator, d.Resolve)
			return
		}
	}
	switch typeClass(m.ArgType) {
	case "sock", "socket", "skb":
		b.sockArg(k, m, field, sockOps)
	case "sockaddr":
		ops := sockaddrOps
		if b.h.bind {
			ops = sockaddrBindOps
		}
		b.sockArg(k, m, field, ops)
	case "linux_binprm", "file", "path", "string":
		b.pathArg(k, m, field)
	case "net_device":
		b.netDevice(m, field)
	case "fd": // dup's old descriptor: the family of the socket it is
		if b.claim(pFamily, m, field) {
			b.s.Families = b.small(m, field, "family")
		}
	case "int", "syscall64":
		if len(m.Syscalls) > 0 {
			return // raw_syscalls: the system calls choose the points
		}
		b.intArg(k, m, field)
	default:
		b.c.errorf(m.Pos, field, "%s on a %s argument is not supported", m.Operator, m.ArgType)
	}
}

// typeClass is the class of an argument type: the integer types are
// "int", filename and data_loc are "string".
func typeClass(typ string) string {
	switch typ {
	case "filename", "data_loc":
		return "string"
	case "syscall64", "sock", "socket", "skb", "sockaddr", "linux_binprm", "file", "path", "string", "fd", "nop", "net_device":
		return typ
	}
	return "int"
}

// intArg compiles Equal (InMap) on an integer argument ocigate reads.
func (b *selBuilder) intArg(k *policy.Kprobe, m *policy.ArgMatch, field string) {
	if k.Call == "tcp_set_state" && m.Index == 1 {
		b.acceptState(k, m, field)
		return
	}
	p, ok := intArgs[k.Call][m.Index]
	if !ok {
		b.c.errorf(m.Pos, field, "%s on int argument %d of %s is not supported: ocigate reads %s", m.Operator, m.Index, k.Call, describeIntArgs())
		return
	}
	if m.Operator != "Equal" && m.Operator != "InMap" {
		b.c.errorf(m.Pos, field, "%s on the %s of %s is not supported: it takes Equal (InMap) only", m.Operator, predNames[p], k.Call)
		return
	}
	if !b.claim(p, m, field) {
		return
	}
	switch p {
	case pFamily:
		b.s.Families = b.small(m, field, "family")
	case pType:
		b.s.SockTypes = b.small(m, field, "socket type")
	case pFds:
		b.s.Fds = b.small(m, field, "descriptor")
	case pProtocol:
		b.protocols(m, field)
	}
}

// describeIntArgs lists the integer arguments ocigate reads.
func describeIntArgs() string {
	return "sk_alloc's family (1); socket creation's family (0), type (1) and protocol (2); the dup calls' new descriptor (1)"
}

// sockArg compiles an operator on a socket or an address.
func (b *selBuilder) sockArg(k *policy.Kprobe, m *policy.ArgMatch, field string, ops map[string]operand) {
	op, ok := ops[m.Operator]
	if !ok {
		b.c.errorf(m.Pos, field, "operator %s on %s arg %d of %s is not supported", m.Operator, m.ArgType, m.Index, k.Call)
		return
	}
	if !b.claim(op.p, m, field) {
		return
	}
	s := b.s
	switch op.p {
	case pDaddr:
		s.Daddr = AddrMatch{Not: op.not, Prefixes: slices.Clone(m.Prefixes)}
	case pSaddr:
		s.Saddr = AddrMatch{Not: op.not, Prefixes: slices.Clone(m.Prefixes)}
	case pDport:
		s.Dport = ports(op, m)
	case pSport:
		s.Sport = ports(op, m)
	case pProtocol:
		b.protocols(m, field)
	case pFamily:
		s.Families = b.small(m, field, "family")
	case pState:
		s.States = b.small(m, field, "state")
	}
}

// protocols compiles a protocol list.
func (b *selBuilder) protocols(m *policy.ArgMatch, field string) {
	for i, v := range m.Numbers {
		if v < 0 || v > 255 {
			b.c.errorf(m.Pos, fmt.Sprintf("%s[%d]", join(field, "values"), i), "protocol %d: want 0-255", v)
			continue
		}
		b.s.Protocols = append(b.s.Protocols, uint8(v))
	}
}

// pathArg compiles an operator on the executed file (linux_binprm, file,
// path, exec's filename) or, at the memfd point, the memfd's name.
func (b *selBuilder) pathArg(k *policy.Kprobe, m *policy.ArgMatch, field string) {
	s := b.s
	switch m.Operator {
	case "StdioSocket":
		s.StdioInet = true
		return
	case "StdioDialled":
		s.StdioInet, s.StdioDialled = true, true
		return
	case "Fileless":
		s.Fileless = true
		return
	case "RelayedShell":
		s.Relayed = true
		return
	}
	if slices.Contains(b.h.points, PointMemfd) {
		b.memfdName(m, field)
		return
	}
	if !slices.Contains(b.h.points, PointExec) {
		b.c.errorf(m.Pos, field, "%s on argument %d of %s is not supported: ocigate reads the executed file's path at the exec point only", m.Operator, m.Index, k.Call)
		return
	}
	op := m.Operator
	switch op {
	case "Equal":
		op = BinaryIn
	case "NotEqual":
		op = BinaryNotIn
	}
	kind := strings.TrimPrefix(op, "Not")
	for _, have := range s.Paths {
		if strings.TrimPrefix(have.Operator, "Not") == kind {
			b.c.errorf(m.Pos, field, "%s: a selector holds one path match of kind %s (Equal/NotEqual, Prefix/NotPrefix, Postfix/NotPostfix)", m.Operator, kind)
			return
		}
	}
	s.Paths = append(s.Paths, BinaryMatch{Operator: op, Values: slices.Clone(m.Strings)})
}

// memfdName compiles Equal or NotEqual on memfd_create's name.
func (b *selBuilder) memfdName(m *policy.ArgMatch, field string) {
	b.names(m, field, "the memfd's name", "", func(v string) string {
		if len(v) >= MaxNameLen {
			return fmt.Sprintf("%q: the kernel reads a memfd's name up to %d bytes", v, MaxNameLen-1)
		}
		return ""
	})
}

// ifNameSize is the kernel's IFNAMSIZ: a device name and its NUL.
const ifNameSize = 16

// netDevice compiles Equal or NotEqual on a net_device argument: the
// device's name (dev_hard_start_xmit).
func (b *selBuilder) netDevice(m *policy.ArgMatch, field string) {
	b.names(m, field, "a net_device", " on the device's name", func(v string) string {
		if v == "" || len(v) >= ifNameSize {
			return fmt.Sprintf("%q is not a device name: 1 to %d bytes", v, ifNameSize-1)
		}
		return ""
	})
}

// names compiles Equal or NotEqual on a name the kernel holds (what
// names it in errors, on says of what when it is not the name itself);
// bad says what is wrong with one value, "" when nothing is.
func (b *selBuilder) names(m *policy.ArgMatch, field, what, on string, bad func(string) string) {
	if m.Operator != "Equal" && m.Operator != "NotEqual" {
		b.c.errorf(m.Pos, field, "%s on %s is not supported: it takes Equal and NotEqual%s", m.Operator, what, on)
		return
	}
	if !b.claim(pName, m, field) {
		return
	}
	for i, v := range m.Strings {
		if msg := bad(v); msg != "" {
			b.c.errorf(m.Pos, fmt.Sprintf("%s[%d]", join(field, "values"), i), "%s", msg)
			return
		}
	}
	b.s.Names = NameMatch{Not: m.Operator == "NotEqual", Names: slices.Clone(m.Strings)}
}

// small converts values the kernel keeps in a 32-bit set (families,
// types, states, descriptors).
func (b *selBuilder) small(m *policy.ArgMatch, field, what string) []uint8 {
	var out []uint8
	for i, v := range m.Numbers {
		if v < 0 || v > 31 {
			b.c.errorf(m.Pos, fmt.Sprintf("%s[%d]", join(field, "values"), i), "%s %d cannot be matched: the kernel side matches %s 0-31", what, v, what)
			continue
		}
		out = append(out, uint8(v))
	}
	return out
}

// ports is the port match of a port operator.
func ports(op operand, m *policy.ArgMatch) PortMatch {
	if op.priv {
		return PortMatch{Not: op.not, Ranges: []PortRange{PrivilegedPorts}}
	}
	pm := PortMatch{Not: op.not}
	for _, r := range m.Ports {
		pm.Ranges = append(pm.Ranges, PortRange{r.Lo, r.Hi})
	}
	return pm
}
