// Package agent is the node agent's core: it registers workloads, picks
// their profile, writes the enforcer's maps and answers the API.
package agent

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/runtime/oci"
)

// Enforcer is the kernel side as the agent uses it.
type Enforcer interface {
	LoadProfile(id uint32, p *profiles.Profile) error
	SetWorkload(cgroupID uint64, profile uint32, mode profiles.Mode) error
	RemoveWorkload(cgroupID uint64) error
	Backends() []bpf.PointBackend
	Counters() (bpf.Counters, error)
}

// Config configures an Agent.
type Config struct {
	Enforcer Enforcer
	Profiles []*profiles.Profile // the first is the default
	Resolver cgroupfilter.Resolver
	Logger   *zap.Logger
}

type loadedProfile struct {
	id      uint32
	profile *profiles.Profile
}

// Agent keeps the workload registry and the enforcer's maps in step.
type Agent struct {
	enf       Enforcer
	resolver  cgroupfilter.Resolver
	log       *zap.Logger
	reg       *cgroupfilter.Registry
	profiles  map[string]loadedProfile
	byID      map[uint32]*profiles.Profile
	defName   string
	node      string
	startedAt time.Time
	stats     *Stats

	mu sync.Mutex // serialises changes of registry + maps
}

// New loads the profiles into the enforcer and returns a ready agent.
func New(cfg Config) (*Agent, error) {
	if len(cfg.Profiles) == 0 {
		return nil, fmt.Errorf("agent needs at least one profile")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	node, _ := os.Hostname()
	a := &Agent{
		enf: cfg.Enforcer, resolver: cfg.Resolver, log: cfg.Logger,
		reg: cgroupfilter.NewRegistry(), profiles: map[string]loadedProfile{},
		byID: map[uint32]*profiles.Profile{}, defName: cfg.Profiles[0].Name,
		node: node, startedAt: time.Now(), stats: &Stats{},
	}
	for i, p := range cfg.Profiles {
		if _, dup := a.profiles[p.Name]; dup {
			return nil, fmt.Errorf("profile %q defined twice", p.Name)
		}
		id := uint32(i + 1)
		if err := a.enf.LoadProfile(id, p); err != nil {
			return nil, fmt.Errorf("load profile %q: %w", p.Name, err)
		}
		a.profiles[p.Name] = loadedProfile{id: id, profile: p}
		a.byID[id] = p
		a.log.Info("profile loaded", zap.String("profile", p.Name), zap.Uint32("id", id), zap.String("mode", string(p.Mode)))
	}
	return a, nil
}

// Registry exposes the workloads (read-only use).
func (a *Agent) Registry() *cgroupfilter.Registry { return a.reg }

// Stats exposes the agent's counters.
func (a *Agent) Stats() *Stats { return a.stats }

// Handle answers one API request.
func (a *Agent) Handle(ctx context.Context, req *api.Request) (*api.Response, error) {
	switch req.Op {
	case api.OpRegister:
		w, err := a.Register(req.Register)
		if err != nil {
			return nil, err
		}
		return &api.Response{Workload: w}, nil
	case api.OpUnregister:
		return &api.Response{}, a.Unregister(req.Unregister.ContainerID)
	case api.OpStatus:
		return &api.Response{Status: a.Status()}, nil
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}

// profileFor picks the profile: the ocigate.io/profile annotation, else
// the default.
func (a *Agent) profileFor(r *api.Registration) (loadedProfile, error) {
	name, ok := r.Annotations[oci.AnnotationProfile]
	if !ok {
		return a.profiles[a.defName], nil
	}
	p, ok := a.profiles[name]
	if !ok {
		return loadedProfile{}, fmt.Errorf("container %q asks for profile %q (annotation %s), which is not loaded",
			r.ContainerID, name, oci.AnnotationProfile)
	}
	return p, nil
}

// verifyIdentity checks the registration against the host: the cgroup
// exists with that ID and, when a pid is given, the process lives in it.
func (a *Agent) verifyIdentity(r *api.Registration) error {
	id, err := a.resolver.CgroupID(r.Identity.CgroupPath)
	if err != nil {
		return fmt.Errorf("container %q: %w", r.ContainerID, err)
	}
	if id != r.Identity.CgroupID {
		return fmt.Errorf("container %q: cgroup %s has id %d, registration says %d",
			r.ContainerID, r.Identity.CgroupPath, id, r.Identity.CgroupID)
	}
	if r.Pid > 0 {
		p, err := a.resolver.CgroupPath(r.Pid)
		if err != nil {
			return fmt.Errorf("container %q: %w", r.ContainerID, err)
		}
		if p != r.Identity.CgroupPath {
			return fmt.Errorf("container %q: pid %d is in cgroup %s, registration says %s",
				r.ContainerID, r.Pid, p, r.Identity.CgroupPath)
		}
	}
	return nil
}

// Register enforces a profile on the container's cgroup. It returns only
// after the maps are written; on error nothing of it is left behind.
func (a *Agent) Register(r *api.Registration) (*cgroupfilter.Workload, error) {
	start := time.Now()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := a.verifyIdentity(r); err != nil {
		return nil, err
	}
	lp, err := a.profileFor(r)
	if err != nil {
		return nil, err
	}
	w := &cgroupfilter.Workload{
		ContainerID: r.ContainerID, Runtime: r.Runtime, Bundle: r.Bundle, Pid: r.Pid,
		Annotations: r.Annotations, Identity: r.Identity, Profile: lp.profile.Name,
		Mode: string(lp.profile.Mode), RegisteredAt: time.Now().UTC(),
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.reg.CheckPut(w); err != nil {
		return nil, err
	}
	if err := a.enf.SetWorkload(w.CgroupID, lp.id, lp.profile.Mode); err != nil {
		return nil, fmt.Errorf("container %q: %w", w.ContainerID, err)
	}
	old, err := a.reg.Put(w)
	if err != nil { // cannot happen after CheckPut under a.mu; undo anyway
		_ = a.enf.RemoveWorkload(w.CgroupID)
		return nil, err
	}
	if old != nil && old.CgroupID != w.CgroupID {
		if err := a.enf.RemoveWorkload(old.CgroupID); err != nil {
			a.log.Error("stale map entry of replaced registration", zap.String("container", w.ContainerID), zap.Error(err))
		}
	}
	a.stats.Registrations.Add(1)
	a.log.Info("workload registered", zap.String("container", w.ContainerID), zap.String("runtime", w.Runtime),
		zap.String("cgroup", w.CgroupPath), zap.Uint64("cgroup_id", w.CgroupID), zap.String("profile", w.Profile),
		zap.Bool("replaced", old != nil), zap.Duration("took", time.Since(start)))
	return w, nil
}

// Unregister removes every map entry of a container. Unknown IDs are fine.
func (a *Agent) Unregister(containerID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.reg.Get(containerID)
	if !ok {
		return nil
	}
	if err := a.enf.RemoveWorkload(w.CgroupID); err != nil {
		return fmt.Errorf("container %q: %w", containerID, err)
	}
	a.reg.Remove(containerID)
	a.stats.Unregistrations.Add(1)
	a.log.Info("workload unregistered", zap.String("container", containerID), zap.Uint64("cgroup_id", w.CgroupID))
	return nil
}

// Status reports backends, workloads and counters.
func (a *Agent) Status() *api.Status {
	st := &api.Status{Node: a.node, StartedAt: a.startedAt, Workloads: a.reg.List(), Counters: a.stats.Map()}
	for _, b := range a.enf.Backends() {
		st.Backends = append(st.Backends, api.Backend{Point: b.Point, Backend: b.Backend, Mechanism: b.Mechanism, Skipped: b.Skipped})
	}
	for name := range a.profiles {
		st.Profiles = append(st.Profiles, name)
	}
	sort.Strings(st.Profiles)
	if kc, err := a.enf.Counters(); err != nil {
		a.log.Warn("kernel counters unavailable", zap.Error(err))
	} else {
		st.Counters["kernel_events_lost"] = kc.EventsLost
		for pt, c := range kc.Points {
			st.Counters[pt+"_evaluated"] = c.Evaluated
			st.Counters[pt+"_posted"] = c.Posted
			st.Counters[pt+"_denied"] = c.Denied
			st.Counters[pt+"_killed"] = c.Killed
		}
	}
	return st
}
