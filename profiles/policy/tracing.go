package policy

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// callSpec is what ocigate supports of one kernel function.
type callSpec struct {
	args map[int]string // argument index → the only type it may be declared as
	ret  string         // type of returnArg; "" when return probes are not supported
}

// calls are the kernel functions a kprobe may name.
var calls = map[string]callSpec{
	"tcp_connect":             {args: map[int]string{0: "sock"}, ret: "int"},
	"security_socket_connect": {args: map[int]string{0: "socket", 1: "sockaddr", 2: "int"}, ret: "int"},
	"inet_csk_listen_start":   {args: map[int]string{0: "sock"}, ret: "int"},
	"tcp_sendmsg":             {args: map[int]string{0: "sock", 2: "int"}, ret: "int"},
	"tcp_close":               {args: map[int]string{0: "sock"}},
	"sk_alloc":                {args: map[int]string{1: "int"}, ret: "sock"},
	"__sk_free":               {args: map[int]string{0: "sock"}},
	"dup2":                    {args: map[int]string{0: "fd", 1: "int"}, ret: "int"},
	"dup3":                    {args: map[int]string{0: "fd", 1: "int", 2: "int"}, ret: "int"},
	// dup and fcntl(F_DUPFD*) pick the new descriptor: arg 1 is the one
	// they returned, so that one selector shape covers every duplication.
	"dup":                 {args: map[int]string{0: "fd", 1: "int"}, ret: "int"},
	"fcntl":               {args: map[int]string{0: "fd", 1: "int"}, ret: "int"},
	"security_bprm_check": {args: map[int]string{0: "linux_binprm"}, ret: "int"},
	"memfd_create":        {args: map[int]string{}},
}

// SupportedCalls lists the kernel functions a kprobe may name, in the
// order error messages give them.
var SupportedCalls = []string{"tcp_connect", "security_socket_connect", "inet_csk_listen_start",
	"tcp_sendmsg", "tcp_close", "sk_alloc", "__sk_free", "dup2", "dup3", "dup", "fcntl", "security_bprm_check", "memfd_create"}

var argTypes = []string{"sock", "socket", "sockaddr", "int", "fd", "linux_binprm"}

// MaxSelectors is the number of selectors a kprobe may have (Tetragon's limit).
const MaxSelectors = 5

func (c callSpec) describe() string {
	idx := make([]int, 0, len(c.args))
	for i := range c.args {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	parts := make([]string, len(idx))
	for j, i := range idx {
		parts[j] = fmt.Sprintf("%d %s", i, c.args[i])
	}
	return strings.Join(parts, ", ")
}

var (
	metadataFields = []string{"name", "namespace", "labels", "annotations"}
	tpSpecFields   = []string{"kprobes", "options"}
	tpSpecUnsupp   = map[string]string{
		"podSelector":       ": ocigate selects containers with a WorkloadProfile",
		"containerSelector": ": ocigate selects containers with a WorkloadProfile",
		"lists":             "", "enforcers": "", "tracepoints": "", "uprobes": "",
		"lsmhooks": "", "usdts": "", "loader": "",
	}
	kprobeFields = []string{"call", "syscall", "return", "args", "returnArg", "returnArgAction",
		"selectors", "message", "tags"}
	kprobeUnsupp = map[string]string{"ignore": "", "data": ""}
	argFields    = []string{"index", "type", "label"}
	argUnsupp    = map[string]string{"sizeArgIndex": "", "returnCopy": "", "maxData": "",
		"btfType": "", "resolve": ""}
	optionFields = []string{"name", "value"}
)

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// name checks a metadata.name.
func (p *parser) name(f fields, path string) string {
	n := f.get("name")
	field := join(path, "name")
	if n == nil {
		p.errorf(f.line("name"), field, "required")
		return ""
	}
	s, ok := p.str(n, field)
	if !ok {
		return ""
	}
	if len(s) > 253 || !dns1123.MatchString(s) {
		p.errorf(n.Line, field, "%q is not a valid name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters)", s)
	}
	return s
}

// meta is a checked metadata mapping.
type meta struct {
	name, namespace     string
	labels, annotations map[string]string
	line                int // of the name
}

func (p *parser) metadata(n *yaml.Node, at int, path string) meta {
	if n == nil {
		p.errorf(at, path, "required (with a name)")
		return meta{}
	}
	f, ok := p.mapping(n, path, metadataFields, nil)
	if !ok {
		return meta{}
	}
	f = f.under(at)
	m := meta{name: p.name(f, path), line: f.line("name")}
	m.namespace, _ = p.str(f.get("namespace"), join(path, "namespace"))
	m.labels = p.stringMap(f.get("labels"), join(path, "labels"))
	m.annotations = p.stringMap(f.get("annotations"), join(path, "annotations"))
	return m
}

// tracingPolicy builds a policy from a checked top-level (or inline)
// mapping with metadata and spec; path is the prefix of its fields.
func (p *parser) tracingPolicy(f fields, path string) *TracingPolicy {
	tp := &TracingPolicy{Pos: p.pos(f.n)}
	m := p.metadata(f.get("metadata"), f.line("metadata"), join(path, "metadata"))
	tp.Name, tp.Namespace, tp.Labels, tp.Annotations = m.name, m.namespace, m.labels, m.annotations
	if m.name != "" {
		p.res.names = append(p.res.names, site{kind: "TracingPolicy", name: m.name,
			pos: Pos{p.file, m.line}, field: join(path, "metadata.name")})
	}
	specPath := join(path, "spec")
	spec := f.get("spec")
	if spec == nil {
		p.errorf(f.line("spec"), specPath, "required (with kprobes)")
		return tp
	}
	sf, ok := p.mapping(spec, specPath, tpSpecFields, tpSpecUnsupp)
	if !ok {
		return tp
	}
	sf = sf.under(f.line("spec"))
	p.options(sf.get("options"), join(specPath, "options"), tp)
	kpath := join(specPath, "kprobes")
	items := p.seq(sf.get("kprobes"), kpath, MaxListLen)
	if kn := sf.get("kprobes"); kn == nil || kn.Kind == yaml.SequenceNode && len(kn.Content) == 0 {
		p.errorf(sf.line("kprobes"), kpath, "at least one kprobe is required")
	}
	for i, n := range items {
		if k, ok := p.kprobe(n, index(kpath, i)); ok {
			tp.Kprobes = append(tp.Kprobes, k)
		}
	}
	return tp
}

// options reads spec.options: only policy-mode is supported.
func (p *parser) options(n *yaml.Node, path string, tp *TracingPolicy) {
	seen := map[string]int{}
	for i, item := range p.seq(n, path, MaxListLen) {
		ip := index(path, i)
		f, ok := p.mapping(item, ip, optionFields, nil)
		if !ok {
			continue
		}
		name, ok := p.str(f.get("name"), join(ip, "name"))
		if !ok {
			if f.get("name") == nil {
				p.errorf(item.Line, join(ip, "name"), "required")
			}
			continue
		}
		if name != "policy-mode" {
			p.errorf(f.line("name"), join(ip, "name"), "option %q is not supported (supported: policy-mode)", name)
			continue
		}
		if prev, dup := seen[name]; dup {
			p.errorf(f.line("name"), join(ip, "name"), "option %q given twice (first at line %d)", name, prev)
			continue
		}
		seen[name] = f.line("name")
		vpath := join(ip, "value")
		v, ok := p.str(f.get("value"), vpath)
		switch {
		case f.get("value") == nil:
			p.errorf(f.line("value"), vpath, "required (monitor or enforce)")
		case !ok:
		case v == "monitor" || v == "enforce":
			tp.Mode = v
		default:
			p.errorf(f.get("value").Line, vpath, "%q is not a policy mode (supported: monitor, enforce)", v)
		}
	}
}

// kprobe reads one spec.kprobes[] entry.
func (p *parser) kprobe(n *yaml.Node, path string) (Kprobe, bool) {
	f, ok := p.mapping(n, path, kprobeFields, kprobeUnsupp)
	if !ok {
		return Kprobe{}, false
	}
	k := Kprobe{Pos: p.pos(n)}
	d := p.kprobeCall(&k, n, f, path)
	args := p.kprobeArgs(&k, d)
	p.kprobeReturnArg(&k, d)
	k.Message, _ = p.str(f.get("message"), join(path, "message"))
	if len(k.Message) > 256 {
		p.errorf(f.get("message").Line, join(path, "message"), "longer than 256 bytes")
	}
	k.Tags = p.strList(f.get("tags"), join(path, "tags"))
	if len(k.Tags) > 16 {
		p.errorf(f.get("tags").Line, join(path, "tags"), "%d tags, at most 16 allowed", len(k.Tags))
	}
	spath := join(path, "selectors")
	ctx := &kprobeCtx{call: d.call, args: args}
	for i, sn := range p.seq(f.get("selectors"), spath, MaxListLen) {
		ip := index(spath, i)
		if i == MaxSelectors {
			p.errorf(sn.Line, ip, "too many selectors: at most %d per kprobe", MaxSelectors)
		}
		if s, ok := p.selector(sn, ip, ctx); ok {
			k.Selectors = append(k.Selectors, s)
		}
	}
	return k, true
}

// kprobeCall parses call, syscall and return.
func (p *parser) kprobeCall(k *Kprobe, n *yaml.Node, f fields, path string) kprobeDoc {
	d := kprobeDoc{f: f, path: path}
	cpath := join(path, "call")
	call, ok := p.str(f.get("call"), cpath)
	d.call = call
	d.spec, d.known = calls[call]
	switch {
	case f.get("call") == nil:
		p.errorf(n.Line, cpath, "required")
	case !ok:
	case !d.known:
		p.errorf(f.get("call").Line, cpath, "%q is not supported (supported: %s)", call, strings.Join(SupportedCalls, ", "))
	default:
		k.Call = call
	}
	if sys, ok := p.boolean(f.get("syscall"), join(path, "syscall")); ok && sys {
		p.errorf(f.get("syscall").Line, join(path, "syscall"), "must be false: the supported calls are kernel functions, not system calls")
	}
	k.Return, _ = p.boolean(f.get("return"), join(path, "return"))
	if k.Return && d.known && d.spec.ret == "" {
		p.errorf(f.get("return").Line, join(path, "return"), "%s returns nothing; return probes are not supported on it", call)
	}
	return d
}

// kprobeArgs parses the declared arguments into k.Args and returns them
// by index.
func (p *parser) kprobeArgs(k *Kprobe, d kprobeDoc) map[int]*Arg {
	args := map[int]*Arg{}
	apath := join(d.path, "args")
	for i, an := range p.seq(d.f.get("args"), apath, MaxListLen) {
		ip := index(apath, i)
		a, lines, ok := p.arg(an, ip)
		if !ok {
			continue
		}
		if prev := args[a.Index]; prev != nil {
			p.errorf(lines.index, join(ip, "index"), "argument %d declared twice (first at line %d)", a.Index, prev.Line)
			continue
		}
		if d.known {
			want, has := d.spec.args[a.Index]
			switch {
			case !has:
				p.errorf(lines.index, join(ip, "index"), "%s has no argument %d that ocigate supports (supported: %s)", d.call, a.Index, d.spec.describe())
			case a.Type != "" && a.Type != want:
				p.errorf(lines.typ, join(ip, "type"), "argument %d of %s is a %s, not %s", a.Index, d.call, want, a.Type)
			}
		}
		args[a.Index] = &a
		k.Args = append(k.Args, a)
	}
	return args
}

// kprobeReturnArg parses returnArg and returnArgAction.
func (p *parser) kprobeReturnArg(k *Kprobe, d kprobeDoc) {
	f, rpath := d.f, join(d.path, "returnArg")
	if rn := f.get("returnArg"); rn != nil {
		if a, lines, ok := p.arg(rn, rpath); ok {
			switch {
			case !k.Return:
				p.errorf(f.line("returnArg"), rpath, "only allowed with return: true")
			case d.known && d.spec.ret != "" && a.Type != "" && a.Type != d.spec.ret:
				p.errorf(lines.typ, join(rpath, "type"), "%s returns %s, not %s", d.call, d.spec.ret, a.Type)
			}
			k.ReturnArg = &a
		}
	} else if k.Return && (!d.known || d.spec.ret != "") {
		p.errorf(f.line("return"), rpath, "required with return: true")
	}
	an := f.get("returnArgAction")
	if an == nil {
		return
	}
	ap := join(d.path, "returnArgAction")
	if s, ok := p.str(an, ap); ok {
		switch {
		case s != "TrackSock" && s != "UntrackSock":
			p.errorf(an.Line, ap, "%q is not supported (supported: TrackSock, UntrackSock)", s)
		case k.ReturnArg == nil || k.ReturnArg.Type != "sock":
			p.errorf(an.Line, ap, "%s needs return: true and a returnArg of type sock", s)
		default:
			k.ReturnArgAction = s
		}
	}
}

// kprobeDoc is one kprobe being parsed: its fields and the call it names.
type kprobeDoc struct {
	f     fields
	path  string
	call  string // as written
	spec  callSpec
	known bool // call is supported
}

// arg reads an args[] entry or a returnArg. It fails only when the index
// is unusable; an unsupported type is reported and left empty.
func (p *parser) arg(n *yaml.Node, path string) (Arg, argLines, bool) {
	f, ok := p.mapping(n, path, argFields, argUnsupp)
	if !ok {
		return Arg{}, argLines{}, false
	}
	a := Arg{Pos: p.pos(n)}
	idx, hasIdx := p.integer(f.get("index"), join(path, "index"), 0, 4)
	if f.get("index") == nil {
		p.errorf(n.Line, join(path, "index"), "required (0-4)")
	}
	a.Index = int(idx)
	typ, hasType := p.str(f.get("type"), join(path, "type"))
	switch {
	case f.get("type") == nil:
		p.errorf(n.Line, join(path, "type"), "required (%s)", strings.Join(argTypes, ", "))
	case !hasType:
	case !slices.Contains(argTypes, typ):
		p.errorf(f.get("type").Line, join(path, "type"), "%q is not supported (supported: %s)", typ, strings.Join(argTypes, ", "))
		typ = ""
	}
	a.Type = typ
	a.Label, _ = p.str(f.get("label"), join(path, "label"))
	return a, argLines{f.line("index"), f.line("type")}, hasIdx
}

// argLines are the lines of an argument's index and type.
type argLines struct{ index, typ int }
