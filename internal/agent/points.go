package agent

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/profiles"
)

// PointSwitch is an enforcer whose per-packet points attach only while
// a loaded profile needs them (*enforcer.Enforcer): they run for every
// packet of the host, a workload's or not.
type PointSwitch interface {
	OnDemandPoints() []string
	AttachPoint(point string) error
	DetachPoint(point string) error
}

// pointUsers maps each on-demand point that one of ps needs to the
// first of them (by name) that needs it.
func pointUsers(onDemand []string, ps []*profiles.Profile) map[string]string {
	slices.SortFunc(ps, func(a, b *profiles.Profile) int { return strings.Compare(a.Name, b.Name) })
	out := map[string]string{}
	for _, p := range ps {
		for _, pt := range neededPoints(p) {
			if _, seen := out[pt]; !seen && slices.Contains(onDemand, pt) {
				out[pt] = p.Name
			}
		}
	}
	return out
}

// setProfiles lists the profiles of set.
func setProfiles(set *profileSet) []*profiles.Profile {
	var out []*profiles.Profile
	for _, lp := range set.byName {
		out = append(out, lp.profile)
	}
	return out
}

// attachFor attaches every on-demand point a profile of set needs,
// before any workload can be put on it. A point that does not attach
// fails with an error naming the profile and the point; the points
// attached before it stay until syncPoints.
func (a *Agent) attachFor(set *profileSet) error {
	sw, ok := a.enf.(PointSwitch)
	if !ok {
		return nil
	}
	users := pointUsers(sw.OnDemandPoints(), setProfiles(set))
	for _, pt := range slices.Sorted(maps.Keys(users)) {
		if err := sw.AttachPoint(pt); err != nil {
			return fmt.Errorf("profile %q needs enforcement point %s, which did not attach: %w", users[pt], pt, err)
		}
	}
	return nil
}

// syncPoints attaches exactly the on-demand points that the loaded
// profiles and those workloads are kept on (retained) need, and detaches
// the others. A retained profile whose rules the agent does not know
// (inherited from an earlier agent) keeps every point attached. Called
// with a.mu held (or before the agent serves).
func (a *Agent) syncPoints() {
	sw, ok := a.enf.(PointSwitch)
	if !ok {
		return
	}
	onDemand := sw.OnDemandPoints()
	ps := setProfiles(a.profiles)
	unknown := false
	for id := range a.retained {
		if p, ok := a.profileByID(id); ok {
			ps = append(ps, p)
		} else {
			unknown = true
		}
	}
	users := pointUsers(onDemand, ps)
	for _, pt := range onDemand {
		if _, need := users[pt]; need || unknown {
			if err := sw.AttachPoint(pt); err != nil {
				a.log.Error("enforcement point needed by a loaded profile did not attach", zap.String("point", pt), zap.Error(err))
			}
			continue
		}
		if err := sw.DetachPoint(pt); err != nil {
			a.log.Warn("enforcement point no profile needs did not detach cleanly", zap.String("point", pt), zap.Error(err))
		}
	}
}

// attachAtStart attaches the points the catalog's profiles need, at
// start-up: a point that does not attach is unavailable, so that
// registrations whose profile needs it are refused, as for a point no
// backend carries.
func (a *Agent) attachAtStart(set *profileSet) {
	sw, ok := a.enf.(PointSwitch)
	if !ok {
		return
	}
	users := pointUsers(sw.OnDemandPoints(), setProfiles(set))
	for _, pt := range slices.Sorted(maps.Keys(users)) {
		if err := sw.AttachPoint(pt); err != nil {
			a.unavailable[pt] = oneLine("did not attach: " + err.Error())
			a.log.Error("enforcement point did not attach: registrations whose profile needs it are refused",
				zap.String("point", pt), zap.String("profile", users[pt]), zap.Error(err))
		}
	}
}
