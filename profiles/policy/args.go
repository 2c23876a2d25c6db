package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// matchArg reads one matchArgs[] entry.
func (p *parser) matchArg(n *yaml.Node, path string, k *kprobeCtx) (ArgMatch, bool) {
	f, ok := p.mapping(n, path, matchArgFields, nil)
	if !ok {
		return ArgMatch{}, false
	}
	m := ArgMatch{Pos: p.pos(n)}
	arg, idxOK := p.matchArgIndex(f, n, path, k, &m)
	on := p.required(f, "operator", path, "")
	op, opOK := p.str(on, join(path, "operator"))
	m.Operator = op
	if !opOK {
		return m, false
	}
	kind, ok := p.operatorKind(op, arg, k, on.Line, join(path, "operator"))
	if !ok {
		return m, idxOK
	}
	if kind == kindNone {
		if v := f.get("values"); v != nil && (v.Kind != yaml.SequenceNode || len(v.Content) > 0) {
			p.errorf(v.Line, join(path, "values"), "%s takes no values", op)
		}
		return m, idxOK
	}
	limit := MaxListLen
	if kind == kindAddr {
		limit = MaxAddrListLen
	}
	items := p.values(f, path, "", limit)
	vc := valueCtx{kind: kind, op: op, family: isFamilyArg(arg, k.call)}
	if arg != nil {
		vc.class = typeClass(arg.Type)
	}
	m.Raw = make([]string, 0, len(items))
	for i, vn := range items {
		p.matchValue(&m, vn, index(join(path, "values"), i), vc, k)
	}
	return m, idxOK
}

// valueCtx is how the values of one match are read.
type valueCtx struct {
	kind   valueKind
	op     string
	class  string // the argument's type class
	family bool   // an integer argument that is an address family: AF_ names too
}

// matchValue reads one value of a match into m.
func (p *parser) matchValue(m *ArgMatch, vn *yaml.Node, field string, vc valueCtx, k *kprobeCtx) {
	raw, text, err := scalarValue(vn)
	if err == nil {
		switch vc.kind {
		case kindString:
			err = m.addString(vc, text)
		case kindSyscall:
			err = p.addSyscalls(m, text, k.sc, vn.Line, field)
		default:
			err = m.add(vc.kind, text, vc.family)
		}
	}
	if err != nil {
		p.errorf(vn.Line, field, "%s", err.Error())
		return
	}
	m.Raw = append(m.Raw, raw)
}

// matchArgIndex reads the argument a match is on: args (its position
// among the declared arguments, as Tetragon's args field) or index.
func (p *parser) matchArgIndex(f fields, n *yaml.Node, path string, k *kprobeCtx, m *ArgMatch) (*Arg, bool) {
	if an := f.get("args"); an != nil {
		items := p.seq(an, join(path, "args"), MaxListLen)
		if len(items) != 1 {
			p.errorf(an.Line, join(path, "args"), "one argument position is required (only Tetragon's CapabilitiesGained takes several)")
			return nil, false
		}
		pos, ok := p.integer(items[0], index(join(path, "args"), 0), 0, int64(len(k.order)-1))
		if !ok {
			return nil, false
		}
		a := k.order[pos]
		m.Index, m.ArgType = a.Index, a.Type
		return a, true
	}
	in := p.required(f, "index", path, " (a declared argument)")
	idx, ok := p.integer(in, join(path, "index"), 0, 31)
	m.Index = int(idx)
	if !ok {
		return nil, false
	}
	if k.kind == HookTracepoint {
		// A tracepoint's matchArgs index is the argument's position in
		// args (its own index is the format field it reads).
		if int(idx) >= len(k.order) {
			p.errorf(in.Line, join(path, "index"), "a tracepoint has %d declared arguments: index %d is none of them (a tracepoint's matchArgs index is the position in args)", len(k.order), idx)
			return nil, false
		}
		a := k.order[idx]
		m.Index, m.ArgType = a.Index, a.Type
		return a, true
	}
	arg := k.args[m.Index]
	if arg == nil {
		p.errorf(in.Line, join(path, "index"), "argument %d is not declared in args (declared: %s)", m.Index, declaredArgs(k.args))
		return nil, false
	}
	m.ArgType = arg.Type
	return arg, true
}

// operatorKind checks op against the argument's type and says how its
// values are read.
func (p *parser) operatorKind(op string, arg *Arg, k *kprobeCtx, line int, field string) (valueKind, bool) {
	tetragon := slices.Contains(tetragonOperators, op)
	if !tetragon && !slices.Contains(ocigateOperators, op) {
		p.errorf(line, field, "%q is not an operator (Tetragon's: %s)", op, strings.Join(tetragonOperators, ", "))
		return 0, false
	}
	if arg == nil || arg.Type == "" {
		return 0, false
	}
	class := typeClass(arg.Type)
	if k.call == "raw_syscalls/sys_enter" {
		class = "syscall64"
	}
	allowed := operatorsFor[class]
	if !slices.Contains(allowed, op) {
		switch {
		case len(allowed) == 0:
			p.errorf(line, field, "%s does not apply to argument %d of type %s: ocigate does not read it", op, arg.Index, arg.Type)
		case tetragon && !slices.Contains(slices.Concat(operatorsFor["sock"], operatorsFor["linux_binprm"], operatorsFor["int"]), op):
			p.errorf(line, field, "Tetragon's %s is not supported by ocigate (supported for %s: %s)", op, arg.Type, strings.Join(allowed, ", "))
		default:
			p.errorf(line, field, "%s does not apply to argument %d of type %s (supported for %s: %s)", op, arg.Index, arg.Type, arg.Type, strings.Join(allowed, ", "))
		}
		return 0, false
	}
	return kindOf(op, class), true
}

// kindOf is how op's values are read on an argument of type class.
func kindOf(op, class string) valueKind {
	switch op {
	case "SAddr", "DAddr", "NotSAddr", "NotDAddr":
		return kindAddr
	case "SPort", "DPort", "NotSPort", "NotDPort":
		return kindPort
	case "Protocol":
		return kindProtocol
	case "Family":
		return kindFamily
	case "State":
		return kindState
	case "Prefix", "NotPrefix", "Postfix", "NotPostfix":
		return kindString
	case "Equal", "NotEqual", "InMap", "NotInMap":
		switch class {
		case "int":
			return kindInt
		case "syscall64":
			return kindSyscall
		}
		return kindString
	}
	return kindNone
}

// isFamilyArg reports whether arg is an address family: sk_alloc's
// argument 1, socket creation's argument 0, or one labelled family.
func isFamilyArg(arg *Arg, call string) bool {
	if arg == nil {
		return false
	}
	switch {
	case strings.EqualFold(arg.Label, "family"):
		return true
	case call == "sk_alloc":
		return arg.Index == 1
	case call == "security_socket_create" || call == "socket_create" || call == "sys_socket":
		return arg.Index == 0
	}
	return false
}

// addString adds a string value: a path of the executed file, or a name.
// A trailing NUL (Tetragon's docs write "/etc/passwd\0" for strings
// read from user memory) is dropped.
func (m *ArgMatch) addString(vc valueCtx, s string) error {
	s = strings.TrimSuffix(s, "\x00")
	op := vc.op
	switch {
	case s == "":
		return fmt.Errorf("an empty value matches nothing")
	case vc.class == "net_device":
		if strings.ContainsAny(s, "/\x00 ") || len(s) > 15 {
			return fmt.Errorf("%q is not a network device's name (up to 15 bytes, no '/', NUL or space)", s)
		}
	case vc.class != "string" && (op == "Equal" || op == "NotEqual"):
		if msg := checkPathValue("In", s); msg != "" {
			return fmt.Errorf("%s", strings.Replace(msg, "(In ", "("+op+" ", 1))
		}
	case vc.class != "string":
		if msg := checkPathValue(op, s); msg != "" {
			return fmt.Errorf("%s", msg)
		}
	case strings.ContainsRune(s, 0) || len(s) > 4096:
		return fmt.Errorf("%q contains a NUL byte or is longer than 4096 bytes", s)
	}
	m.Strings = append(m.Strings, s)
	return nil
}

// addSyscalls adds system calls: a name (sys_dup, __x64_sys_dup,
// i386/sys_dup), an x86-64 number or list:NAME. Each must be one ocigate
// enforces.
func (p *parser) addSyscalls(m *ArgMatch, s string, sc *specCtx, line int, field string) error {
	names := []string{s}
	if strings.HasPrefix(s, "list:") {
		l, ok := p.listRef(sc, s, line, field)
		if !ok {
			return nil
		}
		if l.typ != "syscalls" {
			return fmt.Errorf("list %q is not of type syscalls", l.name)
		}
		names = l.values
	}
	for _, v := range names {
		name, ok := syscallName(v)
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			name, ok = syscallNumbers[n]
		}
		if !ok {
			return fmt.Errorf("%q is not a system call name or number", v)
		}
		if _, enforced := syscallPoints[name]; !enforced {
			return fmt.Errorf("%s", refusal("system call "+name, strings.TrimPrefix(name, "sys_")))
		}
		p.compatNote(v, line, field)
		if !slices.Contains(m.Syscalls, name) {
			m.Syscalls = append(m.Syscalls, name)
		}
	}
	return nil
}

// compatNote notes a 32-bit system call: ocigate's points see the
// 64-bit ones.
func (p *parser) compatNote(v string, line int, field string) {
	if strings.Contains(v, "ia32") || strings.HasPrefix(v, "i386/") {
		p.notef(line, field, "%s: 32-bit system calls are not seen by ocigate's points (64-bit only); it stands for the 64-bit call", v)
	}
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
