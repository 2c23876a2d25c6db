package policy

import (
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

var (
	metadataFields = []string{"name", "namespace", "labels", "annotations"}
	// specFields are every field of Tetragon's TracingPolicy spec.
	specFields = []string{"kprobes", "fentries", "tracepoints", "lsmhooks", "uprobes", "usdts",
		"enforcers", "lists", "options", "podSelector", "containerSelector", "hostSelector",
		"nodeSelector", "selectorsMacros", "loader"}
	optionFields = []string{"name", "value"}
	// hookSections are the spec fields that hold hooks, by kind.
	hookSections = map[string]string{"kprobes": HookKprobe, "fentries": HookFentry, "lsmhooks": HookLSM,
		"tracepoints": HookTracepoint, "uprobes": "uprobe", "usdts": "usdt"}
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
	notes := len(p.res.notes)
	defer func() { tp.Notes = slices.Clone(p.res.notes[notes:]) }()
	m := p.metadata(f.get("metadata"), f.line("metadata"), join(path, "metadata"))
	tp.Name, tp.Namespace, tp.Labels, tp.Annotations = m.name, m.namespace, m.labels, m.annotations
	if m.name != "" {
		p.res.names = append(p.res.names, site{kind: "TracingPolicy", name: m.name,
			pos: Pos{p.file, m.line}, field: join(path, "metadata.name")})
	}
	specPath := join(path, "spec")
	spec := f.get("spec")
	if spec == nil {
		p.errorf(f.line("spec"), specPath, "required (with kprobes, lsmhooks or tracepoints)")
		return tp
	}
	sf, ok := p.mapping(spec, specPath, specFields, nil)
	if !ok {
		return tp
	}
	sf = sf.under(f.line("spec"))
	sc := &specCtx{path: specPath}
	sc.lists = p.lists(sf.get("lists"), join(specPath, "lists"))
	sc.macros = p.macros(sf.get("selectorsMacros"), join(specPath, "selectorsMacros"))
	p.options(sf.get("options"), join(specPath, "options"), tp)
	p.specSelectors(sf, specPath)
	p.enforcers(sf.get("enforcers"), join(specPath, "enforcers"), sc)
	if on, ok := p.boolean(sf.get("loader"), join(specPath, "loader")); ok && on {
		p.errorf(sf.line("loader"), join(specPath, "loader"), "%s", refusal("loader (shared library loads)", "loader"))
	}
	hooks := 0
	for i := 0; i+1 < len(spec.Content); i += 2 {
		key := spec.Content[i].Value
		kind, isHook := hookSections[key]
		if !isHook || sf.get(key) == nil {
			continue
		}
		kpath := join(specPath, key)
		for j, n := range p.seq(sf.get(key), kpath, MaxListLen) {
			hooks++
			tp.Kprobes = append(tp.Kprobes, p.hookEntry(kind, n, index(kpath, j), sc)...)
		}
	}
	if hooks == 0 && sf.get("loader") == nil {
		p.errorf(sf.at, join(specPath, "kprobes"), "at least one hook is required (kprobes, lsmhooks, tracepoints, fentries)")
	}
	return tp
}

// options reads spec.options: policy-mode (monitor or enforce), and
// Tetragon's options that tune how kprobes and uprobes attach, which
// ocigate accepts with no effect (it attaches neither).
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
		if !slices.Contains(Options, name) {
			p.errorf(f.line("name"), join(ip, "name"), "option %q is not supported (supported: %s)", name, strings.Join(Options, ", "))
			continue
		}
		if prev, dup := seen[name]; dup {
			p.errorf(f.line("name"), join(ip, "name"), "option %q given twice (first at line %d)", name, prev)
			continue
		}
		seen[name] = f.line("name")
		p.option(f, ip, name, tp)
	}
}

// Options are the spec.options ocigate accepts: policy-mode, and the
// attach tuning of Tetragon's kprobes and uprobes (no effect here).
var Options = []string{"policy-mode", "disable-kprobe-multi", "disable-uprobe-multi"}

// option checks one option's value and keeps it in tp.
func (p *parser) option(f fields, ip, name string, tp *TracingPolicy) {
	vpath := join(ip, "value")
	vn := f.get("value")
	var v string
	var err error
	if vn != nil {
		_, v, err = scalarValue(vn)
	}
	switch {
	case vn == nil && name == "policy-mode":
		p.errorf(f.line("value"), vpath, "required (monitor or enforce)")
		return
	case err != nil:
		p.errorf(vn.Line, vpath, "%s", err.Error())
		return
	case name == "policy-mode" && v != "monitor" && v != "enforce":
		p.errorf(vn.Line, vpath, "%q is not a policy mode (supported: monitor, enforce)", v)
		return
	case name == "policy-mode":
		tp.Mode = v
	}
	if tp.Options == nil {
		tp.Options = map[string]string{}
	}
	tp.Options[name] = v
}
