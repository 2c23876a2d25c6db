package bpf

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"go.uber.org/zap"
)

// Backend names, in order of preference.
const (
	BackendLSM      = "lsm"
	BackendFmodRet  = "fmod_ret"
	BackendFallback = "fallback"
	BackendAuto     = "auto"
	BackendNone     = "none"
	// BackendTracepoint: points that only report or kill, the same on
	// every kernel (dup).
	BackendTracepoint = "tracepoint"
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
type Enforcer struct {
	maps     fallbackMaps
	progs    []*ebpf.Program
	links    []link.Link
	backends []PointBackend
	log      *zap.Logger

	mu      sync.Mutex // serialises profile writes
	nextSet uint32
	ports   portAllocator
	sets    map[uint32]*setWriter // per profile id: what its rules use
	named   map[string]*ebpf.Program
	track   map[uint32]uint32 // profile id -> workload flags it needs (TrackSock, relay)

	pins      *pinner   // during Load, when pinning
	pinState  *PinState // what Load did with the pin directory
	inherited Inherited // what the pinned maps held
}

// PointBackend says how an enforcement point is carried out and, for the
// backends not chosen, why.
type PointBackend struct {
	Point     string   `json:"point"`
	Backend   string   `json:"backend"`
	Mechanism string   `json:"mechanism"`
	Skipped   []string `json:"skipped,omitempty"`
}

// Load raises the memlock limit, creates the maps, and attaches for each
// enforcement point the first backend that loads and attaches. Everything
// is undone when a step fails.
func Load(opts Options) (_ *Enforcer, err error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Enforcer == "" {
		opts.Enforcer = BackendAuto
	}
	switch opts.Enforcer {
	case BackendAuto, BackendLSM, BackendFmodRet, BackendFallback:
	default:
		return nil, fmt.Errorf("enforcer %q: want auto, lsm, fmod_ret or fallback", opts.Enforcer)
	}
	if opts.LSMList == "" {
		opts.LSMList = "/sys/kernel/security/lsm"
	}
	if opts.CgroupRoot == "" {
		return nil, errors.New("load BPF: no cgroup v2 root given")
	}
	if _, err := os.Stat(opts.CgroupRoot); err != nil {
		return nil, fmt.Errorf("load BPF: cgroup v2 root: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load BPF: raise memlock limit: %w", err)
	}
	fb, err := loadFallback()
	if err != nil {
		return nil, fmt.Errorf("load BPF: fallback object: %w", err)
	}
	sec, err := loadSecurity()
	if err != nil {
		return nil, fmt.Errorf("load BPF: security object: %w", err)
	}
	e := &Enforcer{log: opts.Logger}
	if err := e.loadMaps(fb, opts); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	env := &attachEnv{
		pins:       e.pins,
		specs:      map[string]*ebpf.CollectionSpec{BackendFallback: fb, BackendTracepoint: fb, BackendLSM: sec, BackendFmodRet: sec},
		maps:       sharedMaps(&e.maps),
		cgroupRoot: opts.CgroupRoot,
		lsmActive:  lsmActive(opts.LSMList),
		named:      map[string]*ebpf.Program{},
	}
	e.named = env.named
	if err := e.attachTracking(env); err != nil {
		return nil, err
	}
	for _, pt := range pointPlans {
		pb, err := e.attachPoint(env, pt, opts.Enforcer)
		if err != nil {
			return nil, err
		}
		if pb.Point == "sendmsg" && pb.Backend == BackendFallback {
			e.attachTCPSend(env, &pb)
		}
		e.backends = append(e.backends, pb)
		opts.Logger.Info("enforcement point attached", zap.String("point", pb.Point),
			zap.String("backend", pb.Backend), zap.String("mechanism", pb.Mechanism), zap.Strings("skipped", pb.Skipped))
	}
	e.commitPins()
	return e, nil
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

// attachPoint tries the point's backends in order and keeps the first that
// attaches completely.
func (e *Enforcer) attachPoint(env *attachEnv, pt pointPlan, forced string) (PointBackend, error) {
	pb := PointBackend{Point: pt.point}
	for _, c := range pt.candidates {
		if forced != BackendAuto && c.backend != forced && !pt.always {
			continue
		}
		if len(c.programs) == 0 {
			pb.Skipped = append(pb.Skipped, c.backend+": no hook for this point")
			continue
		}
		progs, links, err := env.attach(c)
		if err != nil {
			pb.Skipped = append(pb.Skipped, c.backend+": "+err.Error())
			continue
		}
		e.progs = append(e.progs, progs...)
		e.links = append(e.links, links...)
		pb.Backend, pb.Mechanism = c.backend, c.mechanism()
		return pb, nil
	}
	if forced != BackendAuto && !pt.has(forced) {
		pb.Backend, pb.Mechanism = BackendNone, forced+" has no hook for this point"
		return pb, nil
	}
	if forced == BackendAuto && pt.optional() {
		pb.Backend, pb.Mechanism = BackendNone, "no backend available"
		return pb, nil
	}
	return pb, fmt.Errorf("enforcement point %s: no backend could attach: %s", pt.point, strings.Join(pb.Skipped, "; "))
}

// Backends says how each enforcement point is carried out.
func (e *Enforcer) Backends() []PointBackend {
	return append([]PointBackend(nil), e.backends...)
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
	errs = append(errs, e.maps.Close())
	errs = append(errs, e.releasePins())
	return errors.Join(errs...)
}

// attachTCPSend adds TCP sends where the fallback's cgroup send hooks see
// only UDP: the sock_send_length tracepoint (6.3+), which reports after
// the send. Without it, TCP sends are not seen; the point says so.
func (e *Enforcer) attachTCPSend(env *attachEnv, pb *PointBackend) {
	c := candidate{BackendTracepoint, []program{rawTracepointProgram("tcp_send", "sock_send_length")}}
	progs, links, err := env.attach(c)
	if err != nil {
		pb.Skipped = append(pb.Skipped, "TCP sends: "+err.Error())
		e.log.Warn("TCP sends are not seen on this kernel (sock_send_length needs 6.3+)", zap.Error(err))
		return
	}
	e.progs = append(e.progs, progs...)
	e.links = append(e.links, links...)
	pb.Mechanism += "+" + c.mechanism() + "(TCP, reports)"
}

// sharedMaps names every map of the fallback object, as its ebpf tag does:
// each program is loaded against these, so that all programs of every
// backend share one copy of each map.
func sharedMaps(m *fallbackMaps) map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		if name := v.Type().Field(i).Tag.Get("ebpf"); name != "" {
			out[name] = v.Field(i).Interface().(*ebpf.Map)
		}
	}
	return out
}
