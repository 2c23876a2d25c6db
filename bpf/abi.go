package bpf

import "hash/fnv"

// The Go mirror of common.h: the values the programs and Go agree on
// that bpf2go does not generate (enums and flags). abi_test.go checks
// each one against the header.

// Match flags of a selector (enum match_flag): every predicate set must
// hold.
const (
	MatchFamily = 1 << iota
	MatchProtocol
	MatchType
	MatchState
	MatchDaddr
	MatchDaddrNot
	MatchSaddr
	MatchSaddrNot
	MatchDport
	MatchDportNot
	MatchSport
	MatchSportNot
	MatchBin
	MatchBinNot
	MatchBinPrefix
	MatchBinPrefixNot
	MatchBinPostfix
	MatchBinPostfixNot
	MatchName
	MatchNameNot
	MatchStdioInet
	MatchNewFD
	MatchFileless
	MatchVariant
	MatchRelayed
	MatchPath
	MatchPathNot
	MatchPathPrefix
	MatchPathPrefixNot
	MatchPathPostfix
	MatchPathPostfixNot
	MatchCaps
	MatchCapsNot
	MatchCapsUserns
	MatchPID
	MatchPIDNot
	MatchNsChanges
	MatchNsChangesNot
	MatchStdioDialled
	MatchKernelStack
	MatchUserStack
)

// StackDepth is the frames a stack trace keeps (STACK_DEPTH).
const StackDepth = 64

// matchPIDs (enum pid_flag) and their limits.
const (
	PidNS     = 1
	PidFollow = 2
	MaxPids   = 4
)

// Actions as a selector stores them (enum action).
const (
	ActionPost    = 1
	ActionDeny    = 2
	ActionSigkill = 3
	ActionSignal  = 4
)

// Selector flags (enum selector_flag).
const (
	SelectorNoPost  = 1
	SelectorMonitor = 2
)

// Workload flags (enum workload_flag).
const (
	WorkloadMonitor      = 1
	WorkloadTrackSockets = 2
	WorkloadRelay        = 4
	WorkloadNoProcEvents = 8
)

// Event flags (enum event_flag).
const (
	EventEnforced      = 1 << 0
	EventKilled        = 1 << 1
	EventHasAddr       = 1 << 2
	EventKillPending   = 1 << 3
	EventSignalPending = 1 << 4
	EventMonitor       = 1 << 5
)

// Record kinds: what a ring buffer record reports (enum record_kind).
const (
	RecordDecision = 0
	RecordExec     = 1
	RecordClone    = 2
	RecordExit     = 3
)

// Relays: how a relayed shell was recognised, in bits 3-5 of an event's
// stdio_inet (enum relay).
const (
	RelayParent    = 1 << 3
	RelayPipe      = 1 << 4
	RelayAtConnect = 1 << 5
	// StdioDialled (bit 6 of an exec event's stdio_inet): the stdio
	// socket was dialled by the process or an ancestor, the event's peer.
	StdioDialled = 1 << 6
)

// Enforcers: how a verdict was carried out, as an event says
// (enum enforcer).
const (
	EnforcerNone              = 0
	EnforcerCgroupSockAddr    = 1
	EnforcerCgroupSock        = 2
	EnforcerTracepointSigkill = 3
	EnforcerLSM               = 4
	EnforcerFmodRet           = 5
	EnforcerCgroupSockRelease = 6
	EnforcerTracepoint        = 7
	EnforcerCgroupSkb         = 8
	EnforcerFentry            = 9
)

// Indexes of the counters map (enum counter): the events lost, then per
// point evaluated, posted, denied and killed (enum outcome).
const (
	CounterEventsLost = 0
	CounterPointBase  = 1
)

// MaxPortSets is the size of the port_sets map (maps.h); index 0 is
// never handed out.
const MaxPortSets = 512

// PathHash is the hash the kernel computes of an exec'd path (FNV-1a).
func PathHash(path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	return h.Sum64()
}
