package policy

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// kprobeCtx is what selectors need to know of their hook.
type kprobeCtx struct {
	call  string       // the call, LSM hook or tracepoint
	kind  string       // HookKprobe, ...
	args  map[int]*Arg // declared arguments by index
	order []*Arg       // declared arguments in the order written (matchArgs' args field)
	sc    *specCtx
}

// valueKind says how an operator's values are parsed.
type valueKind int

const (
	kindNone valueKind = iota // *PortPriv, StdioSocket, ...: no values
	kindAddr
	kindPort
	kindProtocol
	kindFamily
	kindState
	kindInt
	kindString
	kindSyscall
)

// tetragonOperators are every matchArgs operator of Tetragon's schema.
var tetragonOperators = []string{"Equal", "NotEqual", "Prefix", "NotPrefix", "Postfix", "NotPostfix",
	"GreaterThan", "LessThan", "GT", "LT", "Mask", "SPort", "NotSPort", "SPortPriv", "NotSportPriv",
	"DPort", "NotDPort", "DPortPriv", "NotDPortPriv", "SAddr", "NotSAddr", "DAddr", "NotDAddr",
	"Protocol", "Family", "State", "InMap", "NotInMap", "CapabilitiesGained", "InRange", "NotInRange",
	"SubString", "SubStringIgnCase", "CelExpr", "FileType", "NotFileType"}

// ocigateOperators are operators ocigate adds: predicates on an exec
// Tetragon cannot express (NotSPortPriv is the spelling ocigate always
// took for Tetragon's NotSportPriv).
var ocigateOperators = []string{"StdioSocket", "StdioDialled", "Fileless", "RelayedShell", "NotSPortPriv"}

var (
	sockOperators = []string{"SAddr", "DAddr", "NotSAddr", "NotDAddr", "SPort", "DPort", "NotSPort", "NotDPort",
		"SPortPriv", "DPortPriv", "NotSPortPriv", "NotSportPriv", "NotDPortPriv", "Protocol", "Family", "State"}
	pathOperators = []string{"Equal", "NotEqual", "Prefix", "NotPrefix", "Postfix", "NotPostfix"}
	// operatorsFor lists the operators each argument type class takes.
	operatorsFor = map[string][]string{
		"sock":   sockOperators,
		"socket": sockOperators,
		"skb": {"SAddr", "DAddr", "NotSAddr", "NotDAddr", "SPort", "DPort", "NotSPort", "NotDPort",
			"SPortPriv", "DPortPriv", "NotSPortPriv", "NotSportPriv", "NotDPortPriv", "Protocol", "Family"},
		"sockaddr":     {"SAddr", "NotSAddr", "SPort", "NotSPort", "SPortPriv", "NotSPortPriv", "NotSportPriv", "Family"},
		"int":          {"Equal", "NotEqual", "InMap", "NotInMap"},
		"syscall64":    {"Equal", "NotEqual", "InMap", "NotInMap"},
		"fd":           {"Family"}, // the family of the socket the descriptor is, if any
		"linux_binprm": append(slices.Clone(pathOperators), "StdioSocket", "StdioDialled", "Fileless", "RelayedShell"),
		"file":         pathOperators,
		"path":         pathOperators,
		"string":       pathOperators,
		"net_device":   {"Equal", "NotEqual"}, // the device's name
	}
	binaryOperators = []string{"In", "NotIn", "Prefix", "NotPrefix", "Postfix", "NotPostfix"}
	namespaceTypes  = []string{"Uts", "Ipc", "Mnt", "Pid", "PidForChildren", "Net", "Time",
		"TimeForChildren", "Cgroup", "User"}
	// Actions are every action of Tetragon's schema.
	Actions = []string{"Post", "NoPost", "Sigkill", "Override", "NotifyEnforcer", "Signal",
		"TrackSock", "UntrackSock", "GetUrl", "DnsLookup", "CleanupEnforcerNotification", "Set"}

	selectorKeys   = []string{"matchArgs", "matchBinaries", "matchNamespaces", "matchActions", "matchPIDs", "matchCapabilities", "matchNamespaceChanges", "label", "matchWorkloads"}
	selectorUnread = map[string]string{
		"matchData":              ": data fields read kernel memory beside the arguments; ocigate reads only the arguments of the calls it enforces",
		"matchReturnArgs":        ": ocigate decides before the call runs, so the return value is its own verdict; closest: matchArgs",
		"matchReturnActions":     ": ocigate decides before the call runs and acts then; closest: matchActions",
		"matchCapabilityChanges": ": ocigate does not record a process's capabilities at its exec; closest: matchCapabilities",
		"matchParentBinaries":    ": ocigate matches the process's own binary; closest: matchBinaries",
	}
	matchArgFields = []string{"index", "args", "operator", "values"}
	binaryFields   = []string{"operator", "values", "followChildren"}
	nsFields       = []string{"namespace", "operator", "values"}
	pidFields      = []string{"operator", "values", "followForks", "isNamespacePID"}
	capFields      = []string{"type", "operator", "values", "isNamespaceCapability"}
	nsChangeFields = []string{"operator", "values"}
	workloadFields = []string{"podSelector", "containerSelector", "hostSelector"}
	actionFields   = []string{"action", "argError", "argSig", "argSock", "argUrl", "argFqdn", "rateLimit",
		"rateLimitScope", "kernelStackTrace", "userStackTrace", "imaHash", "argIndex", "argValue",
		"argRegs", "argNewSymbol", "argNewAddr", "argNewOffset"}
)

// selector reads one selectors[] entry (macros already merged).
func (p *parser) selector(n *yaml.Node, path string, k *kprobeCtx) (Selector, bool) {
	f, ok := p.mapping(n, path, selectorKeys, selectorUnread)
	if !ok {
		return Selector{}, false
	}
	s := Selector{Pos: p.pos(n)}
	s.Label, _ = p.str(f.get("label"), join(path, "label"))
	collect(p, f, path, "matchArgs", func(c *yaml.Node, ip string) (ArgMatch, bool) { return p.matchArg(c, ip, k) }, &s.Args)
	collect(p, f, path, "matchBinaries", p.matchBinary, &s.Binaries)
	collect(p, f, path, "matchNamespaces", p.matchNamespace, &s.Namespaces)
	collect(p, f, path, "matchPIDs", p.matchPID, &s.PIDs)
	collect(p, f, path, "matchCapabilities", p.matchCapability, &s.Capabilities)
	collect(p, f, path, "matchNamespaceChanges", p.matchNamespaceChange, &s.NamespaceChanges)
	p.matchWorkloads(f.get("matchWorkloads"), join(path, "matchWorkloads"))
	items := p.seq(f.get("matchActions"), join(path, "matchActions"), MaxListLen)
	for i, c := range items {
		if a, ok := p.action(c, index(join(path, "matchActions"), i), k); ok {
			s.Actions = append(s.Actions, a)
		}
	}
	if len(items) == 0 {
		s.Actions = []Action{{Pos: s.Pos, Action: "Post"}}
		s.ImplicitPost = true
	}
	return s, true
}

// collect parses every item of the list field key of f with parse and
// appends what it accepts to out.
func collect[T any](p *parser, f fields, path, key string, parse func(c *yaml.Node, ip string) (T, bool), out *[]T) {
	kpath := join(path, key)
	for i, c := range p.seq(f.get(key), kpath, MaxListLen) {
		if m, ok := parse(c, index(kpath, i)); ok {
			*out = append(*out, m)
		}
	}
}

// matchWorkloads reads a selector's workload filter: as spec's selectors,
// only {} (every container) is accepted.
func (p *parser) matchWorkloads(n *yaml.Node, path string) {
	if n == nil {
		return
	}
	f, ok := p.mapping(n, path, workloadFields, nil)
	if !ok {
		return
	}
	for _, key := range workloadFields {
		if v := f.get(key); v != nil && !p.labelSelector(v, join(path, key)) || key == "hostSelector" && v != nil {
			p.errorf(f.line(key), join(path, key), "refused: ocigate chooses the containers a policy applies to with a WorkloadProfile's match; only empty pod and container selectors are accepted here")
		}
	}
}

// required reports a missing key and returns its value node.
func (p *parser) required(f fields, key, path, hint string) *yaml.Node {
	v := f.get(key)
	if v == nil {
		p.errorf(f.line(key), join(path, key), "required%s", hint)
	}
	return v
}

// oneOf reads a string that must be one of allowed.
func (p *parser) oneOf(f fields, key, path, what string, allowed []string) (string, bool) {
	v := p.required(f, key, path, " ("+strings.Join(allowed, ", ")+")")
	s, ok := p.str(v, join(path, key))
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, s) {
		p.errorf(v.Line, join(path, key), "%q is not a supported %s (supported: %s)", s, what, strings.Join(allowed, ", "))
		return "", false
	}
	return s, true
}

// values reads the values list of a match: required and not empty.
func (p *parser) values(f fields, path, hint string, limit int) []*yaml.Node {
	vpath := join(path, "values")
	vn := p.required(f, "values", path, hint)
	items := p.seq(vn, vpath, limit)
	if vn != nil && vn.Kind == yaml.SequenceNode && len(vn.Content) == 0 {
		p.errorf(vn.Line, vpath, "at least one value is required")
	}
	return items
}

// matchBinary reads one matchBinaries[] entry.
func (p *parser) matchBinary(n *yaml.Node, path string) (BinaryMatch, bool) {
	f, ok := p.mapping(n, path, binaryFields, nil)
	if !ok {
		return BinaryMatch{}, false
	}
	m := BinaryMatch{Pos: p.pos(n)}
	m.Operator, ok = p.oneOf(f, "operator", path, "operator", binaryOperators)
	if follow, _ := p.boolean(f.get("followChildren"), join(path, "followChildren")); follow {
		p.errorf(f.line("followChildren"), join(path, "followChildren"), "refused: ocigate matches each process's own binary, not its ancestors'; closest: list the children's binaries")
	}
	vpath := join(path, "values")
	for i, c := range p.values(f, path, "", MaxListLen) {
		s, sok := p.str(c, index(vpath, i))
		if !sok {
			continue
		}
		if msg := checkPathValue(m.Operator, s); msg != "" {
			p.errorf(c.Line, index(vpath, i), "%s", msg)
			continue
		}
		m.Values = append(m.Values, s)
	}
	return m, ok
}

// checkPathValue says what is wrong with a path value of operator op
// (matchBinaries, or the path operators on an executed file), "" if
// nothing.
func checkPathValue(op, s string) string {
	switch {
	case strings.ContainsRune(s, 0):
		return fmt.Sprintf("%q contains a NUL byte", s)
	case len(s) > 4096:
		return "longer than 4096 bytes"
	case strings.HasSuffix(op, "Postfix") && s == "":
		return "an empty suffix matches every binary"
	case op != "" && !strings.HasSuffix(op, "Postfix") && !strings.HasPrefix(s, "/"):
		return fmt.Sprintf("%q is not an absolute path (%s takes absolute paths)", s, op)
	}
	return ""
}

// matchNamespace reads one matchNamespaces[] entry.
func (p *parser) matchNamespace(n *yaml.Node, path string) (NamespaceMatch, bool) {
	f, ok := p.mapping(n, path, nsFields, nil)
	if !ok {
		return NamespaceMatch{}, false
	}
	m := NamespaceMatch{Pos: p.pos(n)}
	var nsOK bool
	m.Namespace, nsOK = p.oneOf(f, "namespace", path, "namespace", namespaceTypes)
	m.Operator, ok = p.oneOf(f, "operator", path, "operator", []string{"In", "NotIn"})
	vpath := join(path, "values")
	for i, c := range p.values(f, path, " (namespace inode numbers or host_ns)", MaxListLen) {
		_, text, err := scalarValue(c)
		if err == nil && text == "host_ns" {
			m.HostNS = true
			continue
		}
		if err == nil {
			v, perr := strconv.ParseUint(text, 10, 32)
			if perr == nil && v > 0 && isDigits(text) {
				m.Inodes = append(m.Inodes, v)
				continue
			}
			err = fmt.Errorf("%q is not a namespace inode number (1-%d) or host_ns", text, uint32(math.MaxUint32))
		}
		p.errorf(c.Line, index(vpath, i), "%s", err.Error())
	}
	return m, ok && nsOK
}

// matchPID reads one matchPIDs[] entry.
func (p *parser) matchPID(n *yaml.Node, path string) (PIDMatch, bool) {
	f, ok := p.mapping(n, path, pidFields, nil)
	if !ok {
		return PIDMatch{}, false
	}
	m := PIDMatch{Pos: p.pos(n)}
	m.Operator, ok = p.oneOf(f, "operator", path, "operator", []string{"In", "NotIn"})
	m.FollowForks, _ = p.boolean(f.get("followForks"), join(path, "followForks"))
	m.IsNamespacePID, _ = p.boolean(f.get("isNamespacePID"), join(path, "isNamespacePID"))
	vpath := join(path, "values")
	for i, c := range p.values(f, path, " (pids)", MaxListLen) {
		_, text, err := scalarValue(c)
		v, perr := strconv.ParseUint(text, 10, 32)
		if err != nil || perr != nil || !isDigits(text) {
			p.errorf(c.Line, index(vpath, i), "%q is not a pid (0-%d)", text, uint32(math.MaxUint32))
			continue
		}
		m.Values = append(m.Values, uint32(v))
	}
	return m, ok
}

// matchCapability reads one matchCapabilities[] entry.
func (p *parser) matchCapability(n *yaml.Node, path string) (CapabilityMatch, bool) {
	f, ok := p.mapping(n, path, capFields, nil)
	if !ok {
		return CapabilityMatch{}, false
	}
	m := CapabilityMatch{Pos: p.pos(n), Type: "Effective"}
	if f.get("type") != nil {
		m.Type, _ = p.oneOf(f, "type", path, "capability set", []string{"Effective", "Inheritable", "Permitted"})
	}
	m.Operator, ok = p.oneOf(f, "operator", path, "operator", []string{"In", "NotIn"})
	m.IsNamespaceCapability, _ = p.boolean(f.get("isNamespaceCapability"), join(path, "isNamespaceCapability"))
	vpath := join(path, "values")
	for i, c := range p.values(f, path, " (CAP_ names)", MaxListLen) {
		_, text, err := scalarValue(c)
		cp, ok := lookup(capabilityNames, text)
		if err != nil || !ok {
			p.errorf(c.Line, index(vpath, i), "%q is not a capability (CAP_CHOWN ... CAP_CHECKPOINT_RESTORE)", text)
			continue
		}
		m.Caps = append(m.Caps, int(cp))
	}
	return m, ok
}

// matchNamespaceChange reads one matchNamespaceChanges[] entry.
func (p *parser) matchNamespaceChange(n *yaml.Node, path string) (NamespaceChangeMatch, bool) {
	f, ok := p.mapping(n, path, nsChangeFields, nil)
	if !ok {
		return NamespaceChangeMatch{}, false
	}
	m := NamespaceChangeMatch{Pos: p.pos(n)}
	m.Operator, ok = p.oneOf(f, "operator", path, "operator", []string{"In", "NotIn"})
	vpath := join(path, "values")
	for i, c := range p.values(f, path, " (namespace types)", MaxListLen) {
		s, sok := p.str(c, index(vpath, i))
		if !sok {
			continue
		}
		if !slices.Contains(namespaceTypes, s) {
			p.errorf(c.Line, index(vpath, i), "%q is not a namespace type (supported: %s)", s, strings.Join(namespaceTypes, ", "))
			continue
		}
		m.Namespaces = append(m.Namespaces, s)
	}
	return m, ok
}
