package profiles

import (
	"slices"

	"github.com/ocigate/ocigate/profiles/policy"
)

// tcpEstablished is TCP_ESTABLISHED, the state an accepted connection
// reaches (tcp_set_state's second argument).
const tcpEstablished = 1

// accepts reports whether h decides at the accept point: the connections
// the kernel accepts for a listener, in softirq.
func (h hookDef) accepts() bool { return slices.Contains(h.points, PointAccept) }

// acceptChecks refuses what the accept point cannot evaluate or carry
// out: it runs in softirq, outside any process, and reports only.
func (c *compiler) acceptChecks(ps *policy.Selector, h hookDef, path string) {
	if !h.accepts() {
		return
	}
	for i := range ps.Actions {
		a := &ps.Actions[i]
		if slices.Contains(refusing, a.Action) {
			c.errorf(a.Pos, path, "%s at an accepted connection: refused: the kernel accepts it in softirq, where no call can be refused and no process signalled; ocigate reports it (Post) for the listener's workload; closest: Override at the listen (security_socket_listen) or the bind", a.Action)
		}
	}
	if len(ps.Capabilities) > 0 {
		c.errorf(ps.Pos, join(path, "matchCapabilities"), "refused at an accepted connection: the kernel accepts it in softirq, outside the listener's process, whose credentials are not at hand; closest: matchBinaries (the listener's binary)")
	}
	if len(ps.PIDs) > 0 {
		c.errorf(ps.Pos, join(path, "matchPIDs"), "refused at an accepted connection: the kernel accepts it in softirq, outside the listener's process; closest: matchBinaries (the listener's binary)")
	}
}

// acceptState compiles tcp_set_state's new state: ocigate sees the
// passive side's change to TCP_ESTABLISHED only, so a match that allows
// it needs no kernel predicate and one that does not never matches.
func (b *selBuilder) acceptState(k *policy.Kprobe, m *policy.ArgMatch, field string) {
	if m.Operator != "Equal" && m.Operator != "InMap" {
		b.c.errorf(m.Pos, field, "%s on the new state of %s is not supported: it takes Equal (InMap) only", m.Operator, k.Call)
		return
	}
	if !slices.Contains(m.Numbers, tcpEstablished) {
		b.c.errorf(m.Pos, field, "%s's new state %v: refused: ocigate sees a workload's TCP state change where the kernel accepts a connection for it (TCP_SYN_RECV to TCP_ESTABLISHED, 1) only", k.Call, m.Numbers)
	}
}
