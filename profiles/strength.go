package profiles

import (
	"fmt"
	"sort"
	"strings"
)

// Weaknesses says how p protects less than base, one phrase per way; none
// means p is at least as strong as base. p is at least as strong when
//
//   - its mode is enforce, or base's is monitor;
//   - its failure policy is closed, or base's is open;
//   - it reports process events, or base does not;
//   - at every enforcement point, every policy of base — its ordered
//     selectors there, as compiled — is in p unchanged.
//
// Within a policy the first matching selector decides, and every policy
// of a profile is evaluated with the strongest action winning: so a
// policy present unchanged decides in p what it decides in base, and p's
// other policies can only add to that — except signals, of which the
// first is sent: where base sends one (Signal, NotifyEnforcer's argSig),
// p's other policies must send none. Policy names and their order
// among the policies do not count, so a copy of a policy under another
// name counts as the policy.
func Weaknesses(base, p *Profile) []string {
	var out []string
	if base.Mode == ModeEnforce && p.Mode != ModeEnforce {
		out = append(out, fmt.Sprintf("mode %s instead of %s", p.Mode, base.Mode))
	}
	if p.FailOpen && !base.FailOpen {
		out = append(out, "failurePolicy open instead of closed")
	}
	if p.NoProcessEvents && !base.NoProcessEvents {
		out = append(out, "process events off")
	}
	missing := map[string][]string{} // base's policy -> points where p lacks it
	for pt := range NumPoints {
		have := map[string]bool{}
		for _, g := range groupKeys(p.Points[pt]) {
			have[g.key] = true
		}
		for _, g := range groupKeys(base.Points[pt]) {
			if pts := missing[g.policy]; !have[g.key] && (len(pts) == 0 || pts[len(pts)-1] != pt.String()) {
				missing[g.policy] = append(pts, pt.String())
			}
		}
		if preemptsSignal(base.Points[pt], p.Points[pt]) {
			out = append(out, fmt.Sprintf("at %s another policy's signal may come before the one %q sends", pt, base.Name))
		}
	}
	names := make([]string, 0, len(missing))
	for name := range missing {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, fmt.Sprintf("policy %q missing or changed at %s", name, strings.Join(missing[name], ", ")))
	}
	return out
}

// preemptsSignal reports whether p's policies that base lacks could send
// their signal first where base sends one: the first signal of an
// operation is the one sent (bpf/verdict.h), so another policy's signal
// could stand in for base's (a SIGKILL by Signal, say). Refusals and
// kills add up; only signals are first-come.
func preemptsSignal(base, p []Selector) bool {
	if !signals(base) {
		return false
	}
	own := map[string]bool{}
	for _, g := range groupKeys(base) {
		own[g.key] = true
	}
	byGroup := map[int][]Selector{}
	for _, s := range p {
		byGroup[s.Group] = append(byGroup[s.Group], s)
	}
	for _, sels := range byGroup {
		if !own[groupKeys(sels)[0].key] && signals(sels) {
			return true
		}
	}
	return false
}

// signals reports whether a selector sends a signal other than by
// Sigkill.
func signals(sels []Selector) bool {
	for _, s := range sels {
		if s.Signal != 0 && s.Action != ActionSigkill {
			return true
		}
	}
	return false
}

// AtLeastAsStrong reports whether p protects at least as much as base
// (Weaknesses is empty).
func AtLeastAsStrong(base, p *Profile) bool { return len(Weaknesses(base, p)) == 0 }

// policyGroup is one policy's selectors at one point, as a comparable key.
type policyGroup struct {
	policy string
	key    string
}

// groupKeys returns the policies of a point's selectors, each as the text
// of its ordered selectors without their group index and policy name.
func groupKeys(sels []Selector) []policyGroup {
	byGroup := map[int]*strings.Builder{}
	names := map[int]string{}
	var order []int
	for _, s := range sels {
		b := byGroup[s.Group]
		if b == nil {
			b = &strings.Builder{}
			byGroup[s.Group], names[s.Group] = b, s.Policy
			order = append(order, s.Group)
		}
		s.Group, s.Policy = 0, ""
		fmt.Fprintf(b, "%+v\n", s)
	}
	out := make([]policyGroup, len(order))
	for i, g := range order {
		out[i] = policyGroup{policy: names[g], key: byGroup[g].String()}
	}
	return out
}
