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

// softirq reports whether h decides where the kernel works for a
// workload's socket outside its processes: accepted connections,
// received packets, and packets at a device (which the kernel may send
// from a queue, in softirq or another task's context).
func (h hookDef) softirq() bool {
	return h.accepts() || slices.Contains(h.points, PointReceive) || h.xmits()
}

// xmits reports whether h decides at the device layer: packets of a
// workload's sockets leaving through a device (xmit) or dropped (drop).
func (h hookDef) xmits() bool {
	return slices.Contains(h.points, PointXmit) || slices.Contains(h.points, PointDrop)
}

// acceptChecks refuses what the accept point cannot evaluate or carry
// out: it runs in softirq, outside any process, and reports only.
func (c *compiler) acceptChecks(ps *policy.Selector, h hookDef, path string) {
	if !h.softirq() {
		return
	}
	what, closest := "an accepted connection", "Override at the listen (security_socket_listen) or the bind"
	where := "the kernel handles it in softirq, where no call can be refused and no process signalled"
	switch {
	case h.xmits():
		what, closest = "a packet at the device layer", "Override or Sigkill at the sender's connect or send (ip_output, security_socket_sendmsg)"
		where = "the kernel may send or drop it from a queue, in softirq or another task's context, after the call that sent it returned"
	case !h.accepts():
		what, closest = "a received packet", "Override at the sender's connect or send, where it is a workload's"
	}
	for i := range ps.Actions {
		a := &ps.Actions[i]
		if slices.Contains(refusing, a.Action) {
			c.errorf(a.Pos, path, "%s at %s: refused: %s; ocigate reports it (Post) for the socket's workload; closest: %s", a.Action, what, where, closest)
		}
	}
	if len(ps.Capabilities) > 0 {
		c.errorf(ps.Pos, join(path, "matchCapabilities"), "refused at %s: the kernel handles it in softirq, outside the socket's process, whose credentials are not at hand; closest: matchBinaries", what)
	}
	if len(ps.PIDs) > 0 {
		c.errorf(ps.Pos, join(path, "matchPIDs"), "refused at %s: the kernel handles it in softirq, outside the socket's process; closest: matchBinaries", what)
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
