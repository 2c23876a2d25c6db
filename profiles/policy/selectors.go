package policy

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// kprobeCtx is what selectors need to know of their kprobe.
type kprobeCtx struct {
	call string       // "" when the call was not valid
	args map[int]*Arg // declared arguments by index
}

// valueKind says how an operator's values are parsed.
type valueKind int

const (
	kindNone valueKind = iota // *PortPriv: no values
	kindAddr
	kindPort
	kindProtocol
	kindFamily
	kindState
	kindInt
)

var operators = map[string]valueKind{
	"SAddr": kindAddr, "DAddr": kindAddr, "NotSAddr": kindAddr, "NotDAddr": kindAddr,
	"SPort": kindPort, "DPort": kindPort, "NotSPort": kindPort, "NotDPort": kindPort,
	"SPortPriv": kindNone, "DPortPriv": kindNone, "NotSPortPriv": kindNone, "NotDPortPriv": kindNone,
	"Protocol": kindProtocol, "Family": kindFamily, "State": kindState,
	"Equal": kindInt, "NotEqual": kindInt,
	"StdioSocket": kindNone, "Fileless": kindNone, "RelayedShell": kindNone,
}

// operatorsFor lists the operators each argument type takes.
var operatorsFor = map[string][]string{
	"sock": {"SAddr", "DAddr", "NotSAddr", "NotDAddr", "SPort", "DPort", "NotSPort", "NotDPort",
		"SPortPriv", "DPortPriv", "NotSPortPriv", "NotDPortPriv", "Protocol", "Family", "State"},
	"sockaddr": {"SAddr", "NotSAddr", "SPort", "NotSPort", "Family"},
	"int":      {"Equal", "NotEqual"},
	"fd":       {"Family"}, // the family of the socket the descriptor is, if any
	// the exec: stdin, stdout or stderr is a network socket; the file has
	// no link on disk (memfd, deleted)
	"linux_binprm": {"StdioSocket", "Fileless", "RelayedShell"},
}

func init() { operatorsFor["socket"] = operatorsFor["sock"] }

var (
	binaryOperators = []string{"In", "NotIn", "Prefix", "NotPrefix", "Postfix", "NotPostfix"}
	namespaceTypes  = []string{"Uts", "Ipc", "Mnt", "Pid", "PidForChildren", "Net", "Time",
		"TimeForChildren", "Cgroup", "User"}
	actions = []string{"Post", "NoPost", "Sigkill", "Override", "NotifyEnforcer", "Signal",
		"TrackSock", "UntrackSock"}

	selectorFields = []string{"matchArgs", "matchBinaries", "matchNamespaces", "matchActions"}
	selectorUnsupp = map[string]string{"matchPIDs": "", "matchReturnArgs": "", "matchReturnActions": "",
		"matchNamespaceChanges": "", "matchCapabilities": "", "matchCapabilityChanges": "",
		"matchParentBinaries": "", "matchData": ""}
	matchArgFields = []string{"index", "operator", "values"}
	binaryFields   = []string{"operator", "values"}
	binaryUnsupp   = map[string]string{"followChildren": ""}
	nsFields       = []string{"namespace", "operator", "values"}
	actionFields   = []string{"action", "argError", "argSig", "argSock"}
	actionUnsupp   = map[string]string{"argFd": "", "argName": "", "argUrl": "", "argFqdn": "",
		"rateLimit": "", "rateLimitScope": "", "kernelStackTrace": "", "userStackTrace": "", "imaHash": ""}
)

func (p *parser) selector(n *yaml.Node, path string, k *kprobeCtx) (Selector, bool) {
	f, ok := p.mapping(n, path, selectorFields, selectorUnsupp)
	if !ok {
		return Selector{}, false
	}
	s := Selector{Pos: p.pos(n)}
	for i, c := range p.seq(f.get("matchArgs"), join(path, "matchArgs"), MaxListLen) {
		if m, ok := p.matchArg(c, index(join(path, "matchArgs"), i), k); ok {
			s.Args = append(s.Args, m)
		}
	}
	for i, c := range p.seq(f.get("matchBinaries"), join(path, "matchBinaries"), MaxListLen) {
		if m, ok := p.matchBinary(c, index(join(path, "matchBinaries"), i)); ok {
			s.Binaries = append(s.Binaries, m)
		}
	}
	for i, c := range p.seq(f.get("matchNamespaces"), join(path, "matchNamespaces"), MaxListLen) {
		if m, ok := p.matchNamespace(c, index(join(path, "matchNamespaces"), i)); ok {
			s.Namespaces = append(s.Namespaces, m)
		}
	}
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

func (p *parser) matchArg(n *yaml.Node, path string, k *kprobeCtx) (ArgMatch, bool) {
	f, ok := p.mapping(n, path, matchArgFields, nil)
	if !ok {
		return ArgMatch{}, false
	}
	m := ArgMatch{Pos: p.pos(n)}
	in := p.required(f, "index", path, " (a declared argument)")
	idx, idxOK := p.integer(in, join(path, "index"), 0, 4)
	m.Index = int(idx)
	var arg *Arg
	if idxOK {
		if arg = k.args[m.Index]; arg == nil {
			p.errorf(in.Line, join(path, "index"), "argument %d is not declared in args (declared: %s)", m.Index, declared(k.args))
		} else {
			m.ArgType = arg.Type
		}
	}
	on := p.required(f, "operator", path, "")
	op, opOK := p.str(on, join(path, "operator"))
	kind, known := operators[op]
	if opOK && !known {
		p.errorf(on.Line, join(path, "operator"), "%q is not a supported operator (supported: %s, %s)",
			op, strings.Join(operatorsFor["sock"], ", "), strings.Join(operatorsFor["int"], ", "))
	}
	if known && m.ArgType != "" && !slices.Contains(operatorsFor[m.ArgType], op) {
		p.errorf(on.Line, join(path, "operator"), "%s does not apply to argument %d of type %s (supported for %s: %s)",
			op, m.Index, m.ArgType, m.ArgType, strings.Join(operatorsFor[m.ArgType], ", "))
	}
	m.Operator = op
	if !known {
		return m, idxOK && opOK
	}
	vpath := join(path, "values")
	if kind == kindNone {
		if v := f.get("values"); v != nil && (v.Kind != yaml.SequenceNode || len(v.Content) > 0) {
			p.errorf(v.Line, vpath, "%s takes no values", op)
		}
		return m, idxOK
	}
	limit := MaxListLen
	if kind == kindAddr {
		limit = MaxAddrListLen
	}
	vn := p.required(f, "values", path, "")
	items := p.seq(vn, vpath, limit)
	if vn != nil && vn.Kind == yaml.SequenceNode && len(vn.Content) == 0 {
		p.errorf(vn.Line, vpath, "at least one value is required")
	}
	family := arg != nil && (k.call == "sk_alloc" && arg.Index == 1 || arg.Label == "family")
	m.Raw = make([]string, 0, len(items))
	for i, vn := range items {
		raw, text, err := scalarValue(vn)
		if err == nil {
			err = m.add(kind, text, family)
		}
		if err != nil {
			p.errorf(vn.Line, index(vpath, i), "%s", err.Error())
			continue
		}
		m.Raw = append(m.Raw, raw)
	}
	return m, idxOK
}

// add parses one value into m.
func (m *ArgMatch) add(kind valueKind, s string, family bool) error {
	var num int64
	var err error
	switch kind {
	case kindAddr:
		pfx, err := parseCIDR(s)
		if err == nil {
			m.Prefixes = append(m.Prefixes, pfx)
		}
		return err
	case kindPort:
		r, err := parsePortRange(s)
		if err == nil {
			m.Ports = append(m.Ports, r)
		}
		return err
	case kindProtocol:
		num, err = parseProtocol(s)
	case kindFamily:
		num, err = parseFamily(s)
	case kindState:
		num, err = parseState(s)
	case kindInt:
		num, err = parseInt32(s, family)
	}
	if err == nil {
		m.Numbers = append(m.Numbers, num)
	}
	return err
}

func declared(args map[int]*Arg) string {
	if len(args) == 0 {
		return "none"
	}
	idx := make([]int, 0, len(args))
	for i := range args {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	parts := make([]string, len(idx))
	for j, i := range idx {
		parts[j] = fmt.Sprintf("%d %s", i, args[i].Type)
	}
	return strings.Join(parts, ", ")
}

func (p *parser) matchBinary(n *yaml.Node, path string) (BinaryMatch, bool) {
	f, ok := p.mapping(n, path, binaryFields, binaryUnsupp)
	if !ok {
		return BinaryMatch{}, false
	}
	m := BinaryMatch{Pos: p.pos(n)}
	m.Operator, ok = p.oneOf(f, "operator", path, "operator", binaryOperators)
	vpath := join(path, "values")
	vn := p.required(f, "values", path, "")
	items := p.seq(vn, vpath, MaxListLen)
	if vn != nil && vn.Kind == yaml.SequenceNode && len(vn.Content) == 0 {
		p.errorf(vn.Line, vpath, "at least one value is required")
	}
	for i, c := range items {
		s, sok := p.str(c, index(vpath, i))
		if !sok {
			continue
		}
		switch {
		case strings.ContainsRune(s, 0):
			p.errorf(c.Line, index(vpath, i), "%q contains a NUL byte", s)
		case len(s) > 4096:
			p.errorf(c.Line, index(vpath, i), "longer than 4096 bytes")
		case strings.HasSuffix(m.Operator, "Postfix") && s == "":
			p.errorf(c.Line, index(vpath, i), "an empty suffix matches every binary")
		case m.Operator != "" && !strings.HasSuffix(m.Operator, "Postfix") && !strings.HasPrefix(s, "/"):
			p.errorf(c.Line, index(vpath, i), "%q is not an absolute path (%s takes absolute paths)", s, m.Operator)
		default:
			m.Values = append(m.Values, s)
		}
	}
	return m, ok
}

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
	vn := p.required(f, "values", path, " (namespace inode numbers or host_ns)")
	items := p.seq(vn, vpath, MaxListLen)
	if vn != nil && vn.Kind == yaml.SequenceNode && len(vn.Content) == 0 {
		p.errorf(vn.Line, vpath, "at least one value is required")
	}
	for i, c := range items {
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

func (p *parser) action(n *yaml.Node, path string, k *kprobeCtx) (Action, bool) {
	f, ok := p.mapping(n, path, actionFields, actionUnsupp)
	if !ok {
		return Action{}, false
	}
	a := Action{Pos: p.pos(n)}
	a.Action, ok = p.oneOf(f, "action", path, "action", actions)
	takes := func(key string, allowed ...string) bool {
		if f.get(key) == nil {
			return false
		}
		if !slices.Contains(allowed, a.Action) {
			if a.Action != "" {
				p.errorf(f.line(key), join(path, key), "not allowed with %s (only with %s)", a.Action, strings.Join(allowed, ", "))
			}
			return false
		}
		return true
	}
	if takes("argError", "Override", "NotifyEnforcer") {
		if v, vok := p.integer(f.get("argError"), join(path, "argError"), -4095, -1); vok {
			a.ArgError, a.HasArgError = int32(v), true
		}
	}
	if takes("argSig", "Signal", "NotifyEnforcer") {
		sn := f.get("argSig")
		if _, text, err := scalarValue(sn); err != nil {
			p.errorf(sn.Line, join(path, "argSig"), "%s", err.Error())
		} else if sig, err := parseSignal(text); err != nil {
			p.errorf(sn.Line, join(path, "argSig"), "%s", err.Error())
		} else {
			a.ArgSig, a.HasArgSig = sig, true
		}
	}
	sockOK := true
	if takes("argSock", "TrackSock", "UntrackSock") {
		v, vok := p.integer(f.get("argSock"), join(path, "argSock"), 0, 4)
		a.ArgSock, sockOK = int(v), vok
	}
	switch a.Action {
	case "Override":
		if !a.HasArgError && f.get("argError") == nil {
			p.errorf(n.Line, join(path, "argError"), "required with Override (a negative errno, e.g. -1 for EPERM)")
		}
	case "NotifyEnforcer":
		if !a.HasArgError {
			a.ArgError = -1
		}
	case "Signal":
		if !a.HasArgSig && f.get("argSig") == nil {
			p.errorf(n.Line, join(path, "argSig"), "required with Signal (a number 1-64 or a name such as SIGKILL)")
		}
	case "TrackSock", "UntrackSock":
		if arg := k.args[a.ArgSock]; sockOK && (arg == nil || arg.Type != "sock") {
			p.errorf(f.line("argSock"), join(path, "argSock"), "argument %d is not a declared sock argument (declared: %s)", a.ArgSock, declared(k.args))
		}
	}
	return a, ok
}
