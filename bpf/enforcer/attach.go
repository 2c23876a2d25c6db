package enforcer

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf"
)

// attachEnv is what verifying and attaching need: the parsed objects,
// the shared maps, the kernel's types, the cgroup root and whether BPF
// LSM is active.
type attachEnv struct {
	specs       map[string]*ebpf.CollectionSpec
	maps        map[string]*ebpf.Map
	kernelTypes *btf.Spec // decoded once for every program's CO-RE relocations; nil: per program
	cgroupRoot  string
	lsmActive   error                   // nil when bpf is an active LSM
	named       map[string]namedProgram // program name -> program, for stats
	pins        *pinner                 // nil: links are not pinned

	mu sync.Mutex // guards named
}

// verified is what verifying a point's candidates in order gave: the
// loaded programs of the first candidate the kernel took (cand; len of
// the plan's candidates when none did) and why those before it were
// skipped.
type verified struct {
	cand    int
	progs   []*ebpf.Program
	skipped []string
}

// verifyAll verifies every plan's programs, plans in parallel (as many
// at once as Go has processors: the kernel verifies each program on the
// calling thread).
func (env *attachEnv) verifyAll(plans []pointPlan, forced string) []verified {
	out := make([]verified, len(plans))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i] = env.verifyFrom(plans[i], 0, forced)
		}()
	}
	wg.Wait()
	return out
}

// verifyFrom loads the programs of plan's candidates, from index start
// on, until one candidate's programs all load.
func (env *attachEnv) verifyFrom(plan pointPlan, start int, forced string) verified {
	v := verified{cand: len(plan.candidates)}
	for i := start; i < len(plan.candidates); i++ {
		c := plan.candidates[i]
		if forced != BackendAuto && c.backend != forced && !plan.always {
			continue
		}
		if len(c.programs) == 0 {
			v.skipped = append(v.skipped, c.backend+": no hook for this point")
			continue
		}
		if c.backend == bpf.BackendLSM && env.lsmActive != nil {
			v.skipped = append(v.skipped, c.backend+": "+env.lsmActive.Error())
			continue
		}
		progs, err := env.loadCandidate(c)
		if err != nil {
			v.skipped = append(v.skipped, c.backend+": "+err.Error())
			continue
		}
		v.cand, v.progs = i, progs
		return v
	}
	return v
}

// loadCandidate loads every program of c, or none.
func (env *attachEnv) loadCandidate(c candidate) ([]*ebpf.Program, error) {
	var progs []*ebpf.Program
	for _, pr := range c.programs {
		p, err := env.load(env.specs[c.backend], pr.name)
		if err != nil {
			closePrograms(progs)
			return nil, fmt.Errorf("%s: %w", pr.mechanism, err)
		}
		progs = append(progs, p)
	}
	return progs, nil
}

func closePrograms(progs []*ebpf.Program) {
	for _, p := range progs {
		p.Close()
	}
}

// attachCandidate attaches c's loaded programs, all or none (the
// programs are closed when one fails).
func (env *attachEnv) attachCandidate(c candidate, progs []*ebpf.Program) ([]link.Link, error) {
	var links []link.Link
	for i, pr := range c.programs {
		l, err := env.attachLink(pr, progs[i])
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			closePrograms(progs)
			return nil, fmt.Errorf("attach %s: %w", pr.mechanism, err)
		}
		links = append(links, l)
	}
	env.mu.Lock()
	for i, pr := range c.programs {
		env.named[pr.name] = namedProgram{pr.mechanism, progs[i]}
	}
	env.mu.Unlock()
	return links, nil
}

// load loads one program of spec against the shared maps.
func (env *attachEnv) load(spec *ebpf.CollectionSpec, name string) (*ebpf.Program, error) {
	ps, ok := spec.Programs[name]
	if !ok {
		return nil, fmt.Errorf("program %s is not in the object", name)
	}
	cs := &ebpf.CollectionSpec{Maps: spec.Maps, Programs: map[string]*ebpf.ProgramSpec{name: ps.Copy()},
		Types: spec.Types, ByteOrder: spec.ByteOrder}
	coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{MapReplacements: env.replacements(spec),
		Programs: ebpf.ProgramOptions{KernelTypes: env.kernelTypes}})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("verifier: %w", ve)
		}
		if errors.Is(err, unix.EPERM) {
			return nil, errors.New("the kernel refuses this program type (EPERM)")
		}
		return nil, err
	}
	defer coll.Close()
	return coll.DetachProgram(name), nil
}

// replacements are the shared maps among spec's: every program of
// either object is loaded against the same ones. (An object's own maps,
// .bss, are made per program.)
func (env *attachEnv) replacements(spec *ebpf.CollectionSpec) map[string]*ebpf.Map {
	repl := map[string]*ebpf.Map{}
	for n := range spec.Maps {
		if m, ok := env.maps[n]; ok {
			repl[n] = m
		}
	}
	return repl
}

// attachLink attaches pr's program, through the pinner when pinning.
func (env *attachEnv) attachLink(pr program, p *ebpf.Program) (link.Link, error) {
	if env.pins == nil {
		return pr.attach(p, env)
	}
	return env.pins.attach(env, pr, p)
}

// attachPoint attaches the verified candidate of a point, or, when that
// fails, the next candidates that verify and attach. A point where none
// does is unavailable: its Error says why, and the agent goes on with
// the others.
func (e *Enforcer) attachPoint(env *attachEnv, plan pointPlan, v verified, forced string) PointBackend {
	pb := PointBackend{Point: plan.point, Skipped: v.skipped}
	for v.cand < len(plan.candidates) {
		c := plan.candidates[v.cand]
		links, err := env.attachCandidate(c, v.progs)
		if err == nil {
			e.progs = append(e.progs, v.progs...)
			e.links = append(e.links, links...)
			pb.Backend, pb.Mechanism = c.backend, c.mechanism()
			return pb
		}
		pb.Skipped = append(pb.Skipped, c.backend+": "+err.Error())
		v = env.verifyFrom(plan, v.cand+1, forced)
		pb.Skipped = append(pb.Skipped, v.skipped...)
	}
	pb.Backend = BackendNone
	switch {
	case forced != BackendAuto && !plan.has(forced) && !plan.always:
		pb.Mechanism = forced + " has no hook for this point"
	case forced == BackendAuto && plan.optional():
		pb.Mechanism = "no backend available"
	default:
		pb.Mechanism = "unavailable"
		pb.Error = "no backend could attach: " + strings.Join(pb.Skipped, "; ")
	}
	return pb
}
