package policy

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Note is something a policy loads with that the user should know: a
// part of it ocigate carries out differently from Tetragon, or not at
// all where Tetragon would not either. Its text is "FILE:LINE: FIELD:
// note: MSG".
type Note struct {
	Pos
	Field string
	Msg   string
}

// String formats the note as an error line is formatted, with "note: ".
func (n Note) String() string {
	e := Error{File: n.File, Line: n.Line, Field: n.Field, Msg: "note: " + n.Msg}
	return e.Error()
}

// specCtx is what the hooks of one spec share: its lists and macros.
type specCtx struct {
	path   string
	lists  map[string]*list
	macros map[string]*yaml.Node
}

// list is one spec.lists[] entry.
type list struct {
	name   string
	typ    string // "", syscalls, generated_syscalls or generated_ftrace
	values []string
	line   int
}

var (
	listFields     = []string{"name", "type", "values", "pattern", "validated"}
	listTypes      = []string{"syscalls", "generated_syscalls", "generated_ftrace"}
	selectorFields = []string{"matchLabels", "matchExpressions"}
	exprFields     = []string{"key", "operator", "values"}
	exprOperators  = []string{"In", "NotIn", "Exists", "DoesNotExist"}
	enforcerFields = []string{"calls"}
)

// notef records a note on the policy being parsed.
func (p *parser) notef(line int, field, format string, args ...any) {
	p.res.notes = append(p.res.notes, Note{Pos: Pos{p.file, line}, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// lists reads spec.lists by name.
func (p *parser) lists(n *yaml.Node, path string) map[string]*list {
	out := map[string]*list{}
	for i, item := range p.seq(n, path, MaxListLen) {
		ip := index(path, i)
		f, ok := p.mapping(item, ip, listFields, nil)
		if !ok {
			continue
		}
		l := &list{line: item.Line}
		l.name, ok = p.str(p.required(f, "name", ip, ""), join(ip, "name"))
		if !ok {
			continue
		}
		if prev := out[l.name]; prev != nil {
			p.errorf(f.line("name"), join(ip, "name"), "list %q defined twice (first at line %d)", l.name, prev.line)
			continue
		}
		if tn := f.get("type"); tn != nil {
			l.typ, _ = p.oneOf(f, "type", ip, "list type", listTypes)
		}
		l.values = p.strList(f.get("values"), join(ip, "values"))
		if l.typ == "syscalls" {
			for j, v := range l.values {
				if _, ok := syscallName(v); !ok {
					p.errorf(f.get("values").Content[j].Line, index(join(ip, "values"), j), "%q is not a system call name (sys_NAME, or ABI/sys_NAME)", v)
				}
			}
		}
		p.str(f.get("pattern"), join(ip, "pattern"))
		p.boolean(f.get("validated"), join(ip, "validated"))
		out[l.name] = l
	}
	return out
}

// syscallName normalises a system call as Tetragon's lists and selectors
// write it: sys_NAME, __x64_sys_NAME, __ia32_sys_NAME or ABI/sys_NAME,
// to sys_NAME; false when s names no system call.
func syscallName(s string) (string, bool) {
	if _, rest, ok := strings.Cut(s, "/"); ok {
		s = rest
	}
	for _, pfx := range []string{"__x64_", "__ia32_", "__arm64_"} {
		s = strings.TrimPrefix(s, pfx)
	}
	return s, strings.HasPrefix(s, "sys_") && len(s) > 4
}

// listRef resolves "list:NAME" to the list, with the field it was
// written in for errors; ok is false (and the error reported) when the
// list is not defined.
func (p *parser) listRef(sc *specCtx, ref string, line int, field string) (*list, bool) {
	name := strings.TrimPrefix(ref, "list:")
	l := sc.lists[name]
	if l == nil {
		p.errorf(line, field, "list %q is not defined in spec.lists", name)
		return nil, false
	}
	return l, true
}

// macros reads spec.selectorsMacros: named selector fragments.
func (p *parser) macros(n *yaml.Node, path string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n == nil {
		return out
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, path, "must be a mapping of macro names to selectors, not %s", kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, ok := p.str(n.Content[i], path)
		if !ok {
			continue
		}
		v := n.Content[i+1]
		if v.Kind != yaml.MappingNode {
			p.errorf(v.Line, join(path, name), "must be a selector (a mapping), not %s", kindName(v))
			continue
		}
		out[name] = v
	}
	return out
}

// enforcers reads spec.enforcers. ocigate carries a NotifyEnforcer action
// out at the hook that matched, so an enforcer needs no program of its
// own; its calls must be system calls ocigate enforces.
func (p *parser) enforcers(n *yaml.Node, path string, sc *specCtx) {
	items := p.seq(n, path, MaxListLen)
	if len(items) > 1 {
		p.errorf(items[1].Line, index(path, 1), "only one enforcer is allowed (as in Tetragon)")
	}
	for i, item := range items {
		ip := index(path, i)
		f, ok := p.mapping(item, ip, enforcerFields, nil)
		if !ok {
			continue
		}
		cpath := join(ip, "calls")
		cn := p.required(f, "calls", ip, " (system calls or list:NAME)")
		for j, c := range p.seq(cn, cpath, MaxListLen) {
			s, ok := p.str(c, index(cpath, j))
			if !ok {
				continue
			}
			p.enforcerCall(sc, s, c.Line, index(cpath, j))
		}
	}
	if len(items) > 0 {
		p.notef(items[0].Line, path, "ocigate carries NotifyEnforcer out at the hook that matched (argError where the backend refuses, argSig as a signal): the enforcer needs no program of its own")
	}
}

// enforcerCall checks one enforcer call (a system call or a list of them).
func (p *parser) enforcerCall(sc *specCtx, s string, line int, field string) {
	names := []string{s}
	if strings.HasPrefix(s, "list:") {
		l, ok := p.listRef(sc, s, line, field)
		if !ok {
			return
		}
		names = l.values
	}
	for _, v := range names {
		name, _ := syscallName(v)
		if _, ok := syscallPoints[name]; !ok {
			p.errorf(line, field, "%s", refusal("enforcer on "+v, strings.TrimPrefix(name, "sys_")))
		}
	}
}

// specSelectors reads the workload selectors of spec: podSelector and
// containerSelector (ocigate chooses containers with a WorkloadProfile's
// match: only the empty selector, every container, is accepted),
// hostSelector (host processes: never enforced by ocigate) and
// nodeSelector (not evaluated for policies from files, as in Tetragon).
func (p *parser) specSelectors(sf fields, path string) {
	host := false
	for _, key := range []string{"podSelector", "containerSelector", "hostSelector", "nodeSelector"} {
		n := sf.get(key)
		if n == nil {
			continue
		}
		empty := p.labelSelector(n, join(path, key))
		switch {
		case key == "nodeSelector":
			p.notef(sf.line(key), join(path, key), "not evaluated: as in Tetragon, a policy loaded from a file is loaded on this node whatever its labels")
		case key == "hostSelector" && empty:
			host = true
		case key == "hostSelector":
			p.errorf(sf.line(key), join(path, key), "Tetragon takes only {} (every host process) here")
		case !empty:
			p.errorf(sf.line(key), join(path, key), "refused: ocigate chooses the containers a policy applies to with a WorkloadProfile's match (images, annotations, runtimes, "+
				"containers: a pod's container names); only {} (every container) is accepted in a file (applied with kubectl, ocigate-kube evaluates it: docs/kubernetes.md)")
		}
	}
	if !host {
		return
	}
	if sf.get("podSelector") == nil && sf.get("containerSelector") == nil {
		p.errorf(sf.line("hostSelector"), join(path, "hostSelector"), "refused: this policy selects host processes only, and ocigate enforces on registered containers only; closest: run the program in its own enforced cgroup with ocigate-agentd run-job")
		return
	}
	p.notef(sf.line("hostSelector"), join(path, "hostSelector"), "host processes are not covered: ocigate enforces on registered containers only")
}

// labelSelector checks a Kubernetes label selector; it reports whether
// it is empty (selects everything).
func (p *parser) labelSelector(n *yaml.Node, path string) bool {
	f, ok := p.mapping(n, path, selectorFields, nil)
	if !ok {
		return false
	}
	labels := p.stringMap(f.get("matchLabels"), join(path, "matchLabels"))
	epath := join(path, "matchExpressions")
	items := p.seq(f.get("matchExpressions"), epath, MaxListLen)
	for i, item := range items {
		ip := index(epath, i)
		ef, ok := p.mapping(item, ip, exprFields, nil)
		if !ok {
			continue
		}
		p.str(p.required(ef, "key", ip, ""), join(ip, "key"))
		op, _ := p.oneOf(ef, "operator", ip, "operator", exprOperators)
		vals := p.strList(ef.get("values"), join(ip, "values"))
		if (op == "In" || op == "NotIn") && len(vals) == 0 {
			p.errorf(item.Line, join(ip, "values"), "required with %s", op)
		}
	}
	return len(labels) == 0 && len(items) == 0
}

// mergeMacros returns the selector n with the macros it names merged in:
// one mapping whose fields come from n or from exactly one macro (as in
// Tetragon, a field given twice is an error).
func (p *parser) mergeMacros(n *yaml.Node, path string, sc *specCtx) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return n
	}
	var macros *yaml.Node
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	from := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "macros" {
			macros = n.Content[i+1]
			continue
		}
		from[n.Content[i].Value] = "the selector"
		out.Content = append(out.Content, n.Content[i], n.Content[i+1])
	}
	mpath := join(path, "macros")
	for i, m := range p.seq(macros, mpath, MaxListLen) {
		name, ok := p.str(m, index(mpath, i))
		if !ok {
			continue
		}
		def := sc.macros[name]
		if def == nil {
			p.errorf(m.Line, index(mpath, i), "macro %q is not defined in spec.selectorsMacros", name)
			continue
		}
		for j := 0; j+1 < len(def.Content); j += 2 {
			key := def.Content[j].Value
			if prev, dup := from[key]; dup {
				p.errorf(m.Line, index(mpath, i), "macro %q sets %s, which %s sets already", name, key, prev)
				continue
			}
			from[key] = fmt.Sprintf("macro %q", name)
			out.Content = append(out.Content, def.Content[j], def.Content[j+1])
		}
	}
	return out
}

// syscallPoints are the system calls ocigate enforces, by the name lists,
// enforcers and raw_syscalls selectors use, with the kprobe call each is.
var syscallPoints = map[string]string{
	"sys_dup": "sys_dup", "sys_dup2": "sys_dup2", "sys_dup3": "sys_dup3", "sys_fcntl": "fcntl",
	"sys_memfd_create": "sys_memfd_create", "sys_execve": "sys_execve", "sys_execveat": "sys_execveat",
	"sys_connect": "sys_connect", "sys_bind": "sys_bind", "sys_listen": "sys_listen", "sys_socket": "sys_socket",
	"sys_sendto": "sys_sendto", "sys_sendmsg": "sys_sendmsg", "sys_sendmmsg": "sys_sendmmsg",
}

// syscallNumbers are x86-64 system call numbers of syscallPoints, for
// raw_syscalls selectors that give numbers.
var syscallNumbers = map[int64]string{
	32: "sys_dup", 33: "sys_dup2", 292: "sys_dup3", 72: "sys_fcntl", 319: "sys_memfd_create",
	59: "sys_execve", 322: "sys_execveat", 42: "sys_connect", 49: "sys_bind", 50: "sys_listen",
	41: "sys_socket", 44: "sys_sendto", 46: "sys_sendmsg", 307: "sys_sendmmsg",
}

// SyscallNumber is the x86-64 number of one of the system calls ocigate
// enforces (sys_NAME), -1 for another.
func SyscallNumber(name string) int64 {
	for n, s := range syscallNumbers {
		if s == name {
			return n
		}
	}
	return -1
}

// supportedSyscalls lists syscallPoints' names for error messages.
func supportedSyscalls() string {
	names := make([]string, 0, len(syscallPoints))
	for n := range syscallPoints {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
