// Package enforcer loads ocigate's BPF objects and keeps them running:
// it picks a backend per enforcement point, verifies the programs in
// parallel and attaches them, pins maps and links and takes over what an
// earlier agent pinned, and reports backends, counters, program stats
// and map use. It owns the maps and is the agent's one handle on the
// kernel side.
package enforcer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"go.uber.org/zap"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/bpf/rulemaps"
)

// BackendAuto asks Load for the best backend per point
// (Options.Enforcer); BackendNone is the backend of a point that none
// carries (PointBackend).
const (
	BackendAuto = "auto"
	BackendNone = "none"
)

// Options configures Load.
type Options struct {
	// CgroupRoot is the cgroup v2 mount; the cgroup programs attach there
	// and scope themselves to registered workloads.
	CgroupRoot string
	// Enforcer forces one backend for every point ("" or "auto": the best
	// available per point, LSM > fmod_ret > fallback).
	Enforcer string
	// LSMList is the file listing active LSMs (default /sys/kernel/security/lsm).
	LSMList string
	// PinDir, on a bpf file system, keeps the maps and links pinned so
	// that enforcement outlives the agent, and takes over what an earlier
	// agent pinned there (pin.go). Empty: nothing is pinned, and Close
	// detaches everything.
	PinDir string
	Logger *zap.Logger
}

// Enforcer owns the loaded programs, their links and the shared maps.
// Profiles and workloads go into the maps through rulemaps, records come
// out through record.
type Enforcer struct {
	maps     bpf.FallbackMaps
	progs    []*ebpf.Program
	links    []link.Link
	backends []PointBackend
	log      *zap.Logger

	named map[string]namedProgram // program name -> program, for stats
	rules *rulemaps.Writer        // writes profiles and workloads into the maps

	pins      *pinner   // during Load, when pinning
	pinState  *PinState // what Load did with the pin directory
	inherited Inherited // what the pinned maps held

	demand demandSet // the per-packet points, attached while needed (ondemand.go)
}

// PointBackend says how an enforcement point is carried out and, for the
// backends not chosen, why.
type PointBackend struct {
	Point     string   `json:"point"`
	Backend   string   `json:"backend"`
	Mechanism string   `json:"mechanism"`
	Skipped   []string `json:"skipped,omitempty"`
	// Error says why no backend could attach: the point does not
	// enforce on this kernel ("" when it does, or needs no backend).
	Error string `json:"error,omitempty"`
	// Detached: a per-packet point whose programs are loaded but not
	// attached, because no loaded profile needs it (AttachPoint
	// attaches it again).
	Detached bool `json:"detached,omitempty"`
}

// Load raises the memlock limit, creates the maps, and attaches for each
// enforcement point the first backend that loads and attaches. A point
// that no backend can carry is left unavailable (its PointBackend.Error
// says why); Load fails only when no point can enforce at all, and then
// undoes everything. With opts.PinDir, a Load that finds the programs
// of these same objects pinned takes them over without loading anything.
func Load(opts Options) (_ *Enforcer, err error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load BPF: raise memlock limit: %w", err)
	}
	objs, err := parseObjects()
	if err != nil {
		return nil, fmt.Errorf("load BPF: %w", err)
	}
	e := &Enforcer{log: opts.Logger, named: map[string]namedProgram{},
		demand: demandSet{points: map[string]*demandPoint{}, pinDir: opts.PinDir, cgroupRoot: opts.CgroupRoot}}
	if err := e.loadMaps(objs.fallback, opts); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	want := objs.record(opts)
	if e.pins != nil && e.takeOver(want) {
		if err := e.markTrackedSockets(); err != nil {
			return nil, err
		}
		return e, nil
	}
	env := &attachEnv{
		pins:       e.pins,
		specs:      backendSpecs(objs.fallback, objs.security),
		maps:       bpf.MapsByName(&e.maps),
		cgroupRoot: opts.CgroupRoot,
		lsmActive:  lsmActive(opts.LSMList),
		named:      e.named,
	}
	if env.kernelTypes, err = btf.LoadKernelSpec(); err != nil {
		e.log.Warn("kernel BTF not decoded once; each program decodes it", zap.Error(err))
	}
	e.attachPlans(env, opts.Enforcer)
	if err := e.enforcesSomething(); err != nil {
		return nil, err
	}
	if err := e.markTrackedSockets(); err != nil {
		return nil, err
	}
	e.commitPins(want)
	return e, nil
}

// check fills in the defaults and refuses what cannot work.
func (opts *Options) check() error {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Enforcer == "" {
		opts.Enforcer = BackendAuto
	}
	switch opts.Enforcer {
	case BackendAuto, bpf.BackendLSM, bpf.BackendFmodRet, bpf.BackendFallback:
	default:
		return fmt.Errorf("enforcer %q: want auto, lsm, fmod_ret or fallback", opts.Enforcer)
	}
	if opts.LSMList == "" {
		opts.LSMList = "/sys/kernel/security/lsm"
	}
	if opts.CgroupRoot == "" {
		return errors.New("load BPF: no cgroup v2 root given")
	}
	if _, err := os.Stat(opts.CgroupRoot); err != nil {
		return fmt.Errorf("load BPF: cgroup v2 root: %w", err)
	}
	return nil
}

// attachPlans verifies every point's programs in parallel, then attaches
// point by point in the plans' order: tracking first, so that processes
// are known before anything decides on their binaries.
func (e *Enforcer) attachPlans(env *attachEnv, forced string) {
	plans := append([]pointPlan{trackingPlan, tcpSendPlan}, pointPlans...)
	ver := env.verifyAll(plans, forced)
	tcpSend, tcpUsed := ver[1], false
	for i, plan := range plans {
		if i == 1 {
			continue // with the fallback's sendmsg, below
		}
		nl, np := len(e.links), len(e.progs)
		pb := e.attachPoint(env, plan, ver[i], forced)
		if plan.onDemand {
			e.keepOnDemand(plan, pb, nl, np)
		}
		if pb.Point == "sendmsg" && pb.Backend == bpf.BackendFallback {
			e.addTCPSend(env, &pb, tcpSend)
			tcpUsed = true
		}
		e.backends = append(e.backends, pb)
		logPoint(e.log, pb)
	}
	if !tcpUsed {
		closePrograms(tcpSend.progs)
	}
}

func logPoint(log *zap.Logger, pb PointBackend) {
	if pb.Error != "" {
		log.Error("enforcement point unavailable: it does not enforce on this kernel", zap.String("point", pb.Point),
			zap.String("error", pb.Error))
		return
	}
	log.Info("enforcement point attached", zap.String("point", pb.Point), zap.String("backend", pb.Backend),
		zap.String("mechanism", pb.Mechanism), zap.Strings("skipped", pb.Skipped))
}

// addTCPSend attaches the verified tcp_send program to the fallback's
// sendmsg point. Without it (kernels before 6.3), TCP sends are not
// seen; the point says so.
func (e *Enforcer) addTCPSend(env *attachEnv, pb *PointBackend, v verified) {
	tcp := e.attachPoint(env, tcpSendPlan, v, BackendAuto)
	if tcp.Error != "" {
		pb.Skipped = append(pb.Skipped, "TCP sends: "+tcp.Error)
		e.log.Warn("TCP sends are not seen on this kernel (sock_send_length needs 6.3+)", zap.String("error", tcp.Error))
		return
	}
	pb.Mechanism += "+" + tcp.Mechanism + "(TCP, reports)"
}

// ErrNothingEnforces is the error of a Load where no enforcement point
// can attach on this kernel.
// Load's error wraps it, with each point's reason.
var ErrNothingEnforces = errors.New("no enforcement point can attach on this kernel")

// enforcesSomething fails when no point can enforce: then the agent has
// nothing to offer and must not pretend.
func (e *Enforcer) enforcesSomething() error {
	var why []string
	for _, pb := range e.backends {
		if pb.Error == "" && pb.Backend != BackendNone && pb.Point != PointTracking && pb.Point != "close" {
			return nil
		}
		if pb.Error != "" {
			why = append(why, pb.Point+": "+pb.Error)
		}
	}
	return fmt.Errorf("load BPF: %w: %s", ErrNothingEnforces, strings.Join(why, "; "))
}

// Unavailable lists the points that do not enforce on this kernel, by
// name, with the reason.
func (e *Enforcer) Unavailable() map[string]string { return Unavailable(e.backends) }

// Unavailable lists the points of backends that do not enforce, by name,
// with the reason.
func Unavailable(backends []PointBackend) map[string]string {
	out := map[string]string{}
	for _, pb := range backends {
		if pb.Error != "" {
			out[pb.Point] = pb.Error
		}
	}
	return out
}

// lsmActive reports whether BPF LSM programs run: `bpf` must be listed.
func lsmActive(list string) error {
	b, err := os.ReadFile(list)
	if err != nil {
		return fmt.Errorf("cannot read active LSMs: %w", err)
	}
	for _, name := range strings.Split(strings.TrimSpace(string(b)), ",") {
		if name == "bpf" {
			return nil
		}
	}
	return fmt.Errorf("bpf is not in %s (%s); boot with lsm=...,bpf", list, strings.TrimSpace(string(b)))
}

// Backends says how each enforcement point is carried out, and which
// on-demand points are detached now.
func (e *Enforcer) Backends() []PointBackend {
	out := append([]PointBackend(nil), e.backends...)
	for i := range out {
		out[i].Detached = !e.PointAttached(out[i].Point)
	}
	return out
}

// Close detaches every program and frees the maps, except what is
// pinned (Options.PinDir): that stays until RemovePins.
func (e *Enforcer) Close() error {
	var errs []error
	for i := len(e.links) - 1; i >= 0; i-- {
		errs = append(errs, e.links[i].Close())
	}
	e.links = nil
	for _, p := range e.progs {
		errs = append(errs, p.Close())
	}
	e.progs = nil
	errs = append(errs, e.demand.close())
	errs = append(errs, e.maps.Close())
	errs = append(errs, e.releasePins())
	return errors.Join(errs...)
}

// backendSpecs names the object whose programs each backend loads: the
// trampoline backends (LSM, fmod_ret, fentry) the security object's.
func backendSpecs(fallback, security *ebpf.CollectionSpec) map[string]*ebpf.CollectionSpec {
	return map[string]*ebpf.CollectionSpec{bpf.BackendFallback: fallback, bpf.BackendTracepoint: fallback,
		bpf.BackendLSM: security, bpf.BackendFmodRet: security, bpf.BackendFentry: security}
}
