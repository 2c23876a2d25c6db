package agent

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/cgroupfilter"
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

func (a *Agent) unloadSet(set *profileSet) {
	for _, lp := range set.byName {
		if err := a.enf.UnloadProfile(lp.id); err != nil {
			a.log.Warn("unload profile", zap.String("profile", lp.profile.Name), zap.Error(err))
		}
	}
}

// workloadInfo is what profile selection knows of a workload.
func workloadInfo(w *cgroupfilter.Workload) profiles.WorkloadInfo {
	image := w.Image
	if image == "" {
		image, _ = imageOf(w.Annotations)
	}
	return profiles.WorkloadInfo{Image: image, Annotations: w.Annotations, Runtime: w.Runtime}
}

// choose picks a workload's loaded profile and says why.
func (set *profileSet) choose(w *cgroupfilter.Workload) (loadedProfile, string, error) {
	p, reason, err := profiles.Select(set.catalog, workloadInfo(w))
	if err != nil {
		return loadedProfile{}, "", fmt.Errorf("container %q: %w", w.ContainerID, err)
	}
	return set.byName[p.Name], reason, nil
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
	w      *cgroupfilter.Workload
	lp     loadedProfile
	reason string
}

// Reload loads a new catalog: every profile under a new id, then every
// workload moves to its re-selected profile in one map write each, then
// the old rules go. All or nothing: when a workload's selection fails
// (its annotation names a profile that is gone), nothing changes.
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
	var moves []move
	for _, w := range a.reg.List() {
		lp, reason, err := next.choose(w)
		if err != nil {
			a.unloadSet(next)
			a.stats.ProfileReloadErrors.Add(1)
			return fmt.Errorf("reload refused, nothing changed: %w", err)
		}
		moves = append(moves, move{w, lp, reason})
	}
	for i, m := range moves {
		if err := a.enf.SetWorkload(m.w.CgroupID, m.lp.id, m.lp.profile.Mode, disabledSelectors(m.lp.profile, m.w.Namespaces, a.hostNS)); err != nil {
			a.rollbackMoves(moves[:i])
			a.unloadSet(next)
			a.stats.ProfileReloadErrors.Add(1)
			return fmt.Errorf("reload rolled back, nothing changed: container %q: %w", m.w.ContainerID, err)
		}
	}
	for _, m := range moves {
		if m.w.Profile != m.lp.profile.Name || m.w.Mode != string(m.lp.profile.Mode) {
			a.log.Info("workload changes profile", zap.String("container", m.w.ContainerID),
				zap.String("from", m.w.Profile), zap.String("to", m.lp.profile.Name), zap.String("reason", m.reason))
		}
		changed := m.w.Profile != m.lp.profile.Name || m.w.Mode != string(m.lp.profile.Mode)
		if nw, ok := a.reg.SetProfile(m.w.ContainerID, m.lp.profile.Name, string(m.lp.profile.Mode), m.reason); ok && changed {
			a.persist(nw)
		}
		a.release(m.w.ContainerID)
	}
	old := a.profiles
	a.profiles = next
	a.unloadSet(old)
	// Events still queued name the old ids: forget them a little later.
	time.AfterFunc(forgetAfter, func() {
		for _, lp := range old.byName {
			a.byID.Delete(lp.id)
		}
	})
	a.stats.ProfileReloads.Add(1)
	for _, n := range c.Notes() {
		a.log.Info("profiles", zap.String("note", n))
	}
	a.log.Info("profiles reloaded", zap.Int("profiles", len(next.byName)), zap.Int("workloads", len(moves)))
	return nil
}
