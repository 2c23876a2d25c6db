package bpf

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/ocigate/ocigate/profiles"
)

// Kernel-side constants mirrored from common.h.
const (
	matchFamily = 1 << iota
	matchProtocol
	matchType
	matchDaddrIn
	matchDaddrNotIn
	matchDportIn
	matchDportNotIn
	matchBinaryIn
	matchBinaryNotIn
	matchStdioInet
)

const (
	actionPost    = 1
	actionDeny    = 2
	actionSigkill = 3

	workloadMonitor = 1
)

// LoadProfile writes a compiled profile's selectors under id. Loading the
// same id again replaces its selectors point by point.
func (e *Enforcer) LoadProfile(id uint32, p *profiles.Profile) error {
	if err := p.Validate(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		var rules fallbackPointRules
		for i, s := range p.Points[pt] {
			sel, err := e.compileSelector(&s)
			if err != nil {
				return fmt.Errorf("profile %q: %s selector %d: %w", p.Name, pt, i, err)
			}
			rules.Sel[i] = sel
		}
		rules.Count = uint32(len(p.Points[pt]))
		key := fallbackRuleKey{Profile: id, Point: uint32(pt)}
		if rules.Count == 0 {
			if err := e.maps.Rules.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("clear %s rules of profile %q: %w", pt, p.Name, err)
			}
			continue
		}
		if err := e.maps.Rules.Put(key, rules); err != nil {
			return fmt.Errorf("write %s rules of profile %q: %w", pt, p.Name, err)
		}
	}
	return nil
}

func (e *Enforcer) compileSelector(s *profiles.Selector) (fallbackSelector, error) {
	var k fallbackSelector
	if s.Family != 0 {
		k.Match |= matchFamily
		k.Family = s.Family
	}
	if s.Protocol != 0 {
		k.Match |= matchProtocol
		k.Protocol = s.Protocol
	}
	if s.SockType != 0 {
		k.Match |= matchType
		k.SockType = s.SockType
	}
	if addrs, flag := pick(s.DaddrIn, s.DaddrNotIn, matchDaddrIn, matchDaddrNotIn); flag != 0 {
		set, err := e.writeAddrSet(addrs)
		if err != nil {
			return k, err
		}
		k.Match |= flag
		k.AddrSet = set
	}
	if ports, flag := pick(s.DportIn, s.DportNotIn, matchDportIn, matchDportNotIn); flag != 0 {
		k.Match |= flag
		for i, r := range ports {
			k.Ports[i].Lo, k.Ports[i].Hi = r.Lo, r.Hi
		}
		k.Nports = uint8(len(ports))
	}
	if names, flag := pick(s.BinaryIn, s.BinaryNotIn, matchBinaryIn, matchBinaryNotIn); flag != 0 {
		set, err := e.writeNameSet(names)
		if err != nil {
			return k, err
		}
		k.Match |= flag
		k.NameSet = set
	}
	if s.StdioInet {
		k.Match |= matchStdioInet
	}
	switch s.Action {
	case profiles.ActionPost:
		k.Action = actionPost
	case profiles.ActionOverride:
		k.Action = actionDeny
		k.Err = int32(s.Errno)
		if k.Err == 0 {
			k.Err = 1 // EPERM
		}
	case profiles.ActionSigkill:
		k.Action = actionSigkill
	}
	return k, nil
}

func pick[T any](in, notIn []T, inFlag, notInFlag uint32) ([]T, uint32) {
	switch {
	case len(in) > 0:
		return in, inFlag
	case len(notIn) > 0:
		return notIn, notInFlag
	}
	return nil, 0
}

// addrKeyOf returns the LPM key of a prefix; IPv4 is stored v4-mapped.
func addrKeyOf(set uint32, p netip.Prefix) fallbackAddrKey {
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	return fallbackAddrKey{Prefixlen: uint32(32 + bits), Set: set, Addr: p.Masked().Addr().As16()}
}

func (e *Enforcer) writeAddrSet(prefixes []netip.Prefix) (uint32, error) {
	e.nextSet++
	set := e.nextSet
	for _, p := range prefixes {
		if err := e.maps.AddrSets.Put(addrKeyOf(set, p), uint8(1)); err != nil {
			return 0, fmt.Errorf("write address %v: %w", p, err)
		}
	}
	return set, nil
}

func (e *Enforcer) writeNameSet(names []string) (uint32, error) {
	e.nextSet++
	set := e.nextSet
	for _, n := range names {
		key := fallbackNameKey{Set: set}
		for i := 0; i < len(n) && i < len(key.Name); i++ {
			key.Name[i] = int8(n[i])
		}
		if err := e.maps.NameSets.Put(key, uint8(1)); err != nil {
			return 0, fmt.Errorf("write binary name %q: %w", n, err)
		}
	}
	return set, nil
}

// SetWorkload enforces profile id on a cgroup and everything below it.
func (e *Enforcer) SetWorkload(cgroupID uint64, profile uint32, mode profiles.Mode) error {
	w := fallbackWorkload{Profile: profile}
	if mode == profiles.ModeMonitor {
		w.Flags |= workloadMonitor
	}
	if err := e.maps.Workloads.Put(cgroupID, w); err != nil {
		return fmt.Errorf("write workload of cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// RemoveWorkload stops enforcing on a cgroup; a cgroup not present is fine.
func (e *Enforcer) RemoveWorkload(cgroupID uint64) error {
	if err := e.maps.Workloads.Delete(cgroupID); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete workload of cgroup %d: %w", cgroupID, err)
	}
	return nil
}

// WorkloadCgroups lists the cgroup IDs present in the workloads map.
func (e *Enforcer) WorkloadCgroups() ([]uint64, error) {
	var (
		ids []uint64
		key uint64
		val fallbackWorkload
	)
	it := e.maps.Workloads.Iterate()
	for it.Next(&key, &val) {
		ids = append(ids, key)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate workloads map: %w", err)
	}
	return ids, nil
}
