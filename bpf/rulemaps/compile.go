package rulemaps

import (
	"strings"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

// selectorPart compiles one part of a selector into k, writing the sets
// it refers to with w.
type selectorPart func(w *setWriter, k *bpf.FallbackSelector, s *profiles.Selector) error

// compileSelector compiles a selector into its map value; the value sets
// it refers to are written with w, in the order of the parts.
func compileSelector(w *setWriter, s *profiles.Selector) (bpf.FallbackSelector, error) {
	k := bpf.FallbackSelector{Group: uint8(s.Group)}
	compileMasks(&k, s)
	for _, part := range []selectorPart{compileAddrs, compilePorts, compileNames, compileBinaries, compilePaths} {
		if err := part(w, &k, s); err != nil {
			return k, err
		}
	}
	compileFlags(&k, s)
	return k, nil
}

// compileMasks sets the bit masks: families, socket types, TCP states,
// dup's new descriptors and protocols.
func compileMasks(k *bpf.FallbackSelector, s *profiles.Selector) {
	k.Families, k.Match = maskOf(s.Families, k.Match, bpf.MatchFamily)
	k.Types, k.Match = maskOf(s.SockTypes, k.Match, bpf.MatchType)
	k.States, k.Match = maskOf(s.States, k.Match, bpf.MatchState)
	k.Fds, k.Match = maskOf(s.Fds, k.Match, bpf.MatchNewFD)
	if len(s.Protocols) > 0 {
		k.Match |= bpf.MatchProtocol
		for _, p := range s.Protocols {
			k.Protocols[p>>6] |= 1 << (p & 63)
		}
	}
}

// compileAddrs writes the destination and source address sets.
func compileAddrs(w *setWriter, k *bpf.FallbackSelector, s *profiles.Selector) error {
	var err error
	for _, a := range []struct {
		m         profiles.AddrMatch
		set       *uint32
		in, notIn uint64
	}{{s.Daddr, &k.DaddrSet, bpf.MatchDaddr, bpf.MatchDaddrNot}, {s.Saddr, &k.SaddrSet, bpf.MatchSaddr, bpf.MatchSaddrNot}} {
		if !a.m.Set() {
			continue
		}
		if *a.set, err = w.addrs(a.m.Prefixes); err != nil {
			return err
		}
		k.Match |= pickFlag(a.m.Not, a.in, a.notIn)
	}
	return nil
}

// compilePorts writes the destination and source port sets.
func compilePorts(w *setWriter, k *bpf.FallbackSelector, s *profiles.Selector) error {
	var err error
	for _, p := range []struct {
		m         profiles.PortMatch
		set       *uint32
		in, notIn uint64
	}{{s.Dport, &k.DportSet, bpf.MatchDport, bpf.MatchDportNot}, {s.Sport, &k.SportSet, bpf.MatchSport, bpf.MatchSportNot}} {
		if !p.m.Set() {
			continue
		}
		if *p.set, err = w.portSet(p.m.Ranges); err != nil {
			return err
		}
		k.Match |= pickFlag(p.m.Not, p.in, p.notIn)
	}
	return nil
}

// compileNames writes the set of process names.
func compileNames(w *setWriter, k *bpf.FallbackSelector, s *profiles.Selector) error {
	if len(s.Names.Names) == 0 {
		return nil
	}
	var err error
	if k.NameSet, err = w.names(s.Names.Names); err != nil {
		return err
	}
	k.Match |= pickFlag(s.Names.Not, bpf.MatchName, bpf.MatchNameNot)
	return nil
}

// fileSets is where one kind of file predicate goes in a selector: the
// set of each operator (In/Equal by the path's hash, Prefix, Postfix by
// the path) and its match flags, positive and Not.
type fileSets struct {
	in, prefix, postfix             *uint32
	inFlag, prefixFlag, postfixFlag [2]uint64 // [0] In, [1] Not
}

// compileBinaries writes the sets of matchBinaries.
func compileBinaries(w *setWriter, k *bpf.FallbackSelector, s *profiles.Selector) error {
	return compileFileSets(w, k, s.Binaries, fileSets{in: &k.BinSet, prefix: &k.PrefixSet, postfix: &k.PostfixSet,
		inFlag:      [2]uint64{bpf.MatchBin, bpf.MatchBinNot},
		prefixFlag:  [2]uint64{bpf.MatchBinPrefix, bpf.MatchBinPrefixNot},
		postfixFlag: [2]uint64{bpf.MatchBinPostfix, bpf.MatchBinPostfixNot}})
}

// compilePaths writes the sets of the executed file's path predicates
// (exec point), the same kinds as matchBinaries'.
func compilePaths(w *setWriter, k *bpf.FallbackSelector, s *profiles.Selector) error {
	return compileFileSets(w, k, s.Paths, fileSets{in: &k.PathSet, prefix: &k.PathPrefixSet, postfix: &k.PathPostfixSet,
		inFlag:      [2]uint64{bpf.MatchPath, bpf.MatchPathNot},
		prefixFlag:  [2]uint64{bpf.MatchPathPrefix, bpf.MatchPathPrefixNot},
		postfixFlag: [2]uint64{bpf.MatchPathPostfix, bpf.MatchPathPostfixNot}})
}

// compileFileSets writes each match of ms into its set of to and sets
// its flag in k.
func compileFileSets(w *setWriter, k *bpf.FallbackSelector, ms []profiles.BinaryMatch, to fileSets) error {
	var err error
	for _, b := range ms {
		not := strings.HasPrefix(b.Operator, "Not")
		switch strings.TrimPrefix(b.Operator, "Not") {
		case profiles.BinaryIn:
			*to.in, err = w.binaries(b.Values)
			k.Match |= pickFlag(not, to.inFlag[0], to.inFlag[1])
		case profiles.BinaryPrefix:
			*to.prefix, err = w.pathPrefixes(b.Values, false)
			k.Match |= pickFlag(not, to.prefixFlag[0], to.prefixFlag[1])
		case profiles.BinaryPostfix:
			*to.postfix, err = w.pathPrefixes(b.Values, true)
			k.Match |= pickFlag(not, to.postfixFlag[0], to.postfixFlag[1])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// compileFlags sets the predicates without values, the action and the
// selector's flags.
func compileFlags(k *bpf.FallbackSelector, s *profiles.Selector) {
	if s.StdioInet {
		k.Match |= bpf.MatchStdioInet
	}
	if s.StdioDialled {
		k.Match |= bpf.MatchStdioDialled
	}
	if s.Relayed {
		k.Match |= bpf.MatchRelayed
	}
	if s.Fileless {
		k.Match |= bpf.MatchFileless
	}
	if s.KernelStack {
		k.Match |= bpf.MatchKernelStack
	}
	if s.UserStack {
		k.Match |= bpf.MatchUserStack
	}
	if s.Variant != 0 {
		k.Match |= bpf.MatchVariant
		k.Variant = s.Variant
	}
	compileCapsPids(k, s)
	k.Action, k.Err, k.Signal = kernelAction(s)
	if k.Action == bpf.ActionDeny {
		k.Retval = s.ReturnValue
	}
	if s.NoPost {
		k.Flags |= bpf.SelectorNoPost
	}
	if s.Monitor {
		k.Flags |= bpf.SelectorMonitor
	}
}

// compileCapsPids sets matchCapabilities, matchNamespaceChanges and
// matchPIDs.
func compileCapsPids(k *bpf.FallbackSelector, s *profiles.Selector) {
	if c := s.Caps; c != nil {
		k.Match |= pickFlag(c.Not, bpf.MatchCaps, bpf.MatchCapsNot)
		if c.NamespaceOnly {
			k.Match |= bpf.MatchCapsUserns
		}
		k.Caps, k.CapsType = c.Mask, c.Set
	}
	if n := s.NsChanges; n != nil {
		k.Match |= pickFlag(n.Not, bpf.MatchNsChanges, bpf.MatchNsChangesNot)
		k.NsChanges = n.Mask
	}
	if p := s.PIDs; p != nil {
		k.Match |= pickFlag(p.Not, bpf.MatchPID, bpf.MatchPIDNot)
		k.Npids = uint8(copy(k.Pids[:], p.Values))
		if p.Namespace {
			k.PidFlags |= bpf.PidNS
		}
		if p.Follow {
			k.PidFlags |= bpf.PidFollow
		}
	}
}

// kernelAction is the selector's action as the kernel stores it, with
// the errno of a denial (EPERM unless given) and the signal to send.
func kernelAction(s *profiles.Selector) (action uint8, errno int32, signal uint8) {
	errno = int32(s.Errno)
	if errno == 0 {
		errno = 1 // EPERM
	}
	switch s.Action {
	case profiles.ActionOverride:
		return bpf.ActionDeny, errno, 0
	case profiles.ActionNotifyEnforcer:
		return bpf.ActionDeny, errno, uint8(s.Signal)
	case profiles.ActionSigkill:
		return bpf.ActionSigkill, 0, 0
	case profiles.ActionSignal:
		return bpf.ActionSignal, 0, uint8(s.Signal)
	}
	return bpf.ActionPost, 0, 0
}

// maskOf is the bit mask of values (each below 32), and match with flag
// set when there are any.
func maskOf(values []uint8, match, flag uint64) (uint32, uint64) {
	if len(values) == 0 {
		return 0, match
	}
	var m uint32
	for _, v := range values {
		m |= 1 << (v & 31)
	}
	return m, match | flag
}

// pickFlag is notIn for a negated match, in otherwise.
func pickFlag(not bool, in, notIn uint64) uint64 {
	if not {
		return notIn
	}
	return in
}
