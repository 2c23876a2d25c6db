package bpf

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/profiles"
)

// cConstants reads the #defines and enum members of common.h whose value
// is a number, "1 << n", an OR, sum or product of earlier names and
// numbers, possibly in parentheses and continued over several lines.
func cConstants(t *testing.T) map[string]int {
	t.Helper()
	src, err := os.ReadFile("common.h")
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines: a #define may span several.
	text := strings.ReplaceAll(string(src), "\\\n", " ")
	consts := map[string]int{}
	define := regexp.MustCompile(`^#define\s+([A-Z_0-9]+)\s+(.+?)\s*(/\*.*)?$`)
	member := regexp.MustCompile(`^\s*([A-Z_0-9]+)\s*=\s*([^,/]+),`)
	for _, line := range strings.Split(text, "\n") {
		m := define.FindStringSubmatch(line)
		if m == nil {
			m = member.FindStringSubmatch(line)
		}
		if m == nil {
			continue
		}
		if v, ok := evalC(strings.TrimSpace(m[2]), consts); ok {
			consts[m[1]] = v
		}
	}
	return consts
}

// cSuffix is an integer literal's unsigned/long suffix (1ULL, 0x7U).
var cSuffix = regexp.MustCompile(`\b(0[xX][0-9a-fA-F]+|[0-9]+)[uU]?[lL]{0,2}\b`)

func evalC(expr string, known map[string]int) (int, bool) {
	expr = cSuffix.ReplaceAllString(strings.TrimSpace(expr), "$1")
	if inner, ok := strings.CutPrefix(expr, "("); ok && strings.HasSuffix(inner, ")") && balanced(inner[:len(inner)-1]) {
		return evalC(inner[:len(inner)-1], known)
	}
	// C precedence, lowest first; split at the last top-level operator
	// (all of them associate to the left).
	for _, op := range []string{"|", "<<", "+", "*"} {
		i := lastTopLevel(expr, op)
		if i < 0 {
			continue
		}
		x, ok1 := evalC(expr[:i], known)
		y, ok2 := evalC(expr[i+len(op):], known)
		switch op {
		case "|":
			return x | y, ok1 && ok2
		case "<<":
			return x << y, ok1 && ok2
		case "+":
			return x + y, ok1 && ok2
		default:
			return x * y, ok1 && ok2
		}
	}
	if v, ok := known[expr]; ok {
		return v, true
	}
	v, err := strconv.ParseInt(expr, 0, 64)
	return int(v), err == nil
}

// balanced reports whether s's parentheses pair up.
func balanced(s string) bool {
	depth := 0
	for _, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			if depth--; depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}

// lastTopLevel is the index of the last op in s outside parentheses, or -1.
func lastTopLevel(s, op string) int {
	depth := 0
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ')':
			depth++
		case '(':
			depth--
		}
		if depth == 0 && strings.HasPrefix(s[i:], op) {
			return i
		}
	}
	return -1
}

func TestEvalC(t *testing.T) {
	known := map[string]int{"A": 1, "B": 4}
	for expr, want := range map[string]int{
		"3": 3, "0x10": 16, "1 << 4": 16, "A + B * 4": 17, "(A | B)": 5, "A | B | 1 << 5": 37, "00170000": 0o170000,
		"A + 1 << 2": 8, "(A + 1) * (B + 1)": 10, "1 << 2 << 1": 8, "(A) | (B)": 5,
	} {
		if got, ok := evalC(expr, known); !ok || got != want {
			t.Errorf("evalC(%q) = %d, %v; want %d", expr, got, ok, want)
		}
	}
	if _, ok := evalC("UNKNOWN + 1", known); ok {
		t.Error("unknown name evaluated")
	}
}

// mirrors are the values of common.h that Go mirrors, by what they are:
// name in common.h -> value in Go.
var mirrors = map[string]map[string]int{
	"actions": {"ACTION_NONE": 0, "ACTION_POST": ActionPost, "ACTION_DENY": ActionDeny, "ACTION_SIGKILL": ActionSigkill,
		"ACTION_SIGNAL": ActionSignal},
	// The decoder reads the kernel's action back as a profiles.Action.
	"profile actions": {"ACTION_POST": int(profiles.ActionPost), "ACTION_DENY": int(profiles.ActionOverride),
		"ACTION_SIGKILL": int(profiles.ActionSigkill), "ACTION_SIGNAL": int(profiles.ActionSignal)},
	"match flags": {
		"MATCH_FAMILY": MatchFamily, "MATCH_PROTOCOL": MatchProtocol, "MATCH_TYPE": MatchType, "MATCH_STATE": MatchState,
		"MATCH_DADDR": MatchDaddr, "MATCH_DADDR_NOT": MatchDaddrNot, "MATCH_SADDR": MatchSaddr, "MATCH_SADDR_NOT": MatchSaddrNot,
		"MATCH_DPORT": MatchDport, "MATCH_DPORT_NOT": MatchDportNot, "MATCH_SPORT": MatchSport, "MATCH_SPORT_NOT": MatchSportNot,
		"MATCH_BIN": MatchBin, "MATCH_BIN_NOT": MatchBinNot, "MATCH_BIN_PREFIX": MatchBinPrefix,
		"MATCH_BIN_PREFIX_NOT": MatchBinPrefixNot, "MATCH_BIN_POSTFIX": MatchBinPostfix, "MATCH_BIN_POSTFIX_NOT": MatchBinPostfixNot,
		"MATCH_NAME": MatchName, "MATCH_NAME_NOT": MatchNameNot, "MATCH_STDIO_INET": MatchStdioInet,
		"MATCH_NEWFD": MatchNewFD, "MATCH_FILELESS": MatchFileless, "MATCH_VARIANT": MatchVariant, "MATCH_RELAYED": MatchRelayed,
		"MATCH_PATH": MatchPath, "MATCH_PATH_NOT": MatchPathNot, "MATCH_PATH_PREFIX": MatchPathPrefix, "MATCH_PATH_PREFIX_NOT": MatchPathPrefixNot,
		"MATCH_PATH_POSTFIX": MatchPathPostfix, "MATCH_PATH_POSTFIX_NOT": MatchPathPostfixNot,
		"MATCH_CAPS": MatchCaps, "MATCH_CAPS_NOT": MatchCapsNot, "MATCH_CAPS_USERNS": MatchCapsUserns,
		"MATCH_PID": MatchPID, "MATCH_PID_NOT": MatchPIDNot, "MATCH_STDIO_DIALLED": MatchStdioDialled,
		"MATCH_KERNEL_STACK": MatchKernelStack, "MATCH_USER_STACK": MatchUserStack,
		// The kernel computes the Prefix/Postfix keys only when a
		// selector of the point uses one of these.
		"MATCH_ANY_BIN": MatchBin | MatchBinNot | MatchBinPrefix | MatchBinPrefixNot | MatchBinPostfix | MatchBinPostfixNot,
	},
	"selector and workload flags": {"SELECTOR_NOPOST": SelectorNoPost, "SELECTOR_MONITOR": SelectorMonitor,
		"WORKLOAD_MONITOR": WorkloadMonitor, "WORKLOAD_TRACK_SOCKETS": WorkloadTrackSockets, "WORKLOAD_RELAY": WorkloadRelay,
		"WORKLOAD_NO_PROC_EVENTS": WorkloadNoProcEvents},
	"records": {"RECORD_DECISION": RecordDecision, "RECORD_EXEC": RecordExec, "RECORD_CLONE": RecordClone,
		"RECORD_EXIT":    RecordExit,
		"EVENT_ENFORCED": EventEnforced, "EVENT_KILLED": EventKilled, "EVENT_HAS_ADDR": EventHasAddr,
		"EVENT_KILL_PENDING": EventKillPending, "EVENT_SIGNAL_PENDING": EventSignalPending, "EVENT_MONITOR": EventMonitor,
		"RELAY_PARENT": RelayParent, "RELAY_PIPE": RelayPipe, "RELAY_AT_CONNECT": RelayAtConnect,
		"STDIO_DIALLED": StdioDialled},
	"enforcers": {"ENFORCER_NONE": EnforcerNone, "ENFORCER_CGROUP_SOCK_ADDR": EnforcerCgroupSockAddr,
		"ENFORCER_CGROUP_SOCK": EnforcerCgroupSock, "ENFORCER_TRACEPOINT_SIGKILL": EnforcerTracepointSigkill,
		"ENFORCER_LSM": EnforcerLSM, "ENFORCER_FMOD_RET": EnforcerFmodRet,
		"ENFORCER_CGROUP_SOCK_RELEASE": EnforcerCgroupSockRelease, "ENFORCER_TRACEPOINT": EnforcerTracepoint,
		"ENFORCER_CGROUP_SKB": EnforcerCgroupSkb, "ENFORCER_FENTRY": EnforcerFentry},
	// Counters are read as evaluated/posted/denied/killed per point.
	"counters": {"COUNTER_EVENTS_LOST": CounterEventsLost, "COUNTER_POINT_BASE": CounterPointBase,
		"COUNTER_MAX":       CounterPointBase + int(profiles.NumPoints)*4,
		"OUTCOME_EVALUATED": 0, "OUTCOME_POSTED": 1, "OUTCOME_DENIED": 2, "OUTCOME_KILLED": 3},
	"limits": {"MAX_SELECTORS": profiles.MaxSelectors, "MAX_GROUPS": profiles.MaxGroups, "NAME_LEN": profiles.MaxNameLen,
		"FULL_PATH_LEN": profiles.MaxPathLen, "PREFIX_LEN": profiles.MaxPrefixLen, "PORT_WORDS": 65536 / 64,
		"PATH_LEN": len(FallbackEvent{}.Path), "ARGS_EV_LEN": len(FallbackEvent{}.Args)},
}

// pointMirrors are the points: POINT_CONNECT ... in profiles.Point order.
func pointMirrors() map[string]int {
	out := map[string]int{"POINT_LISTEN": int(profiles.PointListen), "POINT_CLOSE": int(profiles.PointClose),
		"POINT_MAX": int(profiles.NumPoints)}
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		out["POINT_"+strings.ToUpper(pt.String())] = int(pt)
	}
	return out
}

// The Go side mirrors common.h by hand; a drift silently misreads maps
// and events.
func TestGoMirrorsCommonH(t *testing.T) {
	c := cConstants(t)
	check := func(t *testing.T, want map[string]int) {
		for name, goValue := range want {
			if v, ok := c[name]; !ok {
				t.Errorf("common.h has no %s", name)
			} else if v != goValue {
				t.Errorf("%s = %d in common.h, %d in Go", name, v, goValue)
			}
		}
	}
	t.Run("points", func(t *testing.T) { check(t, pointMirrors()) })
	for what, want := range mirrors {
		t.Run(what, func(t *testing.T) { check(t, want) })
	}
}

// The generated structs agree with the limits.
func TestGeneratedSizes(t *testing.T) {
	var (
		rules   FallbackPointRules
		name    FallbackNameKey
		proc    FallbackProc
		path    FallbackPathKey
		ports   FallbackPortBitmap
		w       FallbackWorkload
		sel     FallbackSelector
		scratch FallbackScratch
	)
	if len(rules.Sel) != profiles.MaxSelectors || len(name.Name) != profiles.MaxNameLen || len(proc.Path) != profiles.MaxPathLen ||
		len(path.Path) != profiles.MaxPrefixLen || len(ports.Bits)*64 != 65536 || len(scratch.D.Prefix.Path) != profiles.MaxPrefixLen {
		t.Errorf("generated sizes: %d selectors, %d name bytes, %d path bytes, %d prefix bytes, %d ports",
			len(rules.Sel), len(name.Name), len(proc.Path), len(path.Path), len(ports.Bits)*64)
	}
	// workload.disabled is indexed by point & 15: one mask per point, and
	// one bit per selector.
	if len(w.Disabled) < int(profiles.NumPoints) || len(w.Disabled) != 16 || profiles.MaxSelectors > 32 {
		t.Errorf("workload has %d disabled masks for %d points of %d selectors", len(w.Disabled), profiles.NumPoints, profiles.MaxSelectors)
	}
	// Selector.Group is a byte in the kernel and picks a bit of a __u32.
	if profiles.MaxGroups > 32 || len(sel.Protocols)*64 != 256 {
		t.Errorf("groups %d, protocol bits %d", profiles.MaxGroups, len(sel.Protocols)*64)
	}
}

// The sizes of the maps that the Go side counts on, from the object.
func TestObjectMaps(t *testing.T) {
	spec, err := LoadFallback()
	if err != nil {
		t.Fatal(err)
	}
	if m := spec.Maps["port_sets"]; m == nil || m.MaxEntries != MaxPortSets {
		t.Fatalf("port_sets %+v, want %d entries (MaxPortSets)", m, MaxPortSets)
	}
	if m := spec.Maps["counters"]; m == nil || int(m.MaxEntries) != CounterPointBase+int(profiles.NumPoints)*4 {
		t.Fatalf("counters %+v", m)
	}
}

// The kernel hashes exec'd paths with FNV-1a 64; PathHash must agree.
func TestPathHash(t *testing.T) {
	for in, want := range map[string]uint64{
		"":       0xcbf29ce484222325,
		"a":      0xaf63dc4c8601ec8c,
		"foobar": 0x85944171f73967e8,
	} {
		if got := PathHash(in); got != want {
			t.Errorf("PathHash(%q) = %#x, want %#x", in, got, want)
		}
	}
	// The kernel's loop, byte for byte.
	kernel := func(s string) uint64 {
		h := uint64(14695981039346656037)
		for i := 0; i < len(s) && i < profiles.MaxPathLen; i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		return h
	}
	for _, s := range []string{"/bin/busybox", "/usr/bin/python3.11", "/\xff\x80odd"} {
		if PathHash(s) != kernel(s) {
			t.Errorf("PathHash(%q) differs from the kernel's loop", s)
		}
	}
}
