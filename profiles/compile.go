package profiles

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ocigate/ocigate/profiles/policy"
)

// Compiled is one TracingPolicy compiled to selectors, not yet placed in a
// profile: every selector is in group 0 and Compile sets the group.
type Compiled struct {
	Name string // metadata.name: the Policy of every selector
	Pos  policy.Pos
	// Points holds the policy's selectors per point in YAML order: the
	// order of its kprobes, then of each kprobe's selectors.
	Points [NumPoints][]Selector
	// At is where each selector of Points was written (same shape).
	At [NumPoints][]policy.Pos
	// TrackSockets is set when sk_alloc's returnArgAction or a matchActions
	// entry is TrackSock: the profile asks for socket ownership tracking.
	TrackSockets bool
	// Notes say what of the policy ocigate carries out differently from
	// Tetragon: the parser's and the compiler's.
	Notes []policy.Note
}

// Selectors counts the selectors of all points.
func (c *Compiled) Selectors() int {
	n := 0
	for _, s := range c.Points {
		n += len(s)
	}
	return n
}

// compiler collects the errors and notes of compiling one policy or
// profile.
type compiler struct {
	errs  policy.Errors
	notes []policy.Note
}

// notef records a note: the policy loads, and this is what it does
// differently from Tetragon.
func (c *compiler) notef(pos policy.Pos, field, format string, args ...any) {
	n := policy.Note{Pos: pos, Field: field, Msg: fmt.Sprintf(format, args...)}
	for _, have := range c.notes {
		if have == n {
			return
		}
	}
	c.notes = append(c.notes, n)
}

func (c *compiler) errorf(pos policy.Pos, field, format string, args ...any) {
	c.errs = append(c.errs, &policy.Error{File: pos.File, Line: pos.Line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs
}

// CompilePolicy compiles one TracingPolicy. Its errors are a policy.Errors
// whose lines read "file:line: field: message".
func CompilePolicy(tp *policy.TracingPolicy) (*Compiled, error) {
	return compilePolicy(tp, "")
}

// compilePolicy compiles tp; path prefixes its fields (inline policies).
func compilePolicy(tp *policy.TracingPolicy, path string) (*Compiled, error) {
	c := &compiler{}
	out := &Compiled{Name: tp.Name, Pos: tp.Pos}
	for ki := range tp.Kprobes {
		c.hook(tp, &tp.Kprobes[ki], path, out)
	}
	addInternal(tp, out, c)
	if tp.Namespaced {
		c.notef(tp.Pos, join(path, "kind"), "TracingPolicyNamespaced: ocigate applies it to the containers of the WorkloadProfiles that list it, whatever their Kubernetes namespace (%q here)", tp.Namespace)
	}
	if err := c.err(); err != nil {
		sortErrs(c.errs)
		return nil, err
	}
	out.Notes = append(slices.Clone(tp.Notes), c.notes...)
	return out, nil
}

// hook compiles one hook of tp into out: each selector (an implicit Post
// when it has none, as in Tetragon) at each point the hook decides at.
func (c *compiler) hook(tp *policy.TracingPolicy, k *policy.Kprobe, path string, out *Compiled) {
	kpath := k.Field // the parser wrote the inline prefix into it
	h, ok := hookOf(k)
	if !ok {
		c.errorf(k.Pos, kpath, "%s %q is not supported", k.Hook, k.Call)
		return
	}
	if k.ReturnArgAction == "TrackSock" {
		if k.Call != "sk_alloc" && !h.accepts() {
			c.errorf(k.Pos, join(kpath, "returnArgAction"), "TrackSock is supported on sk_alloc only, not %s", k.Call)
		}
		out.TrackSockets = true
	}
	c.hookNotes(k, h, kpath)
	sels := k.Selectors
	if len(sels) == 0 {
		sels = []policy.Selector{{Pos: k.Pos, Actions: []policy.Action{{Pos: k.Pos, Action: "Post"}}, ImplicitPost: true}}
	}
	rep := hookReport(k)
	for si := range sels {
		ps := &sels[si]
		spath := fmt.Sprintf("%s[%d]", join(kpath, "selectors"), si)
		if len(k.Selectors) == 0 {
			spath = join(kpath, "selectors")
		}
		s, track, ok := c.selector(k, ps, h, spath)
		out.TrackSockets = out.TrackSockets || track
		if !ok || h.untrackOnly(ps) {
			continue
		}
		s.Policy, s.Call, s.Monitor, s.Report = tp.Name, k.Call, tp.Mode == "monitor", rep
		c.actionReport(k, ps, &s, spath)
		for _, t := range c.targets(k, ps, h, spath) {
			c.place(s, t, ps, spath, out)
		}
	}
}

// place adds s at target t's point.
func (c *compiler) place(s Selector, t target, ps *policy.Selector, spath string, out *Compiled) {
	s.Variant = t.variant
	if t.syscall != "" {
		s.Syscall = t.syscall
	}
	if len(t.protocols) > 0 && !c.restrictProtocols(&s, t.protocols, ps, spath) {
		return
	}
	if err := s.validate(); err != nil {
		c.errorf(ps.Pos, spath, "%v", err)
		return
	}
	pt := t.point
	if s.Relayed {
		pt = PointRelay // decided where argv and the peer are known
	}
	out.Points[pt] = append(out.Points[pt], s)
	out.At[pt] = append(out.At[pt], ps.Pos)
}

// restrictProtocols restricts s to the protocols a hook sees, keeping a
// Protocol match only when it allows one of them; false when it never
// matches (an error).
func (c *compiler) restrictProtocols(s *Selector, protocols []uint8, ps *policy.Selector, spath string) bool {
	if len(s.Protocols) == 0 {
		s.Protocols = slices.Clone(protocols)
		return true
	}
	var both []uint8
	for _, p := range s.Protocols {
		if slices.Contains(protocols, p) {
			both = append(both, p)
		}
	}
	if len(both) == 0 {
		c.errorf(ps.Pos, spath, "%s sees protocols %v only: Protocol %v never matches", s.Call, protocols, s.Protocols)
		return false
	}
	s.Protocols = both
	return true
}

// hookReport is what every event of k's selectors carries of the hook.
func hookReport(k *policy.Kprobe) Report {
	r := Report{Hook: k.Hook, Message: k.Message, Tags: slices.Clone(k.Tags)}
	if r.Hook == policy.HookKprobe {
		r.Hook = ""
	}
	for _, a := range k.Args {
		r.Args = append(r.Args, ArgDecl{Index: a.Index, Type: a.Type, Label: a.Label, Resolve: a.Resolve})
	}
	if k.Return && k.ReturnArg != nil {
		r.Return = k.ReturnArg.Type
	}
	return r
}

// selector compiles one selector of hook k; track says it has a TrackSock
// action.
func (c *compiler) selector(k *policy.Kprobe, ps *policy.Selector, h hookDef, path string) (s Selector, track, ok bool) {
	n := len(c.errs)
	b := &selBuilder{c: c, s: &s, set: map[pred]string{}, h: h}
	for i := range ps.Args {
		b.arg(k, &ps.Args[i], fmt.Sprintf("%s[%d]", join(path, "matchArgs"), i))
	}
	b.binaries(ps.Binaries, path)
	for _, m := range ps.Namespaces {
		s.Namespaces = append(s.Namespaces, NamespaceMatch{Namespace: m.Namespace, Not: m.Operator == "NotIn",
			Inodes: slices.Clone(m.Inodes), HostNS: m.HostNS})
	}
	c.nsChanges(ps, &s, h, path)
	c.capabilities(ps, &s, h, path)
	c.pids(ps, &s, path)
	c.acceptChecks(ps, h, path)
	track = c.actions(k, ps, &s, h, path)
	return s, track, len(c.errs) == n
}

// binaries compiles matchBinaries: one entry of each kind.
func (b *selBuilder) binaries(list []policy.BinaryMatch, path string) {
	kinds := map[string]int{}
	for i, m := range list {
		field := fmt.Sprintf("%s[%d]", join(path, "matchBinaries"), i)
		kind := strings.TrimPrefix(m.Operator, "Not")
		if line, dup := kinds[kind]; dup {
			b.c.errorf(m.Pos, field, "%s: a selector holds one matchBinaries entry of kind %s (In/NotIn, Prefix/NotPrefix, Postfix/NotPostfix); the other is at line %d", m.Operator, kind, line)
			continue
		}
		kinds[kind] = m.Line
		b.s.Binaries = append(b.s.Binaries, BinaryMatch{Operator: m.Operator, Values: slices.Clone(m.Values)})
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Compile compiles a WorkloadProfile: each policy it lists (lookup finds
// those given by name) becomes one group at every point it has selectors
// for, groups in the order the profile lists the policies. Its errors are
// a policy.Errors whose lines read "file:line: field: message".
func Compile(wp *policy.WorkloadProfile, lookup func(name string) (*policy.TracingPolicy, bool)) (*Profile, error) {
	c := &compiler{}
	resolve := func(i int, ref policy.PolicyRef) *Compiled {
		path := fmt.Sprintf("spec.policies[%d]", i)
		tp, prefix := ref.Inline, path+".inline"
		if tp == nil {
			var ok bool
			if tp, ok = lookup(ref.Name); !ok || tp == nil {
				c.errorf(ref.Pos, path+".name", "unknown TracingPolicy %q", ref.Name)
				return nil
			}
			prefix = ""
		}
		compiled, err := compilePolicy(tp, prefix)
		c.errs = appendErrs(c.errs, err)
		return compiled
	}
	p, _ := assemble(wp, resolve, c)
	if err := c.err(); err != nil {
		sortErrs(c.errs)
		return nil, err
	}
	return p, nil
}

// assemble builds wp's profile from its compiled policies; resolve reports
// its own errors and returns nil for a policy that cannot be used.
func assemble(wp *policy.WorkloadProfile, resolve func(int, policy.PolicyRef) *Compiled, c *compiler) (*Profile, bool) {
	n := len(c.errs)
	p := &Profile{Name: wp.Name, Mode: Mode(wp.Mode), FailOpen: wp.FailurePolicy == "open", NoProcessEvents: wp.NoProcessEvents}
	if p.Mode != ModeEnforce && p.Mode != ModeMonitor {
		c.errorf(wp.Pos, "spec.mode", "profile %q: mode %q: want %s or %s", wp.Name, wp.Mode, ModeEnforce, ModeMonitor)
	}
	if wp.FailurePolicy != "" && wp.FailurePolicy != "open" && wp.FailurePolicy != "closed" {
		c.errorf(wp.Pos, "spec.failurePolicy", "profile %q: failure policy %q: want closed or open", wp.Name, wp.FailurePolicy)
	}
	track := false
	var groups [NumPoints]int
	for i, ref := range wp.Policies {
		cp := resolve(i, ref)
		if cp == nil {
			continue
		}
		track = track || cp.TrackSockets
		field := fmt.Sprintf("spec.policies[%d]", i)
		for pt, sels := range cp.Points {
			if len(sels) == 0 {
				continue
			}
			if have := len(p.Points[pt]); have <= MaxSelectors && have+len(sels) > MaxSelectors {
				c.errorf(ref.Pos, field, "profile %q: policy %q brings %s to %d selectors: at most %d per point, all policies together", wp.Name, cp.Name, Point(pt), have+len(sels), MaxSelectors)
			}
			// One group per (policy, call), as Tetragon runs each kprobe of
			// each policy: the first matching selector of a call decides
			// for that call.
			callGroup := map[string]int{}
			for _, s := range sels {
				group, ok := callGroup[s.Call]
				if !ok {
					group = groups[pt]
					groups[pt]++
					callGroup[s.Call] = group
					if group == MaxGroups {
						c.errorf(ref.Pos, field, "profile %q: policy %q call %s would be the %dth policy call with selectors at %s: at most %d per point", wp.Name, cp.Name, s.Call, group+1, Point(pt), MaxGroups)
					}
				}
				s.Group = group
				p.Points[pt] = append(p.Points[pt], s)
			}
		}
	}
	p.TrackSockets = track
	if len(c.errs) == n {
		if err := p.Validate(); err != nil {
			c.errorf(wp.Pos, "", "%v", err)
		}
	}
	return p, track
}
