package agent

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/profiles"
)

// loadedProfile is a profile written to the kernel under an id. Reloads
// write new ids, so a workload moves from one complete rule set to
// another in one map write.
type loadedProfile struct {
	id      uint32
	profile *profiles.Profile
}

// profileSet is the catalog as loaded into the kernel.
type profileSet struct {
	catalog *profiles.Catalog
	byName  map[string]loadedProfile
}

// loadCatalog writes every profile of c under fresh ids.
func (a *Agent) loadCatalog(c *profiles.Catalog) (*profileSet, error) {
	set := &profileSet{catalog: c, byName: map[string]loadedProfile{}}
	backends := a.enf.Backends()
	for _, p := range c.Profiles() {
		id := a.nextProfileID.Add(1)
		p = adaptToBackends(p, backends, a.log)
		if err := a.enf.LoadProfile(id, p); err != nil {
			if uerr := a.enf.UnloadProfile(id); uerr != nil {
				a.log.Warn("unload partly written profile", zap.String("profile", p.Name), zap.Error(uerr))
			}
			a.unloadSet(set)
			return nil, fmt.Errorf("load profile %q: %w", p.Name, err)
		}
		set.byName[p.Name] = loadedProfile{id: id, profile: p}
		a.byID.Store(id, p)
	}
	return set, nil
}

// inLoadOrder lists the set's profiles in the order they were loaded (by
// id), so that unloads happen, and are logged, in the same order in
// every run.
func (s *profileSet) inLoadOrder() []loadedProfile {
	return slices.SortedFunc(maps.Values(s.byName), func(x, y loadedProfile) int { return cmp.Compare(x.id, y.id) })
}

// unloadSet unloads every profile of set.
func (a *Agent) unloadSet(set *profileSet) {
	for _, lp := range set.inLoadOrder() {
		if err := a.enf.UnloadProfile(lp.id); err != nil {
			a.log.Warn("unload profile", zap.String("profile", lp.profile.Name), zap.Error(err))
		}
	}
}

// forgetAfter is how long a replaced profile still names its events.
const forgetAfter = 30 * time.Second

// rollbackMoves puts workloads back on the profiles they had.
func (a *Agent) rollbackMoves(moves []move) {
	for _, m := range moves {
		if id, e, ok := a.retainedEntry(m.w.ContainerID); ok {
			mode := profiles.ModeEnforce
			if e.Monitor {
				mode = profiles.ModeMonitor
			}
			if err := a.enf.SetWorkload(m.w.CgroupID, id, mode, e.Disabled); err != nil {
				a.log.Error("rollback of a reload failed for a workload", zap.String("container", m.w.ContainerID), zap.Error(err))
			}
			continue
		}
		lp, ok := a.profiles.byName[m.w.Profile]
		if !ok {
			continue
		}
		if err := a.enf.SetWorkload(m.w.CgroupID, lp.id, lp.profile.Mode, disabledSelectors(lp.profile, m.w.Namespaces, a.hostNS)); err != nil {
			a.log.Error("rollback of a reload failed for a workload", zap.String("container", m.w.ContainerID), zap.Error(err))
		}
	}
}

// move is one workload's change of profile in a reload.
type move struct {
	w *workload.Workload
	choice
}

// Reload loads a new catalog: every profile under a new id, then every
// workload moves to its re-selected profile in one map write each, then
// the old rules go. All or nothing: when a workload's selection fails
// (its annotation names a profile that is gone), nothing changes. A
// workload whose new profile needs a point this kernel does not enforce
// stays on its current rules (planMoves).
func (a *Agent) Reload(c *profiles.Catalog) error {
	// Writing the new rules can take a while (100 000 CIDRs): do it
	// before taking a.mu, so registrations are not held up meanwhile.
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	next, err := a.loadCatalog(c)
	if err != nil {
		a.stats.ProfileReloadErrors.Add(1)
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// The per-packet points the new profiles need attach before any
	// workload moves onto them; those no profile needs any more detach
	// after the old rules are gone (syncPoints).
	if err := a.attachFor(next); err != nil {
		a.unloadSet(next)
		a.syncPoints()
		a.stats.ProfileReloadErrors.Add(1)
		return fmt.Errorf("reload refused, nothing changed: %w", err)
	}
	moves, keeps, err := a.planMoves(next)
	if err != nil {
		a.unloadSet(next)
		a.syncPoints()
		a.stats.ProfileReloadErrors.Add(1)
		return fmt.Errorf("reload refused, nothing changed: %w", err)
	}
	for i, m := range moves {
		if err := a.enf.SetWorkload(m.w.CgroupID, m.lp.id, m.lp.profile.Mode, disabledSelectors(m.lp.profile, m.w.Namespaces, a.hostNS)); err != nil {
			a.rollbackMoves(moves[:i])
			a.unloadSet(next)
			a.syncPoints()
			a.stats.ProfileReloadErrors.Add(1)
			return fmt.Errorf("reload rolled back, nothing changed: container %q: %w", m.w.ContainerID, err)
		}
	}
	for _, m := range moves {
		if m.w.Profile != m.lp.profile.Name || m.w.Mode != string(m.lp.profile.Mode) {
			a.log.Info("workload changes profile", zap.String("container", m.w.ContainerID),
				zap.String("from", m.w.Profile), zap.String("to", m.lp.profile.Name), zap.String("reason", m.reason))
		}
		changed := m.w.Profile != m.lp.profile.Name || m.w.Mode != string(m.lp.profile.Mode) || m.w.ProfileReason != m.reason
		if m.ignored != nil && changed {
			a.reportClaim(m.w, m.ignored, events.ClaimIgnored)
		}
		if nw, ok := a.reg.SetProfile(m.w.ContainerID, m.lp.profile.Name, string(m.lp.profile.Mode), m.reason); ok && changed {
			a.persist(nw)
		}
		a.release(m.w.ContainerID)
	}
	a.keepOnCurrentRules(keeps)
	old := a.profiles
	a.profiles = next
	a.unloadReplaced(old)
	a.syncPoints()
	a.stats.ProfileReloads.Add(1)
	for _, n := range c.Notes() {
		a.log.Info("profiles", zap.String("note", n))
	}
	a.log.Info("profiles reloaded", zap.Int("profiles", len(next.byName)), zap.Int("workloads", len(moves)),
		zap.Int("kept_on_current_rules", len(keeps)))
	return nil
}

// keep is a workload a reload leaves on its current rules, and why.
type keep struct {
	w   *workload.Workload
	why error
}

// planMoves re-selects every workload's profile in next. A workload whose
// new profile needs a point this kernel does not enforce is kept on its
// current rules (keeps) rather than moved: it runs already, and the rules
// it has still protect it at the points that work. A selection that
// fails is an error.
func (a *Agent) planMoves(next *profileSet) ([]move, []keep, error) {
	var moves []move
	var keeps []keep
	for _, w := range a.reg.List() {
		c, err := a.choose(next, w, true)
		if err != nil {
			return nil, nil, err
		}
		if err := a.checkAvailable(w.ContainerID, c.lp.profile); err != nil {
			keeps = append(keeps, keep{w, err})
			continue
		}
		moves = append(moves, move{w, c})
	}
	return moves, keeps, nil
}

// keepOnCurrentRules retains the rules each kept workload is on (they
// stay loaded until it goes, or a reload moves it) and says so, loudly.
// Called with a.mu held, before the old profiles are unloaded.
func (a *Agent) keepOnCurrentRules(keeps []keep) {
	for _, k := range keeps {
		w := k.w
		if _, _, retained := a.retainedEntry(w.ContainerID); !retained {
			lp, ok := a.profiles.byName[w.Profile]
			if !ok { // a registered workload's profile is loaded or retained
				a.log.Error("workload kept on a reload, but its current profile is not loaded", zap.String("container", w.ContainerID),
					zap.String("profile", w.Profile))
				continue
			}
			entry := enforcer.InheritedWorkload{Profile: lp.id, Monitor: lp.profile.Mode == profiles.ModeMonitor,
				Disabled: disabledSelectors(lp.profile, w.Namespaces, a.hostNS)}
			a.retainEntry(w.ContainerID, lp.profile.Name, lp.profile.Mode, entry)
		}
		if nw, ok := a.reg.SetProfile(w.ContainerID, w.Profile, w.Mode, "kept on its current rules: "+k.why.Error()); ok {
			a.persist(nw)
		}
		a.log.Error("profile reload: workload kept on its current rules, its new profile needs an enforcement point this kernel does not enforce",
			zap.String("container", w.ContainerID), zap.String("profile", w.Profile), zap.Error(k.why))
	}
}

// unloadReplaced unloads the profiles a reload replaced, except those a
// workload is kept on; events still queued name the old ids, which are
// forgotten a little later. Called with a.mu held.
func (a *Agent) unloadReplaced(old *profileSet) {
	var gone []uint32
	for _, lp := range old.inLoadOrder() {
		if _, kept := a.retained[lp.id]; kept {
			continue
		}
		if err := a.enf.UnloadProfile(lp.id); err != nil {
			a.log.Warn("unload profile", zap.String("profile", lp.profile.Name), zap.Error(err))
		}
		gone = append(gone, lp.id)
	}
	a.forgetLater(gone...)
}

// forgetLater stops naming events of profile ids after forgetAfter.
func (a *Agent) forgetLater(ids ...uint32) {
	if len(ids) == 0 {
		return
	}
	time.AfterFunc(forgetAfter, func() {
		for _, id := range ids {
			a.byID.Delete(id)
		}
	})
}
