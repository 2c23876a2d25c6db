package policy

import (
	"path"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// WorkloadProfile is a validated kind WorkloadProfile of apiVersion
// ocigate.io/v1alpha1: which containers get which policies, and how.
type WorkloadProfile struct {
	Pos
	Name string // metadata.name
	// Namespace, Labels and Annotations are metadata.namespace, .labels and
	// .annotations, kept as written; ocigate gives them no meaning.
	Namespace     string
	Labels        map[string]string
	Annotations   map[string]string
	Match         Match
	Mode          string // "monitor" or "enforce" (required)
	FailurePolicy string // "closed" (default) or "open"
	Policies      []PolicyRef
	Default       bool // spec.default: the profile of containers no other profile matches
	// NoProcessEvents is spec.processEvents: false: the workloads get no
	// process_exec and process_exit events (a monitor-heavy workload's
	// choice); decisions are reported all the same.
	NoProcessEvents bool
	// SelectableBy is spec.selectableBy: the workloads whose annotations
	// may choose this profile although it is weaker than the one their
	// identity selects (docs/trust.md). Nil: none may.
	SelectableBy *SelectableBy
}

// SelectableBy names, by what their runtime vouches for, the workloads
// that may choose a profile by annotation although it is weaker than
// theirs: an image (the same patterns as Match.Images; a digest binds the
// image's content), a pod namespace (path.Match globs on the namespace
// of the runtime's sandbox, never an annotation's), or All (every
// workload: whoever writes a container's spec may choose it).
type SelectableBy struct {
	Pos
	Images     []string
	Namespaces []string
	All        bool
}

// Match selects containers. The lists are ANDed with each other; the
// entries of one list are ORed. An empty list does not constrain.
type Match struct {
	Pos
	// Images are path.Match globs on the image reference ("*" does not
	// cross a "/"), optionally pinned by digest: "NAME@sha256:<64 hex>".
	Images      []string
	Annotations []AnnotationMatch
	Runtimes    []string // runc, crun, podman, containerd, cri-o, docker
	// Containers are path.Match globs on the container's name in its pod,
	// the annotation io.kubernetes.cri.container-name (Kubernetes
	// containers; what Tetragon's containerSelector calls name).
	Containers []string
}

// AnnotationMatch matches one container annotation: its value equals
// Equals, or matches the RE2 regular expression Regex (unanchored, as
// regexp.MatchString). Exactly one of the two is set.
type AnnotationMatch struct {
	Pos
	Key    string
	Equals string
	Regex  string
}

// PolicyRef is one spec.policies[] entry: a reference by name to a
// TracingPolicy document (Inline nil), or an inline policy, whose name is
// then copied into Name.
type PolicyRef struct {
	Pos
	Name   string
	Inline *TracingPolicy
}

// Runtimes are the container runtimes spec.match.runtimes may name.
var Runtimes = []string{"runc", "crun", "podman", "containerd", "cri-o", "docker"}

var (
	profileSpecFields = []string{"match", "mode", "failurePolicy", "policies", "default", "processEvents", "selectableBy"}
	selectableFields  = []string{"images", "namespaces", "all"}
	matchFields       = []string{"images", "annotations", "runtimes", "containers"}
	annotationFields  = []string{"key", "equals", "regex"}
	refFields         = []string{"name", "inline"}
	inlineFields      = []string{"apiVersion", "kind", "metadata", "spec"}
	digestRE          = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

func (p *parser) workloadProfile(f fields) *WorkloadProfile {
	wp := &WorkloadProfile{Pos: p.pos(f.n), FailurePolicy: "closed"}
	m := p.metadata(f.get("metadata"), f.line("metadata"), "metadata")
	wp.Name, wp.Namespace, wp.Labels, wp.Annotations = m.name, m.namespace, m.labels, m.annotations
	if m.name != "" {
		p.res.names = append(p.res.names, site{kind: "WorkloadProfile", name: m.name,
			pos: Pos{p.file, m.line}, field: "metadata.name"})
	}
	spec := f.get("spec")
	if spec == nil {
		p.errorf(f.line("spec"), "spec", "required (with mode and policies)")
		return wp
	}
	sf, ok := p.mapping(spec, "spec", profileSpecFields, nil)
	if !ok {
		return wp
	}
	sf = sf.under(f.line("spec"))
	wp.Mode, _ = p.oneOf(sf, "mode", "spec", "mode", []string{"monitor", "enforce"})
	if sf.get("failurePolicy") != nil {
		wp.FailurePolicy, _ = p.oneOf(sf, "failurePolicy", "spec", "failure policy", []string{"closed", "open"})
	}
	wp.Default, _ = p.boolean(sf.get("default"), "spec.default")
	if n := sf.get("processEvents"); n != nil {
		on, ok := p.boolean(n, "spec.processEvents")
		wp.NoProcessEvents = ok && !on
	}
	if wp.Default {
		p.res.defaults = append(p.res.defaults, site{kind: "WorkloadProfile", name: wp.Name,
			pos: Pos{p.file, sf.line("default")}, field: "spec.default"})
	}
	switch mn := sf.get("match"); {
	case mn != nil && wp.Default:
		p.errorf(sf.line("match"), "spec.match", "not allowed with default: true (the default profile takes every container no other profile matches)")
	case mn != nil:
		wp.Match = p.match(mn, "spec.match", sf.line("match"))
	case !wp.Default:
		p.errorf(sf.line("match"), "spec.match", "required (or default: true)")
	}
	if n := sf.get("selectableBy"); n != nil {
		wp.SelectableBy = p.selectableBy(n, "spec.selectableBy", sf.line("selectableBy"))
	}
	pn := p.required(sf, "policies", "spec", " (at least one policy)")
	items := p.seq(pn, "spec.policies", MaxListLen)
	if pn != nil && pn.Kind == yaml.SequenceNode && len(items) == 0 {
		p.errorf(pn.Line, "spec.policies", "at least one policy is required")
	}
	seen := map[string]int{}
	for i, n := range items {
		ip := index("spec.policies", i)
		ref, ok := p.policyRef(n, ip)
		if !ok {
			continue
		}
		if prev, dup := seen[ref.Name]; dup && ref.Name != "" {
			p.errorf(n.Line, ip, "policy %q listed twice (first at line %d)", ref.Name, prev)
			continue
		}
		seen[ref.Name] = n.Line
		wp.Policies = append(wp.Policies, ref)
	}
	return wp
}

func (p *parser) policyRef(n *yaml.Node, path string) (PolicyRef, bool) {
	f, ok := p.mapping(n, path, refFields, nil)
	if !ok {
		return PolicyRef{}, false
	}
	ref := PolicyRef{Pos: p.pos(n)}
	nameN, inlineN := f.get("name"), f.get("inline")
	switch {
	case nameN != nil && inlineN != nil:
		p.errorf(n.Line, path, "name and inline are exclusive: give one")
		return ref, false
	case nameN != nil:
		name, ok := p.str(nameN, join(path, "name"))
		if !ok {
			return ref, false
		}
		if len(name) > 253 || !dns1123.MatchString(name) {
			p.errorf(nameN.Line, join(path, "name"), "%q is not a valid policy name", name)
			return ref, false
		}
		ref.Name = name
		p.res.refs = append(p.res.refs, site{kind: "TracingPolicy", name: name,
			pos: Pos{p.file, nameN.Line}, field: join(path, "name")})
		return ref, true
	case inlineN != nil:
		ip := join(path, "inline")
		f, ok := p.mapping(inlineN, ip, inlineFields, nil)
		if !ok {
			return ref, false
		}
		if s, ok := p.str(f.get("apiVersion"), join(ip, "apiVersion")); ok && s != "cilium.io/v1alpha1" {
			p.errorf(f.line("apiVersion"), join(ip, "apiVersion"), "%q is not supported (supported: cilium.io/v1alpha1, or leave it out)", s)
		}
		if s, ok := p.str(f.get("kind"), join(ip, "kind")); ok && s != "TracingPolicy" {
			p.errorf(f.line("kind"), join(ip, "kind"), "%q is not supported (supported: TracingPolicy, or leave it out)", s)
		}
		ref.Inline = p.tracingPolicy(f, ip)
		ref.Name = ref.Inline.Name
		return ref, true
	}
	p.errorf(n.Line, path, "needs name (a TracingPolicy's metadata.name) or inline (a TracingPolicy)")
	return ref, false
}

func (p *parser) match(n *yaml.Node, path string, at int) Match {
	m := Match{Pos: p.pos(n)}
	f, ok := p.mapping(n, path, matchFields, nil)
	if !ok {
		return m
	}
	f = f.under(at)
	m.Images = p.images(f.get("images"), join(path, "images"))
	collect(p, f, path, "annotations", p.annotation, &m.Annotations)
	collect(p, f, path, "runtimes", p.runtime, &m.Runtimes)
	collect(p, f, path, "containers", p.containerName, &m.Containers)
	if f.get("images") == nil && f.get("annotations") == nil && f.get("runtimes") == nil && f.get("containers") == nil {
		p.errorf(f.at, path, "needs at least one of images, annotations, runtimes, containers")
	}
	return m
}

// containerName reads one match.containers entry: a glob on a
// Kubernetes container name.
func (p *parser) containerName(c *yaml.Node, ip string) (string, bool) {
	s, ok := p.str(c, ip)
	if !ok {
		return "", false
	}
	if _, err := path.Match(s, ""); err != nil || s == "" || strings.ContainsAny(s, " \t\r\n\x00/") {
		p.errorf(c.Line, ip, "%q is not a container name or glob", s)
		return "", false
	}
	return s, true
}

// runtime reads one match.runtimes entry.
func (p *parser) runtime(c *yaml.Node, ip string) (string, bool) {
	s, ok := p.str(c, ip)
	if ok && !slices.Contains(Runtimes, s) {
		p.errorf(c.Line, ip, "%q is not a supported runtime (supported: %s)", s, strings.Join(Runtimes, ", "))
		return "", false
	}
	return s, ok
}

// selectableBy parses spec.selectableBy.
func (p *parser) selectableBy(n *yaml.Node, field string, at int) *SelectableBy {
	s := &SelectableBy{Pos: p.pos(n)}
	f, ok := p.mapping(n, field, selectableFields, nil)
	if !ok {
		return s
	}
	f = f.under(at)
	s.Images = p.images(f.get("images"), join(field, "images"))
	npath := join(field, "namespaces")
	for i, c := range p.seq(f.get("namespaces"), npath, MaxListLen) {
		v, ok := p.str(c, index(npath, i))
		if !ok {
			continue
		}
		if _, err := path.Match(v, ""); err != nil || v == "" || strings.ContainsAny(v, " \t\r\n\x00/") {
			p.errorf(c.Line, index(npath, i), "%q is not a namespace name or glob", v)
			continue
		}
		s.Namespaces = append(s.Namespaces, v)
	}
	if an := f.get("all"); an != nil {
		s.All, _ = p.boolean(an, join(field, "all"))
	}
	if len(s.Images) == 0 && len(s.Namespaces) == 0 && !s.All {
		p.errorf(f.at, field, "needs images, namespaces or all: true (leave selectableBy out when no workload may choose this profile)")
	}
	return s
}

// images parses a list of image patterns (match.images, selectableBy.images).
func (p *parser) images(n *yaml.Node, ipath string) []string {
	var out []string
	for i, c := range p.seq(n, ipath, MaxListLen) {
		s, ok := p.str(c, index(ipath, i))
		if !ok {
			continue
		}
		if msg := checkImage(s); msg != "" {
			p.errorf(c.Line, index(ipath, i), "%q: %s", s, msg)
			continue
		}
		out = append(out, s)
	}
	return out
}

// checkImage validates an image glob, optionally pinned by digest, and
// returns what is wrong with it.
func checkImage(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\r\n\x00") {
		return "not an image reference (empty or contains whitespace)"
	}
	name := s
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		name = s[:i]
		if !digestRE.MatchString(s[i+1:]) {
			return "the digest must be sha256: followed by 64 lowercase hex digits"
		}
		if name == "" {
			return "an image name is required before the digest"
		}
	}
	if _, err := path.Match(name, ""); err != nil {
		return "not a valid glob: " + err.Error()
	}
	return ""
}

func (p *parser) annotation(n *yaml.Node, path string) (AnnotationMatch, bool) {
	f, ok := p.mapping(n, path, annotationFields, nil)
	if !ok {
		return AnnotationMatch{}, false
	}
	a := AnnotationMatch{Pos: p.pos(n)}
	a.Key, ok = p.str(p.required(f, "key", path, ""), join(path, "key"))
	if ok && (a.Key == "" || strings.ContainsAny(a.Key, " \t\r\n\x00")) {
		p.errorf(f.line("key"), join(path, "key"), "%q is not an annotation key", a.Key)
		ok = false
	}
	eq, re := f.get("equals"), f.get("regex")
	switch {
	case eq != nil && re != nil:
		p.errorf(n.Line, path, "equals and regex are exclusive: give one")
		return a, false
	case eq != nil:
		var eok bool
		a.Equals, eok = p.str(eq, join(path, "equals"))
		return a, ok && eok
	case re != nil:
		s, rok := p.str(re, join(path, "regex"))
		if !rok {
			return a, false
		}
		if _, err := regexp.Compile(s); err != nil {
			p.errorf(re.Line, join(path, "regex"), "%q does not compile: %v", s, err)
			return a, false
		}
		a.Regex = s
		return a, ok
	}
	p.errorf(n.Line, path, "needs equals or regex")
	return a, false
}
