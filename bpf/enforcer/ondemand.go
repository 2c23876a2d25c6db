package enforcer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"go.uber.org/zap"
)

// The per-packet points (receive, xmit, drop: pointPlan.onDemand) run for
// every packet of the host, a workload's or not, and each run costs a
// socket read and a workload lookup. They are attached only while a
// loaded profile needs them: Load attaches them as every point (so that
// the backend is chosen, and a pinned link is taken over without a
// gap), and the agent then detaches those no profile needs
// (DetachPoint) and attaches them again when one does (AttachPoint).
//
// A detached point's programs stay loaded. When pinning, each is pinned
// as DIR/progs/PROG in place of its link DIR/links/PROG, so that an
// agent restarted over the same objects takes it over, detached, without
// loading anything (takeOverDemand).

// demandPoint is one on-demand point whose backend loaded: its
// candidate's programs, and their links while attached.
type demandPoint struct {
	cand    candidate
	progs   []*ebpf.Program
	links   []link.Link   // nil while detached
	closing chan struct{} // closed once the links of the last detach are closed
}

// detaching says whether the links of dp's last detach are still being
// closed (its programs may still run). d.mu is held.
func (dp *demandPoint) detaching() bool {
	if dp.closing == nil {
		return false
	}
	select {
	case <-dp.closing:
		dp.closing = nil
		return false
	default:
		return true
	}
}

// settle waits until the links of dp's last detach are closed. d.mu is
// held; the closing does not take it.
func (dp *demandPoint) settle() {
	if dp.closing != nil {
		<-dp.closing
		dp.closing = nil
	}
}

// demandSet holds the on-demand points of an Enforcer.
type demandSet struct {
	mu         sync.Mutex
	points     map[string]*demandPoint
	pinDir     string // "" when not pinning
	cgroupRoot string
}

// keepOnDemand moves the links and programs attachPoint appended for an
// on-demand point (from index nl of e.links and np of e.progs) into
// e.demand.
func (e *Enforcer) keepOnDemand(plan pointPlan, pb PointBackend, nl, np int) {
	cand, ok := plan.candidate(pb.Backend)
	if pb.Error != "" || !ok || len(e.links)-nl != len(cand.programs) {
		return
	}
	e.demand.points[plan.point] = &demandPoint{cand: cand,
		progs: slices.Clone(e.progs[np:]), links: slices.Clone(e.links[nl:])}
	e.links, e.progs = e.links[:nl], e.progs[:np]
}

// OnDemandPoints names the points that attach only while a loaded
// profile needs them (those whose backend loaded), sorted.
func (e *Enforcer) OnDemandPoints() []string {
	e.demand.mu.Lock()
	defer e.demand.mu.Unlock()
	out := make([]string, 0, len(e.demand.points))
	for pt := range e.demand.points {
		out = append(out, pt)
	}
	slices.Sort(out)
	return out
}

// PointAttached says whether an on-demand point is attached now (any
// other point: true).
func (e *Enforcer) PointAttached(point string) bool {
	e.demand.mu.Lock()
	defer e.demand.mu.Unlock()
	dp, ok := e.demand.points[point]
	return !ok || dp.links != nil || dp.detaching()
}

// AttachPoint attaches an on-demand point's programs, all or none, and
// pins their links when pinning. Attaching an attached point, or a
// point that is not on demand, does nothing.
func (e *Enforcer) AttachPoint(point string) error {
	d := &e.demand
	d.mu.Lock()
	defer d.mu.Unlock()
	dp, ok := d.points[point]
	if !ok {
		return nil
	}
	dp.settle() // never the same programs attached twice
	if dp.links != nil {
		return nil
	}
	env := &attachEnv{cgroupRoot: d.cgroupRoot}
	var links []link.Link
	for i, pr := range dp.cand.programs {
		l, err := pr.attach(dp.progs[i], env)
		if err == nil && d.pinDir != "" {
			if err = pinOver(l, d.linkPath(pr.name)); err != nil {
				l.Close()
			}
		}
		if err != nil {
			d.closeLinks(dp.cand.programs[:len(links)], links)
			return fmt.Errorf("attach point %s (%s): %w", point, pr.mechanism, err)
		}
		links = append(links, l)
	}
	dp.links = links
	if d.pinDir != "" {
		for _, pr := range dp.cand.programs {
			if err := removeIfExists(d.progPath(pr.name)); err != nil { // the next Load removes it
				e.log.Warn("point attached, but its program's pin stays", zap.String("point", point), zap.Error(err))
			}
		}
	}
	return nil
}

// DetachPoint detaches an on-demand point's programs, which stay loaded
// (and, when pinning, pinned as programs for a restarted agent); their
// links close in the background (settleDetaches waits for them).
// Detaching a detached point, or a point that is not on demand, does
// nothing.
func (e *Enforcer) DetachPoint(point string) error {
	d := &e.demand
	d.mu.Lock()
	defer d.mu.Unlock()
	dp, ok := d.points[point]
	if !ok || dp.links == nil {
		return nil
	}
	var errs []error
	if d.pinDir != "" {
		for i, pr := range dp.cand.programs {
			if err := pinProgram(dp.progs[i], d.progPath(pr.name)); err != nil {
				errs = append(errs, fmt.Errorf("point %s: %w", point, err))
			}
		}
	}
	links := dp.links
	errs = append(errs, d.unpinLinks(dp.cand.programs[:len(links)]))
	dp.links = nil
	// A close waits for the kernel (a tracepoint's unregistering waits out
	// an RCU grace period: 45-80 ms here, 170 ms for the three points at
	// start-up), so the links close behind the caller, which is the
	// agent serving registrations. Until they have, PointAttached says
	// attached, and AttachPoint waits for them.
	done := make(chan struct{})
	dp.closing = done
	go func() {
		defer close(done)
		if err := closeAll(links); err != nil {
			e.log.Warn("a detached point's links did not close cleanly", zap.String("point", point), zap.Error(err))
		}
	}()
	return errors.Join(errs...)
}

// settleDetaches waits until the links of every detach are closed.
func (e *Enforcer) settleDetaches() {
	e.demand.mu.Lock()
	defer e.demand.mu.Unlock()
	for _, dp := range e.demand.points {
		dp.settle()
	}
}

// closeLinks unpins (when pinning) and closes links, those of progs:
// they detach.
func (d *demandSet) closeLinks(progs []program, links []link.Link) error {
	return errors.Join(d.unpinLinks(progs[:len(links)]), closeAll(links))
}

// unpinLinks removes the link pins of progs, when pinning.
func (d *demandSet) unpinLinks(progs []program) error {
	if d.pinDir == "" {
		return nil
	}
	var errs []error
	for _, pr := range progs {
		errs = append(errs, removeIfExists(d.linkPath(pr.name)))
	}
	return errors.Join(errs...)
}

// closeAll closes links side by side and waits for every close.
func closeAll(links []link.Link) error {
	errs := make([]error, len(links))
	var wg sync.WaitGroup
	for i, l := range links {
		wg.Go(func() { errs[i] = l.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (d *demandSet) linkPath(name string) string { return filepath.Join(d.pinDir, "links", name) }
func (d *demandSet) progPath(name string) string { return filepath.Join(d.pinDir, "progs", name) }

// pinProgram pins p at path, atomically replacing what is pinned there.
// A clone is pinned: the library remembers where a program was pinned
// and would skip pinning the same object twice.
func pinProgram(p *ebpf.Program, path string) error {
	c, err := p.Clone()
	if err != nil {
		return fmt.Errorf("pin program %s: %w", path, err)
	}
	defer c.Close()
	tmp := path + "-next"
	if err := removeIfExists(tmp); err != nil {
		return fmt.Errorf("remove leftover %s: %w", tmp, err)
	}
	if err := c.Pin(tmp); err != nil {
		return fmt.Errorf("pin program %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("rename %s over %s: %w", tmp, path, err)
	}
	return nil
}

// attachedLinks lists the attached on-demand points' links.
func (d *demandSet) attachedLinks() []link.Link {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []link.Link
	for _, dp := range d.points {
		out = append(out, dp.links...)
	}
	return out
}

// detachedPrograms names the programs of detached points.
func (d *demandSet) detachedPrograms() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]bool{}
	for _, dp := range d.points {
		if dp.links == nil {
			for _, pr := range dp.cand.programs {
				out[pr.name] = true
			}
		}
	}
	return out
}

// attachedProgram: p is the program of an attached on-demand point.
func (d *demandSet) attachedProgram(p *ebpf.Program) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, dp := range d.points {
		if dp.links != nil && slices.Contains(dp.progs, p) {
			return true
		}
	}
	return false
}

// close detaches and frees every on-demand point (what is pinned stays).
func (d *demandSet) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for _, dp := range d.points {
		dp.settle()
		errs = append(errs, closeAll(dp.links))
		for _, p := range dp.progs {
			errs = append(errs, p.Close())
		}
	}
	d.points = map[string]*demandPoint{}
	return errors.Join(errs...)
}

// demandPrograms names, by pin name, the programs of the on-demand
// points among backends (a load record's).
func demandPrograms(backends []PointBackend) map[string]bool {
	out := map[string]bool{}
	for _, pb := range backends {
		if c, ok := demandCandidate(pb); ok {
			for _, pr := range c.programs {
				out[pr.name] = true
			}
		}
	}
	return out
}

// demandCandidate is the candidate an on-demand point's backend names.
func demandCandidate(pb PointBackend) (candidate, bool) {
	if pb.Error != "" {
		return candidate{}, false
	}
	for _, plan := range pointPlans {
		if plan.point == pb.Point && plan.onDemand {
			return plan.candidate(pb.Backend)
		}
	}
	return candidate{}, false
}

// takeOverDemand takes the on-demand points of a load record over: a
// point whose links are pinned attached, one whose programs are pinned
// (DIR/progs) detached. A point with neither is an error: the caller
// loads everything.
func (e *Enforcer) takeOverDemand(p *pinner, backends []PointBackend) error {
	for _, pb := range backends {
		c, ok := demandCandidate(pb)
		if !ok {
			continue
		}
		dp := &demandPoint{cand: c}
		if _, err := os.Stat(p.linkPath(c.programs[0].name)); err == nil {
			links, progs, _, err := openPinnedLinks(p, recordedLinks(c))
			if err != nil {
				return err
			}
			dp.links, dp.progs = orderLinks(p, c, links, progs)
		} else {
			for _, pr := range c.programs {
				prog, err := ebpf.LoadPinnedProgram(filepath.Join(p.dir, "progs", pr.name), nil)
				if err != nil {
					closePrograms(dp.progs)
					return fmt.Errorf("point %s: neither its link nor its program is pinned: %w", pb.Point, err)
				}
				dp.progs = append(dp.progs, prog)
			}
		}
		for i, pr := range c.programs {
			e.named[pr.name] = namedProgram{pr.mechanism, dp.progs[i]}
		}
		e.demand.points[pb.Point] = dp
		e.log.Info("took over an on-demand point", zap.String("point", pb.Point), zap.Bool("attached", dp.links != nil))
	}
	return nil
}

// recordedLinks is what a load record says of c's links: pin name ->
// mechanism.
func recordedLinks(c candidate) map[string]string {
	out := map[string]string{}
	for _, pr := range c.programs {
		out[pr.name] = pr.mechanism
	}
	return out
}

// orderLinks puts links and progs opened from pins in c's program order.
func orderLinks(p *pinner, c candidate, links []link.Link, progs []*ebpf.Program) ([]link.Link, []*ebpf.Program) {
	ol, op := make([]link.Link, len(c.programs)), make([]*ebpf.Program, len(c.programs))
	for i, l := range links {
		j := slices.IndexFunc(c.programs, func(pr program) bool { return pr.name == p.names[l] })
		ol[j], op[j] = l, progs[i]
	}
	return ol, op
}

// unpinStalePrograms removes every program pin under DIR/progs that keep
// does not name: their points are attached now, or gone.
func unpinStalePrograms(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(filepath.Join(dir, "progs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list pinned programs: %w", err)
	}
	var errs []error
	for _, en := range entries {
		if !keep[en.Name()] {
			errs = append(errs, removeIfExists(filepath.Join(dir, "progs", en.Name())))
		}
	}
	return errors.Join(errs...)
}
