package policy

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	kprobeFields = []string{"call", "syscall", "return", "args", "returnArg", "returnArgAction",
		"selectors", "message", "tags", "ignore", "data"}
	lsmFields        = []string{"hook", "args", "selectors", "message", "tags"}
	tracepointFields = []string{"subsystem", "event", "raw", "args", "selectors", "message", "tags"}
	uprobeFields     = []string{"path", "symbols", "offsets", "refCtrOffsets", "addrs", "args", "data",
		"return", "returnArg", "selectors", "message", "tags", "btfPath", "binaryDigests", "ignore"}
	usdtFields   = []string{"path", "provider", "name", "args", "selectors", "message", "tags", "btfPath"}
	argFields    = []string{"index", "type", "label", "sizeArgIndex", "returnCopy", "maxData", "btfType", "btfTypeModule", "resolve", "source"}
	ignoreFields = []string{"callNotFound"}
)

// tetragonTypes are the argument types of Tetragon's schema.
var tetragonTypes = []string{"auto", "int", "sint8", "int8", "uint8", "sint16", "int16", "uint16", "uint32",
	"sint32", "int32", "ulong", "uint64", "size_t", "long", "sint64", "int64", "char_buf", "char_iovec",
	"skb", "sock", "sockaddr", "socket", "sockaddr_un", "string", "fd", "file", "filename", "path", "nop",
	"bpf_attr", "perf_event", "bpf_map", "user_namespace", "capability", "kiocb", "iov_iter", "cred",
	"const_buf", "load_info", "module", "syscall64", "kernel_cap_t", "cap_inheritable", "cap_permitted",
	"cap_effective", "linux_binprm", "data_loc", "net_device", "bpf_cmd", "dentry", "bpf_prog"}

// MaxSelectors is the number of selectors a hook may have (Tetragon's limit).
const MaxSelectors = 5

// hookName is one call a hook entry names (a list names several).
type hookName struct {
	call    string
	syscall bool
}

// hookEntry parses one entry of a hook section of kind into the hooks it
// stands for: one, one per call of a list, or none when it is refused.
// A hook outside ocigate's domain is refused with one line that says what
// it is, why ocigate does not do it and the closest ocigate feature.
func (p *parser) hookEntry(kind string, n *yaml.Node, path string, sc *specCtx) []Kprobe {
	if kind == "uprobe" || kind == "usdt" {
		p.userHook(kind, n, path)
		return nil
	}
	known := kprobeFields
	switch kind {
	case HookLSM:
		known = lsmFields
	case HookTracepoint:
		known = tracepointFields
	}
	f, ok := p.mapping(n, path, known, nil)
	if !ok {
		return nil
	}
	names, ok := p.hookNames(kind, f, n, path, sc)
	if !ok {
		return nil
	}
	refused := false
	for _, h := range names {
		if _, _, known := lookupCall(kind, h.call); !known {
			p.errorf(n.Line, path, "%s", refusal(describeHook(kind, h), bareName(h.call)))
			refused = true
		}
	}
	if refused {
		return nil
	}
	var out []Kprobe
	for _, h := range names {
		if k, ok := p.hookBody(kind, h, f, n, path, sc); ok {
			out = append(out, k)
		}
	}
	return out
}

// describeHook names a hook in refusals: "kprobe fd_install", "system
// call sys_openat", "lsmhook file_open", "tracepoint raw_syscalls/sys_enter".
func describeHook(kind string, h hookName) string {
	switch {
	case kind == HookLSM:
		return "lsmhook " + h.call
	case kind == HookTracepoint:
		return "tracepoint " + h.call
	case h.syscall:
		return "system call " + h.call
	}
	return kind + " " + h.call
}

// bareName is the name refusals classify: without sys_ and the
// architecture prefixes.
func bareName(call string) string {
	if name, ok := syscallName(call); ok {
		return strings.TrimPrefix(name, "sys_")
	}
	if _, event, ok := strings.Cut(call, "/"); ok {
		return event
	}
	return call
}

// hookNames reads what a hook entry hooks: a kprobe's call (or the calls
// of the list it names), an LSM hook, or a tracepoint.
func (p *parser) hookNames(kind string, f fields, n *yaml.Node, path string, sc *specCtx) ([]hookName, bool) {
	switch kind {
	case HookLSM:
		name, ok := p.str(p.required(f, "hook", path, " (an LSM hook name)"), join(path, "hook"))
		return []hookName{{call: name}}, ok
	case HookTracepoint:
		sub, ok1 := p.str(p.required(f, "subsystem", path, ""), join(path, "subsystem"))
		ev, ok2 := p.str(p.required(f, "event", path, ""), join(path, "event"))
		name := sub + "/" + ev
		if raw, _ := p.boolean(f.get("raw"), join(path, "raw")); raw {
			name += " (raw)"
		}
		return []hookName{{call: name}}, ok1 && ok2
	}
	call, ok := p.str(p.required(f, "call", path, ""), join(path, "call"))
	if !ok {
		return nil, false
	}
	sys, given := p.boolean(f.get("syscall"), join(path, "syscall"))
	if !strings.HasPrefix(call, "list:") {
		return []hookName{p.callName(call, sys, given, f, path)}, true
	}
	l, ok := p.listRef(sc, call, f.line("call"), join(path, "call"))
	if !ok {
		return nil, false
	}
	if l.typ == "generated_syscalls" || l.typ == "generated_ftrace" {
		what := map[string]string{"generated_syscalls": "every system call", "generated_ftrace": "every kernel function a pattern matches"}[l.typ]
		p.errorf(n.Line, path, "kprobe %s (%s: %s): refused: outside %s: ocigate hooks the calls of its enforcement points only; closest: a list of the system calls it enforces (%s)", call, l.typ, what, ocigateDomain, supportedSyscalls())
		return nil, false
	}
	var out []hookName
	for _, v := range l.values {
		if l.typ == "syscalls" {
			v, _ = syscallName(v)
			out = append(out, hookName{call: v, syscall: true})
			continue
		}
		out = append(out, p.callName(v, sys, given, f, path))
	}
	return out, true
}

// callName is a kprobe call with its syscall flag: as given, or (as
// Tetragon's files are mostly written) true for sys_ names. A flag that
// contradicts what ocigate knows of the call is an error.
func (p *parser) callName(call string, sys, given bool, f fields, path string) hookName {
	spec, name, known := lookupCall(HookKprobe, call)
	h := hookName{call: call, syscall: sys}
	if !given {
		h.syscall = strings.HasPrefix(name, "sys_")
	}
	if known {
		h.call = name
		if given && sys != spec.syscall {
			what := "a kernel function, not a system call: syscall must be false"
			if spec.syscall {
				what = "a system call: syscall must be true"
			}
			p.errorf(f.line("syscall"), join(path, "syscall"), "%s is %s", name, what)
		}
		h.syscall = spec.syscall
	}
	return h
}

// userHook refuses a uprobe or USDT: user-space probes are outside the
// domain. Its fields are checked so a typo is still reported.
func (p *parser) userHook(kind string, n *yaml.Node, path string) {
	known := uprobeFields
	if kind == "usdt" {
		known = usdtFields
	}
	f, ok := p.mapping(n, path, known, nil)
	if !ok {
		return
	}
	target, _ := p.str(f.get("path"), join(path, "path"))
	what := kind + " on " + target
	if syms := p.strList(f.get("symbols"), join(path, "symbols")); len(syms) > 0 {
		what += " (" + strings.Join(syms, ", ") + ")"
	}
	if kind == "usdt" {
		prov, _ := p.str(f.get("provider"), join(path, "provider"))
		name, _ := p.str(f.get("name"), join(path, "name"))
		what += " (" + prov + ":" + name + ")"
	}
	p.errorf(n.Line, path, "%s: refused: a user-space probe, outside %s: ocigate does not trace functions inside programs; closest: matchBinaries, and Equal/Prefix/Postfix on the executed file at the exec point", what, ocigateDomain)
}

// hookBody parses the rest of a hook entry for one call it names.
func (p *parser) hookBody(kind string, h hookName, f fields, n *yaml.Node, path string, sc *specCtx) (Kprobe, bool) {
	spec, name, _ := lookupCall(kind, h.call)
	k := Kprobe{Pos: p.pos(n), Field: path, Hook: kind, Call: name, Syscall: spec.syscall}
	if kind == HookTracepoint {
		k.Call = strings.TrimSuffix(name, " (raw)")
	}
	d := kprobeDoc{f: f, path: path, call: name, spec: spec}
	args, order := p.hookArgs(&k, d)
	if kind == HookKprobe || kind == HookFentry {
		k.Return, _ = p.boolean(f.get("return"), join(path, "return"))
		if k.Return && spec.ret == nil {
			p.errorf(f.line("return"), join(path, "return"), "%s returns nothing; return probes are not supported on it", name)
		}
		p.kprobeReturnArg(&k, d)
		p.ignore(f.get("ignore"), join(path, "ignore"))
		if items := p.seq(f.get("data"), join(path, "data"), MaxListLen); len(items) > 0 {
			p.errorf(f.line("data"), join(path, "data"), "refused: data fields read kernel memory beside the arguments; ocigate reads only the arguments of the calls it enforces")
		}
	}
	k.Message, _ = p.str(f.get("message"), join(path, "message"))
	if len(k.Message) > 256 {
		p.errorf(f.get("message").Line, join(path, "message"), "longer than 256 bytes")
	}
	k.Tags = p.strList(f.get("tags"), join(path, "tags"))
	if len(k.Tags) > 16 {
		p.errorf(f.get("tags").Line, join(path, "tags"), "%d tags, at most 16 allowed", len(k.Tags))
	}
	ctx := &kprobeCtx{call: name, kind: kind, args: args, order: order, sc: sc}
	spath := join(path, "selectors")
	for i, sn := range p.seq(f.get("selectors"), spath, MaxListLen) {
		ip := index(spath, i)
		if i == MaxSelectors {
			p.errorf(sn.Line, ip, "too many selectors: at most %d per hook", MaxSelectors)
		}
		if s, ok := p.selector(p.mergeMacros(sn, ip, sc), ip, ctx); ok {
			k.Selectors = append(k.Selectors, s)
		}
	}
	return k, true
}

// ignore reads a kprobe's ignore: callNotFound has no effect, every call
// ocigate hooks exists on every kernel it runs on.
func (p *parser) ignore(n *yaml.Node, path string) {
	if n == nil {
		return
	}
	if f, ok := p.mapping(n, path, ignoreFields, nil); ok {
		p.boolean(f.get("callNotFound"), join(path, "callNotFound"))
	}
}

// hookArgs parses the declared arguments into k.Args and returns them by
// index and in the order declared.
func (p *parser) hookArgs(k *Kprobe, d kprobeDoc) (map[int]*Arg, []*Arg) {
	args := map[int]*Arg{}
	var order []*Arg
	apath := join(d.path, "args")
	for i, an := range p.seq(d.f.get("args"), apath, MaxListLen) {
		ip := index(apath, i)
		a, lines, ok := p.arg(an, ip, true)
		if !ok {
			continue
		}
		if prev := args[a.Index]; prev != nil {
			p.errorf(lines.index, join(ip, "index"), "argument %d declared twice (first at line %d)", a.Index, prev.Line)
			continue
		}
		p.checkArg(&a, d, ip, lines)
		args[a.Index] = &a
		order = append(order, &a)
		k.Args = append(k.Args, a)
	}
	return args, order
}

// checkArg checks a declared argument against what ocigate reads of the
// call.
func (p *parser) checkArg(a *Arg, d kprobeDoc, ip string, lines argLines) {
	types, has := d.spec.args[a.Index]
	if has && a.Type == "auto" {
		a.Type = types[0] // Tetragon's auto: the type the call's argument has
	}
	switch {
	case !has:
		p.errorf(lines.index, join(ip, "index"), "%s has no argument %d that ocigate reads (it reads: %s)", d.call, a.Index, d.spec.describe())
	case a.Type != "" && !slices.Contains(types, a.Type):
		p.errorf(lines.typ, join(ip, "type"), "argument %d of %s is read as %s, not %s", a.Index, d.call, strings.Join(dedupTypes(types), " or "), a.Type)
		a.Type = "" // its matches are not checked against a wrong type
	case a.Resolve != "" && !validResolve(a.Type, a.Resolve):
		p.errorf(lines.resolve, join(ip, "resolve"), "refused: resolve walks kernel structures by BTF; ocigate reads only the executed file of a linux_binprm (resolve: file as a file, file.f_path as a path, filename or interp as a string) and the comm of the process that execs, its parent and grandparent (mm.owner.comm, mm.owner.real_parent.comm, mm.owner.real_parent.real_parent.comm, as a string)")
	case a.Type == "string" && slices.Contains(types, "linux_binprm") && a.Resolve == "":
		p.errorf(lines.typ, join(ip, "type"), "a string from a linux_binprm needs resolve: filename (the path exec was given) or interp")
	}
}

// dedupTypes shortens a type list for messages: the integer types are
// "int".
func dedupTypes(types []string) []string {
	var out []string
	for _, t := range types {
		if c := typeClass(t); !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// validResolve reports whether resolve on an argument of type typ is one
// ocigate reads: the executed file of a linux_binprm.
func validResolve(typ, resolve string) bool {
	switch resolve {
	case "file":
		return typ == "file"
	case "file.f_path":
		return typ == "path"
	case "filename", "interp":
		return typ == "string"
	}
	_, ok := AncestorComm(resolve)
	return ok && typ == "string"
}

// AncestorComm is the generation a resolve path names the comm of, from
// a linux_binprm: 0 the process itself (mm.owner.comm, the mm's owner
// being the task that execs), 1 its parent, 2 its grandparent (real
// parents, as Tetragon's lsm_track_grandparent reads them).
func AncestorComm(resolve string) (int, bool) {
	switch resolve {
	case "mm.owner.comm":
		return 0, true
	case "mm.owner.real_parent.comm":
		return 1, true
	case "mm.owner.real_parent.real_parent.comm":
		return 2, true
	}
	return 0, false
}

// kprobeReturnArg parses returnArg and returnArgAction. As in Tetragon, a
// returnArg without return: true is not read, and its index means
// nothing.
func (p *parser) kprobeReturnArg(k *Kprobe, d kprobeDoc) {
	f, rpath := d.f, join(d.path, "returnArg")
	if rn := f.get("returnArg"); rn != nil {
		if a, lines, ok := p.arg(rn, rpath, false); ok && k.Return {
			if d.spec.ret != nil && a.Type != "" && !slices.Contains(d.spec.ret, a.Type) {
				p.errorf(lines.typ, join(rpath, "type"), "%s returns %s, not %s", d.call, dedupTypes(d.spec.ret)[0], a.Type)
			}
			k.ReturnArg = &a
		}
	} else if k.Return && d.spec.ret != nil {
		p.errorf(f.line("return"), rpath, "required with return: true (its type: %s)", dedupTypes(d.spec.ret)[0])
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

// kprobeDoc is one hook being parsed: its fields and the call it names.
type kprobeDoc struct {
	f    fields
	path string
	call string
	spec callSpec
}

// arg reads an args[] entry or (needIndex false) a returnArg. It fails
// only when the index is unusable; an unknown type is reported and left
// empty.
func (p *parser) arg(n *yaml.Node, path string, needIndex bool) (Arg, argLines, bool) {
	f, ok := p.mapping(n, path, argFields, nil)
	if !ok {
		return Arg{}, argLines{}, false
	}
	a := Arg{Pos: p.pos(n)}
	idx, hasIdx := p.integer(f.get("index"), join(path, "index"), 0, 31)
	if f.get("index") == nil && needIndex {
		p.errorf(n.Line, join(path, "index"), "required")
	}
	if f.get("index") == nil && !needIndex {
		hasIdx = true
	}
	a.Index = int(idx)
	typ, hasType := p.str(f.get("type"), join(path, "type"))
	switch {
	case f.get("type") == nil:
		typ = "auto"
	case !hasType:
	case !slices.Contains(tetragonTypes, typ):
		p.errorf(f.get("type").Line, join(path, "type"), "%q is not an argument type of Tetragon's", typ)
		typ = ""
	}
	a.Type = typ
	a.Label, _ = p.str(f.get("label"), join(path, "label"))
	a.Resolve, _ = p.str(f.get("resolve"), join(path, "resolve"))
	p.unreadArgFields(f, path)
	return a, argLines{f.line("index"), f.line("type"), f.line("resolve")}, hasIdx
}

// unreadArgFields refuses the argument fields that read memory ocigate
// does not read.
func (p *parser) unreadArgFields(f fields, path string) {
	for _, key := range []string{"sizeArgIndex", "returnCopy", "maxData"} {
		if v := f.get(key); v != nil && !(v.Value == "false" || v.Value == "0") {
			p.errorf(f.line(key), join(path, key), "refused: %s sizes the bytes read from a char_buf argument; ocigate reads no argument buffers", key)
		}
	}
	for _, key := range []string{"btfType", "btfTypeModule", "source"} {
		if f.get(key) != nil {
			p.errorf(f.line(key), join(path, key), "refused: ocigate reads only the arguments of the calls it enforces, as it knows them; %s names other kernel memory", key)
		}
	}
}

// argLines are the lines of an argument's index, type and resolve.
type argLines struct{ index, typ, resolve int }

// declaredArgs lists declared arguments for messages: "0 sock, 2 int".
func declaredArgs(args map[int]*Arg) string {
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
