package profiles

import (
	"strings"
	"testing"
)

// The built-in default decides "this is a reverse shell" by named
// predicates, each of which profiles show explains.
func TestDefaultPredicates(t *testing.T) {
	c := builtinCatalog(t)
	p, _ := c.Get("reverse-shell")
	got := map[string]bool{}
	for _, pt := range []Point{PointExec, PointRelay} {
		for _, s := range p.Points[pt] {
			if pred := s.Predicate(); pred != "" {
				got[pred] = true
			}
		}
	}
	for _, want := range []string{PredicateShellStdio, PredicateDialledStdio, PredicateRelayed, PredicateFileless} {
		if !got[want] {
			t.Errorf("the default lacks predicate %s (has %v)", want, got)
		}
		if PredicateWords(want) == "" {
			t.Errorf("predicate %s has no words", want)
		}
	}
	if got[PredicateStdio] {
		t.Errorf("the default kills any program with socket stdio (%s): inetd-style handlers would die", PredicateStdio)
	}
	d := Describe(p)
	if !strings.Contains(d, "predicate dialled-stdio-socket: ") || !strings.Contains(d, "predicate relayed-shell: ") {
		t.Errorf("Describe does not explain the predicates:\n%s", d)
	}
}
