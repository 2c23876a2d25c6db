package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/profiles"
)

// neededPoints are the enforcement points a profile, as adapted to the
// backends (adaptToBackends), cannot do without, in point order:
//   - every point where it has selectors;
//   - for relay selectors, also connect (a relayed shell whose peer
//     connects after the shell's exec is decided at that connect) and
//     tracking (the relay bookkeeping follows forks and exits);
//   - tracking for binary predicates (matchBinaries: the process's binary
//     is what exec tracking recorded), TrackSock (the socket creators)
//     and process events (exec, clone and exit records).
//
// Name predicates need no tracking: the exec's file and the task's comm
// are read where they are evaluated.
func neededPoints(p *profiles.Profile) []string {
	need := map[string]bool{}
	tracking := p.TrackSockets || !p.NoProcessEvents
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		sels := p.Points[pt]
		if len(sels) == 0 {
			continue
		}
		need[pt.String()] = true
		if pt == profiles.PointRelay {
			need[profiles.PointConnect.String()] = true
			tracking = true
		}
		for _, s := range sels {
			tracking = tracking || len(s.Binaries) > 0
		}
	}
	var out []string
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		if need[pt.String()] {
			out = append(out, pt.String())
		}
	}
	if tracking {
		out = append(out, enforcer.PointTracking)
	}
	return out
}

// unavailablePoints are the points of backends that do not enforce on
// this kernel, with the kernel's reason (enforcer.PointBackend.Error).
func unavailablePoints(backends []enforcer.PointBackend) map[string]string {
	out := enforcer.Unavailable(backends)
	for point, why := range out {
		out[point] = oneLine(why)
	}
	return out
}

// oneLine folds a kernel's multi-line reason (a verifier log) into one
// line: it ends up on the hook's single stderr line and in log fields.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// UnavailableError refuses a workload whose profile needs enforcement
// points that do not enforce on this kernel: registering it would
// promise protection the kernel cannot give.
type UnavailableError struct {
	Container string
	Profile   string
	Points    []string // needed and unavailable, in point order
	Reasons   []string // the kernel's reason for each point
}

func (e *UnavailableError) Error() string {
	if len(e.Points) == 1 {
		return fmt.Sprintf("container %q: profile %q needs enforcement point %s, unavailable on this kernel: %s",
			e.Container, e.Profile, e.Points[0], e.Reasons[0])
	}
	why := make([]string, len(e.Points))
	for i, pt := range e.Points {
		why[i] = pt + ": " + e.Reasons[i]
	}
	return fmt.Sprintf("container %q: profile %q needs enforcement points %s, unavailable on this kernel: %s",
		e.Container, e.Profile, strings.Join(e.Points, ", "), strings.Join(why, "; "))
}

// checkAvailable returns an *UnavailableError when p, chosen for the
// container, needs a point this kernel does not enforce.
func (a *Agent) checkAvailable(containerID string, p *profiles.Profile) error {
	if len(a.unavailable) == 0 {
		return nil
	}
	e := &UnavailableError{Container: containerID, Profile: p.Name}
	for _, pt := range neededPoints(p) {
		if why, ok := a.unavailable[pt]; ok {
			e.Points = append(e.Points, pt)
			e.Reasons = append(e.Reasons, why)
		}
	}
	if len(e.Points) == 0 {
		return nil
	}
	return e
}

// Enforcement sums up what this kernel enforces, for the startup log:
// "complete"; "degraded: N points unavailable (a, b)" when a loaded
// profile needs one of them; or, when only points no loaded profile
// needs are missing (a report-only point an older kernel lacks), says
// so without calling the agent degraded.
func (a *Agent) Enforcement() string {
	needed, unneeded := a.unavailableByNeed()
	if len(unneeded) == 0 {
		return api.Enforcement(needed)
	}
	sum := "complete for the loaded profiles"
	if len(needed) > 0 {
		sum = api.Enforcement(needed)
	}
	return sum + "; unavailable, needed by none: " + strings.Join(unneeded, ", ")
}

// unavailableByNeed splits the unavailable points into those a loaded
// profile needs and the rest, each sorted.
func (a *Agent) unavailableByNeed() (needed, unneeded []string) {
	want := map[string]bool{}
	if a.profiles != nil {
		for _, lp := range a.profiles.byName {
			for _, pt := range neededPoints(lp.profile) {
				want[pt] = true
			}
		}
	}
	for pt := range a.unavailable {
		if want[pt] {
			needed = append(needed, pt)
		} else {
			unneeded = append(unneeded, pt)
		}
	}
	slices.Sort(needed)
	slices.Sort(unneeded)
	return needed, unneeded
}
