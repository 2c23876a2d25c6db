package agent

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/profiles"
)

// Inheritor is an enforcer that took over pinned maps (*enforcer.Enforcer).
type Inheritor interface {
	Inherited() enforcer.Inherited
}

// retainedProfile is a profile id kept because workloads on it could not
// be moved to a loaded profile: an inherited id whose workloads'
// annotation names a profile the restarted agent does not have, or whose
// profile as selected now needs an enforcement point this kernel does
// not enforce; or a replaced id whose workloads a reload kept on their
// current rules for that same reason. Its rules stay in force for them
// until they stop or a reload finds them a profile.
type retainedProfile struct {
	name, mode string
	entries    map[string]enforcer.InheritedWorkload // container id -> its map entry
}

// restore rebuilds the registry from the records a previous agent left
// and the workloads map it left pinned. A workload is kept when both
// know it and its cgroup still exists with the same id; it then moves to
// its profile as selected now, in one map write. Everything else is
// removed: a map entry without a record (nobody could unregister it), a
// record without a map entry, a record whose cgroup is gone. Inherited
// profile ids nobody uses any more are unloaded last. Called by New
// before the agent serves, so it needs no lock.
func (a *Agent) restore(in enforcer.Inherited) {
	var records []*workload.Workload
	if a.state != nil {
		var errs []error
		records, errs = a.state.Load()
		for _, err := range errs {
			a.log.Warn("workload record skipped", zap.Error(err))
		}
	}
	used := map[uint32]bool{}
	oldNames := map[uint32]string{} // inherited id -> the profile name recorded with it
	for _, w := range records {
		entry, pinned := in.Workloads[w.CgroupID]
		if !pinned {
			a.dropRecord(w, "its cgroup is not in the pinned workloads map")
			continue
		}
		oldNames[entry.Profile] = w.Profile
		delete(in.Workloads, w.CgroupID)
		if err := a.cgroupStillThere(w); err != nil {
			a.dropWorkload(w, err.Error())
			continue
		}
		if old, ok := a.reg.Get(w.ContainerID); ok { // registered again on another cgroup: the later wins
			a.reg.Remove(old.ContainerID)
			a.cgw.remove(old.CgroupID)
			a.dropWorkload(old, "re-registered on cgroup "+fmt.Sprint(w.CgroupID))
		}
		if err := a.moveRestored(w); err != nil {
			a.retain(w, entry, err)
			used[entry.Profile] = true
		}
		if _, err := a.reg.Put(w); err != nil {
			a.log.Error("restored workload not registered", zap.String("container", w.ContainerID), zap.Error(err))
			continue
		}
		a.watchCgroup(w)
		a.stats.WorkloadsRestored.Add(1)
	}
	ids := make([]uint64, 0, len(in.Workloads))
	for cg := range in.Workloads {
		ids = append(ids, cg)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, cg := range ids {
		a.stats.WorkloadsDropped.Add(1)
		a.log.Warn("pinned workload without a record: enforcement removed", zap.Uint64("cgroup_id", cg))
		if err := a.enf.RemoveWorkload(cg); err != nil {
			a.log.Error("remove pinned workload", zap.Uint64("cgroup_id", cg), zap.Error(err))
		}
	}
	for _, id := range in.Profiles {
		if used[id] {
			continue
		}
		if err := a.enf.UnloadProfile(id); err != nil {
			a.log.Warn("unload inherited profile", zap.Uint32("id", id), zap.Error(err))
		}
	}
	a.nameInherited(oldNames, used)
	if len(records) > 0 || len(ids) > 0 {
		a.log.Info("workloads taken over from the pinned maps", zap.Int("restored", a.reg.Len()),
			zap.Uint64("dropped", a.stats.WorkloadsDropped.Load()), zap.Int("retained_profiles", len(a.retained)))
	}
}

// nameInherited lets the events the kernel reported under inherited ids
// (while no agent ran, or just before the move) name their profile: the
// profile of the same name loaded now, for a while, as after a reload.
func (a *Agent) nameInherited(oldNames map[uint32]string, retained map[uint32]bool) {
	var named []uint32
	for id, name := range oldNames {
		if lp, ok := a.profiles.byName[name]; ok && !retained[id] {
			a.byID.Store(id, lp.profile)
			named = append(named, id)
		}
	}
	if len(named) == 0 {
		return
	}
	time.AfterFunc(forgetAfter, func() {
		for _, id := range named {
			a.byID.Delete(id)
		}
	})
}

// cgroupStillThere: the record's cgroup exists with the recorded id.
func (a *Agent) cgroupStillThere(w *workload.Workload) error {
	id, err := a.resolver.CgroupID(w.CgroupPath)
	if err != nil {
		return err
	}
	if id != w.CgroupID {
		return fmt.Errorf("cgroup %s now has id %d, recorded %d", w.CgroupPath, id, w.CgroupID)
	}
	return nil
}

// moveRestored puts a restored workload on its profile as selected now.
func (a *Agent) moveRestored(w *workload.Workload) error {
	c, err := a.choose(a.profiles, w, true)
	if err != nil {
		return err
	}
	lp, reason := c.lp, c.reason
	if c.ignored != nil && reason != w.ProfileReason {
		a.reportClaim(w, c.ignored, events.ClaimIgnored)
	}
	if err := a.checkAvailable(w.ContainerID, lp.profile); err != nil {
		return err
	}
	disabled := disabledSelectors(lp.profile, w.Namespaces, a.hostNS)
	if err := a.enf.SetWorkload(w.CgroupID, lp.id, lp.profile.Mode, disabled); err != nil {
		return err
	}
	changed := w.Profile != lp.profile.Name || w.Mode != string(lp.profile.Mode)
	if changed {
		a.log.Info("restored workload changes profile", zap.String("container", w.ContainerID),
			zap.String("from", w.Profile), zap.String("to", lp.profile.Name), zap.String("reason", reason))
	}
	w.Profile, w.Mode, w.ProfileReason = lp.profile.Name, string(lp.profile.Mode), reason
	if changed {
		a.persist(w)
	}
	return nil
}

// retain keeps a restored workload on its inherited rules. When its
// profile needs a point this kernel does not enforce, that is logged as
// an error: the workload is not what its profile promises.
func (a *Agent) retain(w *workload.Workload, entry enforcer.InheritedWorkload, why error) {
	mode := profiles.ModeEnforce
	if entry.Monitor {
		mode = profiles.ModeMonitor
	}
	rp, created := a.retainEntry(w.ContainerID, w.Profile, mode, entry)
	if created {
		// The inherited rules' selectors are not known here: events name
		// the profile only.
		a.byID.Store(entry.Profile, &profiles.Profile{Name: rp.name, Mode: mode})
	}
	w.Mode = rp.mode
	w.ProfileReason = "kept on the rules pinned by the previous agent: " + why.Error()
	level := zap.WarnLevel
	var ue *UnavailableError
	if errors.As(why, &ue) {
		level = zap.ErrorLevel
	}
	a.log.Log(level, "restored workload kept on its pinned rules", zap.String("container", w.ContainerID),
		zap.String("profile", w.Profile), zap.Uint32("id", entry.Profile), zap.Error(why))
}

// retainEntry records that a workload stays on the rules of profile id
// entry.Profile (name, mode) whatever the catalog says, and returns them;
// created says they were not retained before.
func (a *Agent) retainEntry(containerID, name string, mode profiles.Mode, entry enforcer.InheritedWorkload) (rp *retainedProfile, created bool) {
	rp = a.retained[entry.Profile]
	if rp == nil {
		rp, created = &retainedProfile{name: name, mode: string(mode), entries: map[string]enforcer.InheritedWorkload{}}, true
		a.retained[entry.Profile] = rp
	}
	rp.entries[containerID] = entry
	return rp, created
}

// retainedEntry returns the inherited map entry a workload is kept on.
func (a *Agent) retainedEntry(containerID string) (uint32, enforcer.InheritedWorkload, bool) {
	for id, rp := range a.retained {
		if e, ok := rp.entries[containerID]; ok {
			return id, e, true
		}
	}
	return 0, enforcer.InheritedWorkload{}, false
}

// release forgets that a workload is kept on inherited rules; the last
// one to go unloads them. Called with a.mu held, after its map entry
// moved or went.
func (a *Agent) release(containerID string) {
	for id, rp := range a.retained {
		if _, ok := rp.entries[containerID]; !ok {
			continue
		}
		delete(rp.entries, containerID)
		if len(rp.entries) == 0 {
			delete(a.retained, id)
			if err := a.enf.UnloadProfile(id); err != nil {
				a.log.Warn("unload retained profile", zap.Uint32("id", id), zap.Error(err))
			}
			a.forgetLater(id)
			a.syncPoints() // its points may be needed by none now
		}
		return
	}
}

// dropRecord removes a record that no map entry backs.
func (a *Agent) dropRecord(w *workload.Workload, why string) {
	a.stats.WorkloadsDropped.Add(1)
	a.log.Info("workload not restored", zap.String("container", w.ContainerID), zap.String("why", why))
	a.unpersist(w.CgroupID)
}

// dropWorkload removes a restored workload's map entry and record.
func (a *Agent) dropWorkload(w *workload.Workload, why string) {
	if err := a.enf.RemoveWorkload(w.CgroupID); err != nil {
		a.log.Error("remove workload not restored", zap.String("container", w.ContainerID), zap.Error(err))
	}
	a.dropRecord(w, why)
}

// persist writes a workload's record; failures are logged (the record
// is rewritten at its next change).
func (a *Agent) persist(w *workload.Workload) {
	if a.state == nil {
		return
	}
	if err := a.state.Put(w); err != nil {
		a.stats.StateErrors.Add(1)
		a.log.Error("workload record not written; the workload is lost to an agent restart", zap.String("container", w.ContainerID), zap.Error(err))
	}
}

// unpersist removes a cgroup's record.
func (a *Agent) unpersist(cgroupID uint64) {
	if a.state == nil {
		return
	}
	if err := a.state.Remove(cgroupID); err != nil {
		a.log.Warn("workload record not removed", zap.Uint64("cgroup_id", cgroupID), zap.Error(err))
	}
}

// restoreRecord undoes a record written for a registration that failed:
// the cgroup's registered workload is written back, or the record goes.
func (a *Agent) restoreRecord(cgroupID uint64) {
	if w, ok := a.reg.ByCgroup(cgroupID); ok {
		a.persist(w)
		return
	}
	a.unpersist(cgroupID)
}
