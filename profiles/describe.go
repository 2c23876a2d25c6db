package profiles

import (
	"fmt"
	"strings"
)

// Describe renders a compiled profile for people: per point, each
// selector's policy, call, group and the predicates it holds.
func Describe(p *Profile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "profile %s (mode %s, failurePolicy %s)\n", p.Name, p.Mode, map[bool]string{true: "open", false: "closed"}[p.FailOpen])
	for pt, sels := range p.Points {
		if len(sels) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %s:\n", Point(pt))
		for i, s := range sels {
			fmt.Fprintf(&b, "    [%d] group %d policy %s call %s: %s\n", i, s.Group, s.Policy, s.Call, describeSelector(&s))
			if pred := s.Predicate(); pred != "" {
				fmt.Fprintf(&b, "        predicate %s: %s\n", pred, PredicateWords(pred))
			}
		}
	}
	return b.String()
}

func describeSelector(s *Selector) string {
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	nums := func(name string, v []uint8) {
		if len(v) > 0 {
			add("%s in %v", name, v)
		}
	}
	nums("family", s.Families)
	nums("protocol", s.Protocols)
	nums("type", s.SockTypes)
	nums("state", s.States)
	nums("new descriptor", s.Fds)
	for _, a := range []struct {
		name string
		m    AddrMatch
	}{{"daddr", s.Daddr}, {"saddr", s.Saddr}} {
		if a.m.Set() {
			add("%s %s %d prefixes %v", a.name, inOrNot(a.m.Not), len(a.m.Prefixes), clip(a.m.Prefixes))
		}
	}
	for _, p := range []struct {
		name string
		m    PortMatch
	}{{"dport", s.Dport}, {"sport", s.Sport}} {
		if p.m.Set() {
			add("%s %s %v", p.name, inOrNot(p.m.Not), p.m.Ranges)
		}
	}
	for _, bm := range s.Binaries {
		add("binary %s %v", bm.Operator, bm.Values)
	}
	if len(s.Names.Names) > 0 {
		add("name %s %v", inOrNot(s.Names.Not), s.Names.Names)
	}
	if s.StdioInet {
		add("stdio is an INET socket")
	}
	if s.StdioDialled {
		add("dialled by the process, its parent or grandparent")
	}
	if s.Fileless {
		add("the file has no link (fileless)")
	}
	if s.Relayed {
		add("a shell relayed to a network peer")
	}
	for _, n := range s.Namespaces {
		add("namespace %s %s %v host_ns=%v", n.Namespace, inOrNot(n.Not), n.Inodes, n.HostNS)
	}
	describeMore(s, add)
	act := s.Action.String()
	if s.ReturnValue > 0 {
		act += fmt.Sprintf(" return %d", s.ReturnValue)
	}
	if s.Errno != 0 {
		act += fmt.Sprintf(" errno %d", s.Errno)
	}
	if s.Signal != 0 {
		act += fmt.Sprintf(" signal %d", s.Signal)
	}
	if s.NoPost {
		act += " NoPost"
	}
	if s.Monitor {
		act += " (monitor)"
	}
	if len(parts) == 0 {
		parts = []string{"always"}
	}
	return strings.Join(parts, " and ") + " => " + act
}

// describeMore adds the executed file's path, capabilities, pids and
// namespace changes.
func describeMore(s *Selector, add func(format string, args ...any)) {
	for _, p := range s.Paths {
		add("executed file %s %v", p.Operator, p.Values)
	}
	if c := s.Caps; c != nil {
		add("capabilities (set %d) %s %#x", c.Set, inOrNot(c.Not), c.Mask)
	}
	if p := s.PIDs; p != nil {
		add("pid %s %v (namespace %v, follow forks %v)", inOrNot(p.Not), p.Values, p.Namespace, p.Follow)
	}
	if n := s.NsChanges; n != nil {
		var types []string
		for i, t := range NamespaceTypes {
			if n.Mask&(1<<i) != 0 {
				types = append(types, t)
			}
		}
		add("namespaces changed since exec %s %v", inOrNot(n.Not), types)
	}
	if s.Syscall != "" {
		add("system call %s", s.Syscall)
	}
}

func inOrNot(not bool) string {
	if not {
		return "not in"
	}
	return "in"
}

func clip[T any](v []T) []T {
	if len(v) > 8 {
		return v[:8]
	}
	return v
}
