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
// is a number, "1 << n", or a sum/product of earlier names and numbers.
func cConstants(t *testing.T) map[string]int {
	t.Helper()
	src, err := os.ReadFile("common.h")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]int{}
	define := regexp.MustCompile(`^#define\s+([A-Z_0-9]+)\s+(\S+)\s*$`)
	member := regexp.MustCompile(`^\s*([A-Z_0-9]+)\s*=\s*([^,/]+),`)
	for _, line := range strings.Split(string(src), "\n") {
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

func evalC(expr string, known map[string]int) (int, bool) {
	if a, b, ok := strings.Cut(expr, "<<"); ok {
		x, ok1 := evalC(strings.TrimSpace(a), known)
		y, ok2 := evalC(strings.TrimSpace(b), known)
		return x << y, ok1 && ok2
	}
	if a, b, ok := strings.Cut(expr, "+"); ok {
		x, ok1 := evalC(strings.TrimSpace(a), known)
		y, ok2 := evalC(strings.TrimSpace(b), known)
		return x + y, ok1 && ok2
	}
	if a, b, ok := strings.Cut(expr, "*"); ok {
		x, ok1 := evalC(strings.TrimSpace(a), known)
		y, ok2 := evalC(strings.TrimSpace(b), known)
		return x * y, ok1 && ok2
	}
	if v, ok := known[expr]; ok {
		return v, true
	}
	v, err := strconv.ParseInt(expr, 0, 64)
	return int(v), err == nil
}

// The Go side mirrors common.h by hand; a drift silently misreads maps
// and events.
func TestGoMirrorsCommonH(t *testing.T) {
	c := cConstants(t)
	check := func(name string, goValue int) {
		t.Helper()
		v, ok := c[name]
		if !ok {
			t.Errorf("common.h has no %s", name)
			return
		}
		if v != goValue {
			t.Errorf("%s = %d in common.h, %d in Go", name, v, goValue)
		}
	}
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		check("POINT_"+strings.ToUpper(pt.String()), int(pt))
	}
	check("POINT_MAX", int(profiles.NumPoints))

	check("ACTION_POST", int(profiles.ActionPost))
	check("ACTION_DENY", int(profiles.ActionOverride))
	check("ACTION_SIGKILL", int(profiles.ActionSigkill))
	check("ACTION_POST", actionPost)
	check("ACTION_DENY", actionDeny)
	check("ACTION_SIGKILL", actionSigkill)

	for name, v := range map[string]int{
		"MATCH_FAMILY": matchFamily, "MATCH_PROTOCOL": matchProtocol, "MATCH_TYPE": matchType,
		"MATCH_DADDR_IN": matchDaddrIn, "MATCH_DADDR_NOT_IN": matchDaddrNotIn, "MATCH_DPORT_IN": matchDportIn,
		"MATCH_DPORT_NOT_IN": matchDportNotIn, "MATCH_BINARY_IN": matchBinaryIn, "MATCH_BINARY_NOT_IN": matchBinaryNotIn,
		"MATCH_STDIO_INET": matchStdioInet,
		"WORKLOAD_MONITOR": workloadMonitor,
		"EVENT_ENFORCED":   eventEnforced, "EVENT_KILLED": eventKilled, "EVENT_HAS_ADDR": eventHasAddr,
		"EVENT_KILL_PENDING":  eventKillPending,
		"COUNTER_EVENTS_LOST": counterEventsLost, "COUNTER_POINT_BASE": counterPointBase,
		"MAX_SELECTORS": profiles.MaxSelectors, "MAX_PORT_RANGES": profiles.MaxPortRanges, "NAME_LEN": profiles.MaxNameLen,
	} {
		check(name, v)
	}

	for id, name := range map[uint8]string{1: "ENFORCER_CGROUP_SOCK_ADDR", 2: "ENFORCER_CGROUP_SOCK",
		3: "ENFORCER_TRACEPOINT_SIGKILL", 4: "ENFORCER_LSM", 5: "ENFORCER_FMOD_RET"} {
		check(name, int(id))
		if _, ok := enforcers[id]; !ok {
			t.Errorf("decodeEvent does not know %s (%d)", name, id)
		}
	}

	// The generated structs agree with the limits.
	var rules fallbackPointRules
	var sel fallbackSelector
	var name fallbackNameKey
	if len(rules.Sel) != profiles.MaxSelectors || len(sel.Ports) != profiles.MaxPortRanges || len(name.Name) != profiles.MaxNameLen {
		t.Errorf("generated sizes: %d selectors, %d port ranges, %d name bytes", len(rules.Sel), len(sel.Ports), len(name.Name))
	}
	// Counters reads evaluated/posted/denied/killed per point.
	check("COUNTER_MAX", counterPointBase+int(profiles.NumPoints)*4)
	check("OUTCOME_EVALUATED", 0)
	check("OUTCOME_KILLED", 3)
}
