package enforcer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"go.uber.org/zap"

	"github.com/ocigate/ocigate/bpf"
)

// A pinning Load leaves a record of what it attached in DIR/state (a
// pinned one-entry array map, so that it lives and dies with the pins):
// the objects' hash, the options, each point's backend and the pinned
// links. A later Load with the same objects and options takes the
// pinned programs over as they are, without loading or verifying
// anything: a restarted agent is ready in milliseconds.

const (
	recordVersion = 1
	recordSize    = 64 << 10 // bytes of the state map's value: a length, then JSON
	statePin      = "state"
)

// objects are the two parsed BPF objects and what identifies them.
type objects struct {
	fallback, security *ebpf.CollectionSpec
	hash               string // of both objects and the point plans
}

// parseObjects parses the embedded objects, once per Load.
func parseObjects() (*objects, error) {
	all := bpf.Objects()
	specs := make([]*ebpf.CollectionSpec, len(all))
	h := sha256.New()
	for i, obj := range all {
		spec, err := obj.Parse()
		if err != nil {
			return nil, fmt.Errorf("%s object: %w", obj.Name, err)
		}
		specs[i] = spec
		h.Write(obj.ELF)
	}
	for _, plan := range append([]pointPlan{trackingPlan, tcpSendPlan}, pointPlans...) {
		fmt.Fprintf(h, "%s:", plan.point)
		for _, c := range plan.candidates {
			fmt.Fprintf(h, "%s=%s;", c.backend, c.mechanism())
		}
	}
	return &objects{fallback: specs[0], security: specs[1], hash: hex.EncodeToString(h.Sum(nil))}, nil
}

// loadRecord is what a pinning Load attached.
type loadRecord struct {
	Version    int            `json:"version"`
	Objects    string         `json:"objects"`
	Enforcer   string         `json:"enforcer"`
	CgroupRoot string         `json:"cgroup_root"`
	Backends   []PointBackend `json:"backends,omitempty"`
	// Links: pin name -> the mechanism of its program.
	Links map[string]string `json:"links,omitempty"`
}

func (o *objects) record(opts Options) loadRecord {
	return loadRecord{Version: recordVersion, Objects: o.hash, Enforcer: opts.Enforcer, CgroupRoot: opts.CgroupRoot}
}

// mismatch says why the pinned programs of got cannot serve as want's,
// "" when they can.
func (got *loadRecord) mismatch(want loadRecord) string {
	switch {
	case got.Version != want.Version:
		return fmt.Sprintf("record version %d", got.Version)
	case got.Objects != want.Objects:
		return "pinned by another build of ocigate"
	case got.Enforcer != want.Enforcer:
		return fmt.Sprintf("pinned with --enforcer=%s", got.Enforcer)
	case got.CgroupRoot != want.CgroupRoot:
		return fmt.Sprintf("pinned for the cgroup root %s", got.CgroupRoot)
	case len(got.Links) == 0:
		return "no links recorded"
	}
	for _, pb := range got.Backends {
		if pb.Error != "" {
			return fmt.Sprintf("point %s was unavailable (%s): trying again", pb.Point, pb.Error)
		}
	}
	return ""
}

// takeOver adopts the pinned programs when the record in the pin
// directory says they come from these objects and options. On any doubt
// it returns false and leaves everything as it was, for a full Load.
func (e *Enforcer) takeOver(want loadRecord) bool {
	got, err := readRecord(filepath.Join(e.pins.dir, statePin))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			e.log.Warn("pinned load record unreadable; loading the programs", zap.Error(err))
		}
		return false
	}
	if why := got.mismatch(want); why != "" {
		e.log.Info("pinned programs not taken over; loading them", zap.String("why", why))
		return false
	}
	demand := demandPrograms(got.Backends)
	fixed := map[string]string{}
	for name, mech := range got.Links {
		if !demand[name] {
			fixed[name] = mech
		}
	}
	links, progs, named, err := openPinnedLinks(e.pins, fixed)
	if err != nil {
		e.log.Info("pinned programs not taken over; loading them", zap.Error(err))
		return false
	}
	e.links, e.progs, e.named, e.backends = links, progs, named, got.Backends
	if err := e.takeOverDemand(e.pins, got.Backends); err != nil {
		e.log.Info("pinned programs not taken over; loading them", zap.Error(err))
		e.dropTakeOver()
		return false
	}
	removed, err := e.pins.commit(e.allLinks())
	if err != nil {
		e.log.Warn("stale pins left", zap.Error(err))
	}
	if err := unpinStalePrograms(e.pins.dir, e.demand.detachedPrograms()); err != nil {
		e.log.Warn("stale pinned programs left", zap.Error(err))
	}
	e.pinState = &PinState{Dir: e.pins.dir, Inherited: e.pinState.Inherited, Reused: true, Removed: removed, lock: e.pins.lock}
	e.pins = nil
	e.log.Info("took over the pinned programs of these same objects: nothing loaded",
		zap.String("dir", e.pinState.Dir), zap.Int("links", len(links)))
	return true
}

// openPinnedLinks opens every recorded link and its program.
func openPinnedLinks(p *pinner, recorded map[string]string) (links []link.Link, progs []*ebpf.Program,
	named map[string]namedProgram, err error) {
	named = map[string]namedProgram{}
	defer func() {
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			closePrograms(progs)
		}
	}()
	for name, mech := range recorded {
		l, err := link.LoadPinnedLink(p.linkPath(name), nil)
		if err != nil {
			return links, progs, nil, fmt.Errorf("pinned link %s: %w", name, err)
		}
		links = append(links, l)
		p.names[l] = name
		info, err := l.Info()
		if err != nil {
			return links, progs, nil, fmt.Errorf("pinned link %s: %w", name, err)
		}
		prog, err := ebpf.NewProgramFromID(info.Program)
		if err != nil {
			return links, progs, nil, fmt.Errorf("program of pinned link %s: %w", name, err)
		}
		progs = append(progs, prog)
		named[name] = namedProgram{mech, prog}
	}
	return links, progs, named, nil
}

// writeRecord stores what this Load attached for the next one; without
// every link pinned there is nothing to take over, and the record goes.
func (e *Enforcer) writeRecord(p *pinner, rec loadRecord) error {
	path := filepath.Join(p.dir, statePin)
	if len(p.unpinned) > 0 {
		return removeIfExists(path)
	}
	rec.Backends = e.backends
	rec.Links = map[string]string{}
	for _, l := range e.allLinks() {
		if name, ok := p.names[l]; ok {
			rec.Links[name] = p.mechanisms[name]
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if len(b)+4 > recordSize {
		return removeIfExists(path)
	}
	value := make([]byte, recordSize)
	binary.LittleEndian.PutUint32(value, uint32(len(b)))
	copy(value[4:], b)
	m, err := openStateMap(path)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Put(uint32(0), value); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func stateMapSpec() *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: "ocigate_state", Type: ebpf.Array, KeySize: 4, ValueSize: recordSize, MaxEntries: 1}
}

// openStateMap opens the pinned state map, or makes and pins it (anew
// when the pinned one has another layout).
func openStateMap(path string) (*ebpf.Map, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err == nil {
		if stateMapSpec().Compatible(m) == nil {
			return m, nil
		}
		m.Close()
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("replace %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	m, err = ebpf.NewMap(stateMapSpec())
	if err != nil {
		return nil, fmt.Errorf("create the state map: %w", err)
	}
	if err := m.Pin(path); err != nil {
		m.Close()
		return nil, fmt.Errorf("pin %s: %w", path, err)
	}
	return m, nil
}

func readRecord(path string) (*loadRecord, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := stateMapSpec().Compatible(m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	value := make([]byte, recordSize)
	if err := m.Lookup(uint32(0), &value); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	n := binary.LittleEndian.Uint32(value)
	if n == 0 || int(n) > recordSize-4 {
		return nil, fmt.Errorf("%s: no record (length %d)", path, n)
	}
	var rec loadRecord
	if err := json.Unmarshal(value[4:4+n], &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &rec, nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// dropTakeOver undoes a takeover that failed half way (the pins stay):
// Load then loads everything.
func (e *Enforcer) dropTakeOver() {
	for _, l := range e.links {
		l.Close()
	}
	closePrograms(e.progs)
	_ = e.demand.close()
	e.links, e.progs, e.backends, e.named = nil, nil, nil, map[string]namedProgram{}
}

// allLinks are the links of every attached program, on-demand points'
// included.
func (e *Enforcer) allLinks() []link.Link {
	return append(append([]link.Link(nil), e.links...), e.demand.attachedLinks()...)
}
