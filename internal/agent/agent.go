// Package agent is the node agent's core: it registers workloads, picks
// their profile, writes the enforcer's maps and answers the API.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/apiserver"
	"github.com/ocigate/ocigate/internal/eventhub"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/proccache"
	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/internal/workloadstate"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/runtime/describe"
)

// Enforcer is the kernel side as the agent uses it.
type Enforcer interface {
	LoadProfile(id uint32, p *profiles.Profile) error
	UnloadProfile(id uint32) error
	SetWorkload(cgroupID uint64, profile uint32, mode profiles.Mode, disabled [profiles.NumPoints]uint32) error
	RemoveWorkload(cgroupID uint64) error
	Backends() []enforcer.PointBackend
	Counters() (enforcer.Counters, error)
}

// Config configures an Agent.
type Config struct {
	Enforcer Enforcer
	Catalog  *profiles.Catalog
	Resolver cgroupfilter.Resolver
	Logger   *zap.Logger
	// Events sizes the recent events and subscriber queues (zero: defaults).
	Events eventhub.Config
	// State keeps a record of every workload, so that an agent restarted
	// over pinned maps knows them again (nil: no records; nothing is
	// restored).
	State *workloadstate.Store
	// Describer, when set, fills in the image and name of a registration
	// that does not carry them.
	Describer Describer
	// ProcRoot is where process details are read ("": /proc).
	ProcRoot string
	// ProcessCache bounds the processes remembered (0: 65536), and
	// ExitGrace is how long an exited one stays (0: 30 s).
	ProcessCache int
	ExitGrace    time.Duration
	// SinkTypes are the event types written to the events file (none:
	// all); the API's followers choose their own.
	SinkTypes []string
	// ReaderNice is the nice value of RunEvents' thread (0: unchanged).
	ReaderNice int
	// TrustedAnnotations are the annotation keys the operator vouches
	// for: their values count as the container's identity, not as claims
	// of its spec (docs/trust.md). None by default.
	TrustedAnnotations []string
	// HookReports is the directory where hooks leave the refusals they
	// made while no agent answered ("": none are read).
	HookReports string
}

// Agent keeps the workload registry and the enforcer's maps in step.
type Agent struct {
	enf           Enforcer
	resolver      cgroupfilter.Resolver
	log           *zap.Logger
	reg           *workload.Registry
	profiles      *profileSet
	byID          sync.Map      // profile id -> *profiles.Profile, for events (read without a.mu)
	nextProfileID atomic.Uint32 // profile ids are never reused
	node          string
	startedAt     time.Time
	stats         *Stats
	hostNS        cgroupfilter.NamespaceIDs // for matchNamespaces host_ns
	hub           *eventhub.Hub             // recent events and API subscribers
	acts          userActs                  // what the agent does for policies' actions on events
	metrics       *metrics
	state         *workloadstate.Store
	retained      map[uint32]*retainedProfile // replaced or inherited profile ids still in use (a.mu)
	flushTimeout  time.Duration               // how long a stop waits for the events sink
	encodeWarn    rateLimited                 // events the event pipe could not encode (its goroutine alone)
	describer     Describer
	clock         bootClock
	execBackend   string            // the exec point's backend, for process events
	unavailable   map[string]string // points that do not enforce on this kernel -> why
	sinkTypes     typeSet           // what the events file gets
	readerNice    int               // RunEvents' thread's nice value; 0: unchanged
	trust         *trust            // what the operator vouches for; the agent's own events
	hookReports   string            // where hooks leave refusals made while no agent answered
	cgw           *cgroupWatch      // registered cgroups' removal, while RunCgroupWatch runs (a.mu)

	// Owned by the event reader (RunEvents), which alone uses them.
	procs      *proccache.Cache
	procfs     procFS
	pods       podCache
	containers containerCache

	podMeta atomic.Pointer[podTable] // ocigate-kube's pod table (SetPods)

	mu       sync.Mutex // serialises changes of registry + maps
	reloadMu sync.Mutex // one reload at a time
	recon    reconcileState
	recent   recentWorkloads // removed lately, for their last events
}

// New loads the catalog's profiles into the enforcer and returns a ready
// agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Catalog == nil {
		return nil, fmt.Errorf("agent needs a profile catalog")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	for _, t := range cfg.SinkTypes {
		if !events.KnownType(t) {
			return nil, fmt.Errorf("event type %q: want one of %s", t, strings.Join(events.Types, ", "))
		}
	}
	node, _ := os.Hostname()
	a := &Agent{
		enf: cfg.Enforcer, resolver: cfg.Resolver, log: cfg.Logger,
		reg: workload.NewRegistry(), node: node, startedAt: time.Now(), stats: &Stats{},
		hub: eventhub.New(cfg.Events), metrics: newMetrics(), describer: cfg.Describer, state: cfg.State,
		retained: map[uint32]*retainedProfile{}, flushTimeout: defaultFlushTimeout, clock: newBootClock(),
		procs: proccache.New(cfg.ProcessCache, cfg.ExitGrace), procfs: procFS{root: cfg.ProcRoot},
		sinkTypes: typeSet(cfg.SinkTypes), readerNice: cfg.ReaderNice, trust: newTrust(cfg.TrustedAnnotations), hookReports: cfg.HookReports,
	}
	// Exited processes are kept compact, their exec_id made again.
	a.procs.SetExecID(a.execID)
	backends := cfg.Enforcer.Backends()
	for _, b := range backends {
		if b.Point == profiles.PointExec.String() {
			a.execBackend = b.Backend
		}
	}
	a.unavailable = unavailablePoints(backends)
	if host, err := cfg.Resolver.Namespaces(1); err == nil {
		a.hostNS = host
	} else {
		a.log.Warn("host namespaces unknown; host_ns matches nothing", zap.Error(err))
	}
	var inherited enforcer.Inherited
	if in, ok := cfg.Enforcer.(Inheritor); ok {
		inherited = in.Inherited()
	}
	for _, id := range inherited.Profiles { // new ids never reuse pinned ones
		if id > a.nextProfileID.Load() {
			a.nextProfileID.Store(id)
		}
	}
	set, err := a.loadCatalog(cfg.Catalog)
	if err != nil {
		return nil, err
	}
	a.profiles = set
	// The per-packet points the profiles need attach before a workload
	// is moved onto them; those no profile needs detach once restore has
	// moved the workloads off the inherited rules.
	a.attachAtStart(set)
	a.restore(inherited)
	a.syncPoints()
	for _, p := range cfg.Catalog.Profiles() {
		a.log.Info("profile loaded", zap.String("profile", p.Name), zap.Uint32("id", set.byName[p.Name].id), zap.String("mode", string(p.Mode)))
	}
	for _, n := range cfg.Catalog.Notes() {
		a.log.Info("profiles", zap.String("note", n))
	}
	if needed, unneeded := a.unavailableByNeed(); len(needed) == 0 && len(unneeded) > 0 {
		a.log.Warn("enforcement "+a.Enforcement()+": a profile that needs them is refused", zap.Any("unavailable", a.unavailable))
	} else if len(needed) > 0 {
		a.log.Error("enforcement "+a.Enforcement()+": registrations whose profile needs these points are refused "+
			"(a fail-open profile's containers start unprotected)", zap.Any("unavailable", a.unavailable))
	}
	return a, nil
}

// profileByID returns a loaded (or just replaced) profile for events.
func (a *Agent) profileByID(id uint32) (*profiles.Profile, bool) {
	v, ok := a.byID.Load(id)
	if !ok {
		return nil, false
	}
	return v.(*profiles.Profile), true
}

// Registry exposes the workloads (read-only use).
func (a *Agent) Registry() *workload.Registry { return a.reg }

// Stats exposes the agent's counters.
func (a *Agent) Stats() *Stats { return a.stats }

// Handle answers one API request.
func (a *Agent) Handle(ctx context.Context, req *api.Request) (*api.Response, error) {
	switch req.Op {
	case api.OpRegister:
		w, err := a.register(ctx, req.Register)
		if err != nil {
			return nil, err
		}
		return &api.Response{Workload: wireWorkload(w)}, nil
	case api.OpUnregister:
		return &api.Response{}, a.unregister(ctx, req.Unregister.ContainerID)
	case api.OpStatus:
		st := a.Status()
		if req.Status != nil && req.Status.Summary {
			st.WorkloadsOmitted, st.Workloads = len(st.Workloads), nil
		} else {
			trimWorkloads(st, statusWorkloadBytes)
		}
		return &api.Response{Status: st}, nil
	case api.OpPods:
		a.SetPods(req.Pods)
		return &api.Response{}, nil
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}

// verifyIdentity checks the registration against the host: the cgroup
// is not the root cgroup, exists with that ID and, when a pid is given,
// the process lives in it.
func (a *Agent) verifyIdentity(r *api.Registration) error {
	if r.Identity.CgroupPath == "/" {
		// Every process not placed elsewhere lives there: the host's.
		return fmt.Errorf("container %q: its cgroup is the root cgroup, which holds the host's own processes; refused", r.ContainerID)
	}
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
func (a *Agent) Register(r *api.Registration) (*workload.Workload, error) {
	return a.register(context.Background(), r)
}

// register is Register for a request that ctx serves: its log line waits
// until the answer is written (apiserver.AfterAnswer), off the hook's
// path.
func (a *Agent) register(ctx context.Context, r *api.Registration) (*workload.Workload, error) {
	start := time.Now()
	w, err := a.registerAs(ctx, r, start, nil)
	if err != nil {
		a.stats.RegistrationErrors.Add(1)
		return nil, err
	}
	a.metrics.register.Observe(time.Since(start).Seconds())
	return w, nil
}

// adoption is how an adopted container's registration differs.
type adoption struct {
	info describe.Info // what the runtime's listing said
}

// errAlreadyRegistered: an adopted container the hook has registered.
var errAlreadyRegistered = errors.New("already registered")

func (a *Agent) registerAs(ctx context.Context, r *api.Registration, start time.Time, adopt *adoption) (*workload.Workload, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if err := a.verifyIdentity(r); err != nil {
		return nil, err
	}
	w := &workload.Workload{
		ContainerID: r.ContainerID, Runtime: r.Runtime, Bundle: r.Bundle, Pid: r.Pid, RuntimeAnnotation: r.RuntimeAnnotation,
		Annotations: r.Annotations, Identity: r.Identity.CgroupIdentity(), RegisteredAt: time.Now().UTC(), RequestedProfile: r.Profile,
	}
	if adopt != nil {
		w.Adopted = true
		a.identifyAs(w, adopt.info)
	} else {
		a.identify(w)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if adopt != nil {
		if _, ok := a.reg.Get(w.ContainerID); ok {
			return nil, errAlreadyRegistered
		}
		if _, ok := a.reg.ByCgroup(w.CgroupID); ok {
			return nil, errAlreadyRegistered
		}
	}
	c, err := a.choose(a.profiles, w, adopt != nil)
	var ce *profiles.ClaimError
	if errors.As(err, &ce) {
		a.reportClaim(w, &ce.Refusal, events.ClaimRefused)
	}
	if err != nil {
		return nil, err // fail-closed: no profile, or a claim refused
	}
	if c.ignored != nil {
		a.reportClaim(w, c.ignored, events.ClaimIgnored)
	}
	w.Profile, w.Mode, w.ProfileReason = c.lp.profile.Name, string(c.lp.profile.Mode), c.reason
	return a.enforceLocked(ctx, w, c.lp, start)
}

// policyError is a refusal once the profile is known: the hook honours
// the failure policy it carries (Agent.failurePolicy).
func (a *Agent) policyError(w *workload.Workload, p *profiles.Profile, err error) error {
	return &api.PolicyError{Err: err, FailurePolicy: a.failurePolicy(w, p)}
}

// enforceLocked puts a workload whose profile is chosen in force: its
// record, its map entry, then its registry entry; on error nothing of it
// is left. The caller holds a.mu. Its log line waits for the answer to
// the request that ctx serves.
func (a *Agent) enforceLocked(ctx context.Context, w *workload.Workload, lp loadedProfile, start time.Time) (*workload.Workload, error) {
	fail := func(err error) error { return a.policyError(w, lp.profile, err) }
	if err := a.checkAvailable(w.ContainerID, lp.profile); err != nil {
		a.stats.RegistrationsUnavailable.Add(1)
		a.log.Error("registration refused: its profile needs an enforcement point this kernel does not enforce",
			zap.String("container", w.ContainerID), zap.String("profile", w.Profile), zap.Bool("fail_open", lp.profile.FailOpen), zap.Error(err))
		return nil, fail(err)
	}
	if err := a.reg.CheckPut(w); err != nil {
		return nil, fail(err)
	}
	// The record goes first: a workload in the map that an agent restart
	// could not name again would be enforced until reboot.
	chosen := time.Now()
	if a.state != nil {
		if err := a.state.Put(w); err != nil {
			a.stats.StateErrors.Add(1)
			return nil, fail(fmt.Errorf("container %q: %w", w.ContainerID, err))
		}
	}
	recorded := time.Now()
	disabled := disabledSelectors(lp.profile, w.Namespaces, a.hostNS)
	if err := a.enf.SetWorkload(w.CgroupID, lp.id, lp.profile.Mode, disabled); err != nil {
		a.restoreRecord(w.CgroupID)
		return nil, fail(fmt.Errorf("container %q: %w", w.ContainerID, err))
	}
	old, err := a.reg.Put(w)
	if err != nil { // cannot happen after CheckPut under a.mu; undo anyway
		_ = a.enf.RemoveWorkload(w.CgroupID)
		a.restoreRecord(w.CgroupID)
		return nil, fail(err)
	}
	a.watchCgroup(w)
	if old != nil {
		a.release(old.ContainerID)
	}
	if old != nil && old.CgroupID != w.CgroupID {
		a.cgw.remove(old.CgroupID)
		if err := a.enf.RemoveWorkload(old.CgroupID); err != nil {
			a.log.Error("stale map entry of replaced registration", zap.String("container", w.ContainerID), zap.Error(err))
		}
		a.unpersist(old.CgroupID)
	}
	a.stats.Registrations.Add(1)
	now := time.Now()
	fields := []zap.Field{zap.String("container", w.ContainerID), zap.String("runtime", w.Runtime),
		zap.String("cgroup", w.CgroupPath), zap.Uint64("cgroup_id", w.CgroupID), zap.String("image", w.Image), zap.String("profile", w.Profile),
		zap.Bool("replaced", old != nil), zap.Bool("adopted", w.Adopted), zap.Duration("took", now.Sub(start)),
		// The steps' shares of took (scripts/bench.sh's breakdown).
		zap.Int64("verify_us", chosen.Sub(start).Microseconds()), zap.Int64("record_us", recorded.Sub(chosen).Microseconds()),
		zap.Int64("maps_us", now.Sub(recorded).Microseconds())}
	apiserver.AfterAnswer(ctx, func() {
		if st, ok := apiserver.StepsOf(ctx); ok { // the server's steps around took
			fields = append(fields, zap.Int64("start_us", st.Start.Microseconds()),
				zap.Int64("read_us", st.Read.Microseconds()), zap.Int64("answer_us", st.Answer.Microseconds()))
		}
		a.log.Info("workload registered", fields...)
	})
	return w, nil
}

// Unregister removes every map entry of a container. Unknown IDs are fine.
func (a *Agent) Unregister(containerID string) error {
	return a.unregister(context.Background(), containerID)
}

// unregister is Unregister for a request that ctx serves: its log line
// waits for the answer.
func (a *Agent) unregister(ctx context.Context, containerID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.reg.Get(containerID)
	if !ok {
		return nil
	}
	if err := a.dropLocked(w); err != nil {
		return err
	}
	a.stats.Unregistrations.Add(1)
	cg := w.CgroupID
	if apiserver.Serving(ctx) {
		apiserver.AfterAnswer(ctx, func() { a.forgetUnlessBack(cg) })
	} else {
		a.forget(cg)
	}
	apiserver.AfterAnswer(ctx, func() {
		a.log.Info("workload unregistered", zap.String("container", containerID), zap.Uint64("cgroup_id", cg))
	})
	return nil
}

// forgetUnlessBack is forget, which an unregistration leaves until its
// answer is written (the poststop hook waits for it), unless the cgroup
// was registered again meanwhile: the watch and the record are then
// that registration's. Neither is needed first: a record outliving its
// map entry is dropped by a restarted agent (restore), and a watch
// firing for a cgroup no workload has is ignored. It runs after the
// answer, without a.mu, which it takes.
func (a *Agent) forgetUnlessBack(cgroupID uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, back := a.reg.ByCgroup(cgroupID); !back {
		a.forget(cgroupID)
	}
}

// forget stops watching a removed workload's cgroup and removes its
// record. The caller holds a.mu.
func (a *Agent) forget(cgroupID uint64) {
	a.cgw.remove(cgroupID)
	a.unpersist(cgroupID)
}

// statusWorkloadBytes bounds the encoded workloads of a status answer,
// so that it stays within the protocol's message size however many
// workloads (with however many annotations) there are; the rest are
// counted in WorkloadsOmitted.
const statusWorkloadBytes = api.MaxMessageSize * 3 / 4

// trimWorkloads keeps the leading workloads whose encoding fits budget.
func trimWorkloads(st *api.Status, budget int) {
	used := 0
	for i, w := range st.Workloads {
		b, err := json.Marshal(w)
		if err == nil {
			used += len(b) + 1
		}
		if err != nil || used > budget {
			st.WorkloadsOmitted = len(st.Workloads) - i
			st.Workloads = st.Workloads[:i]
			return
		}
	}
}

// removeLocked deletes a workload's map entry, then its registry entry
// (keeping it among the recently removed, for late events), then its
// cgroup's watch and its record. The caller holds a.mu.
func (a *Agent) removeLocked(w *workload.Workload) error {
	if err := a.dropLocked(w); err != nil {
		return err
	}
	a.forget(w.CgroupID)
	return nil
}

// dropLocked is removeLocked but for forget. The caller holds a.mu.
func (a *Agent) dropLocked(w *workload.Workload) error {
	if err := a.enf.RemoveWorkload(w.CgroupID); err != nil {
		return fmt.Errorf("container %q: %w", w.ContainerID, err)
	}
	// Recent before the registry lets go: the event reader, which looks
	// in the registry and then in recent without a.mu, finds the
	// workload in one of them all along.
	a.recent.add(w, time.Now())
	a.reg.Remove(w.ContainerID)
	a.release(w.ContainerID)
	return nil
}

// Status reports backends, workloads and counters.
func (a *Agent) Status() *api.Status {
	st := &api.Status{Node: a.node, StartedAt: a.startedAt, Workloads: wireWorkloads(a.reg.List()), Counters: a.stats.Map()}
	subs := a.hub.Subscribers()
	st.Counters["events_dropped_subscribers"] = a.hub.Dropped()
	st.Counters["event_subscribers"] = uint64(len(subs))
	for _, s := range subs {
		st.Subscribers = append(st.Subscribers, api.Subscriber{ID: s.ID, Filter: s.Filter, Since: s.Since,
			Queued: s.Queued, Sent: s.Sent, Dropped: s.Dropped})
	}
	a.mu.Lock()
	_, unneeded := a.unavailableByNeed()
	a.mu.Unlock()
	for _, b := range a.enf.Backends() {
		why := a.unavailable[b.Point]
		st.Backends = append(st.Backends, api.Backend{Point: b.Point, Backend: b.Backend, Mechanism: b.Mechanism, Skipped: b.Skipped,
			Error: why, Unneeded: why != "" && slices.Contains(unneeded, b.Point), Detached: b.Detached})
		if b.Detached {
			st.Counters["enforcement_points_detached"]++
		}
		// The choice as a counter too (the metric is ocigate_enforcer_backend).
		st.Counters["enforcer_"+b.Point+"_"+b.Backend] = 1
	}
	st.Counters["enforcement_points_unavailable"] = uint64(len(a.unavailable))
	st.Counters["enforcement_points_detached"] += 0 // present when none is
	a.mu.Lock()
	for name := range a.profiles.byName {
		st.Profiles = append(st.Profiles, name)
	}
	a.mu.Unlock()
	sort.Strings(st.Profiles)
	a.selfCounters(st.Counters)
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
