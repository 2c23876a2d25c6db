package workload

import (
	"fmt"
	"sort"
	"sync"
)

// Registry is the set of registered workloads, by container ID and by
// cgroup ID. It holds no policy; callers decide what a workload gets.
type Registry struct {
	mu       sync.RWMutex
	byID     map[string]*Workload
	byCgroup map[uint64]string
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byID: map[string]*Workload{}, byCgroup: map[uint64]string{}}
}

// CheckPut reports whether w could be stored: a cgroup belongs to one
// container at a time. A container ID that is present is replaced.
func (r *Registry) CheckPut(w *Workload) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.checkPut(w)
}

// checkPut is CheckPut for a caller that holds r.mu.
func (r *Registry) checkPut(w *Workload) error {
	if w.ContainerID == "" {
		return fmt.Errorf("workload has no container id")
	}
	if w.CgroupID == 0 {
		return fmt.Errorf("workload %q has no cgroup id", w.ContainerID)
	}
	if owner, ok := r.byCgroup[w.CgroupID]; ok && owner != w.ContainerID {
		return fmt.Errorf("cgroup %d (%s) is already registered by container %q", w.CgroupID, w.CgroupPath, owner)
	}
	return nil
}

// Put stores w, replacing an entry with the same container ID, and
// returns the replaced entry.
func (r *Registry) Put(w *Workload) (*Workload, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkPut(w); err != nil {
		return nil, err
	}
	old := r.byID[w.ContainerID]
	if old != nil {
		delete(r.byCgroup, old.CgroupID)
	}
	r.byID[w.ContainerID] = w
	r.byCgroup[w.CgroupID] = w.ContainerID
	return old, nil
}

// Remove deletes a container's entry and returns it.
func (r *Registry) Remove(containerID string) (*Workload, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.byID[containerID]
	if !ok {
		return nil, false
	}
	delete(r.byID, containerID)
	if r.byCgroup[w.CgroupID] == containerID {
		delete(r.byCgroup, w.CgroupID)
	}
	return w, true
}

// Get returns a container's entry.
func (r *Registry) Get(containerID string) (*Workload, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	w, ok := r.byID[containerID]
	return w, ok
}

// ByCgroup returns the workload registered on a cgroup.
func (r *Registry) ByCgroup(cgroupID uint64) (*Workload, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.byCgroup[cgroupID]
	if !ok {
		return nil, false
	}
	return r.byID[id], true
}

// List returns the workloads ordered by container ID.
func (r *Registry) List() []*Workload {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Workload, 0, len(r.byID))
	for _, w := range r.byID {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerID < out[j].ContainerID })
	return out
}

// Len is the number of registered workloads.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byID)
}

// SetProfile records a workload's new profile (and why) after a reload,
// and returns the new entry. The entry is replaced, not changed in place:
// readers hold the old one safely.
func (r *Registry) SetProfile(containerID, profile, mode, reason string) (*Workload, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.byID[containerID]
	if !ok {
		return nil, false
	}
	c := *w
	c.Profile, c.Mode, c.ProfileReason = profile, mode, reason
	r.byID[containerID] = &c
	return &c, true
}
