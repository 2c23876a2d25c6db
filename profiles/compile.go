package profiles

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/profiles/policy"
)

// Compiled is one TracingPolicy compiled to selectors, not yet placed in a
// profile: every selector is in group 0 and Compile sets the group.
type Compiled struct {
	Name string // metadata.name: the Policy of every selector
	Pos  policy.Pos
	// Points holds the policy's selectors per point in YAML order: the
	// order of its kprobes, then of each kprobe's selectors.
	Points [NumPoints][]Selector
	// At is where each selector of Points was written (same shape).
	At [NumPoints][]policy.Pos
	// TrackSockets is set when sk_alloc's returnArgAction or a matchActions
	// entry is TrackSock: the profile asks for socket ownership tracking.
	TrackSockets bool
}

// Selectors counts the selectors of all points.
func (c *Compiled) Selectors() int {
	n := 0
	for _, s := range c.Points {
		n += len(s)
	}
	return n
}

// hook is what a supported kprobe call becomes.
type hook struct {
	point Point // the enforcement point; -1: no kernel selectors
	tcp   bool  // the call sees TCP sockets only: Protocols = {TCP}
}

// hooks maps policy.SupportedCalls to enforcement points (docs/profiles.md,
// "Calls").
var hooks = map[string]hook{
	"tcp_connect":             {PointConnect, true},
	"security_socket_connect": {PointConnect, false},
	"inet_csk_listen_start":   {PointListen, true},
	"tcp_sendmsg":             {PointSendmsg, true},
	"tcp_close":               {PointClose, true},
	"sk_alloc":                {PointSockCreate, false},
	"__sk_free":               {-1, false},
	"dup2":                    {PointDup, false},
	"dup3":                    {PointDup, false},
	"dup":                     {PointDup, false},
	"fcntl":                   {PointDup, false},
	"security_bprm_check":     {PointExec, false},
	"memfd_create":            {PointMemfd, false},
}

// target is the selector predicate an argument operator fills.
type target int

const (
	tDaddr target = iota
	tSaddr
	tDport
	tSport
	tProtocol
	tFamily
	tState
)

var targetNames = []string{"destination address", "source address", "destination port",
	"source port", "protocol", "family", "state"}

// operand is what one matchArgs operator means.
type operand struct {
	t    target
	not  bool
	priv bool // *PortPriv: the privileged ports, no values
}

// sockOps are the operators on sock and socket arguments.
var sockOps = map[string]operand{
	"DAddr": {t: tDaddr}, "NotDAddr": {t: tDaddr, not: true},
	"SAddr": {t: tSaddr}, "NotSAddr": {t: tSaddr, not: true},
	"DPort": {t: tDport}, "NotDPort": {t: tDport, not: true},
	"SPort": {t: tSport}, "NotSPort": {t: tSport, not: true},
	"DPortPriv": {t: tDport, priv: true}, "NotDPortPriv": {t: tDport, not: true, priv: true},
	"SPortPriv": {t: tSport, priv: true}, "NotSPortPriv": {t: tSport, not: true, priv: true},
	"Protocol": {t: tProtocol}, "Family": {t: tFamily}, "State": {t: tState},
}

// sockaddrOps are the operators on sockaddr arguments. Tetragon's sockaddr
// "SAddr" and "SPort" are the address and port in the sockaddr: for
// security_socket_connect, the destination.
var sockaddrOps = map[string]operand{
	"SAddr": {t: tDaddr}, "NotSAddr": {t: tDaddr, not: true},
	"SPort": {t: tDport}, "NotSPort": {t: tDport, not: true},
	"SPortPriv": {t: tDport, priv: true}, "NotSPortPriv": {t: tDport, not: true, priv: true},
	"Family": {t: tFamily},
}

// skAllocFamily is the index of sk_alloc's family argument.
const skAllocFamily = 1

// callVariants tells apart calls that share a point: the kernel reports
// which one it saw.
var callVariants = map[string]uint8{"dup": 1, "dup2": 2, "dup3": 3, "fcntl": 4}

// dupNewFD is the index of the new descriptor argument of the dup calls
// (for dup and fcntl: the descriptor they returned).
const dupNewFD = 1

// compiler collects the errors of compiling one policy or profile.
type compiler struct {
	errs policy.Errors
}

func (c *compiler) errorf(pos policy.Pos, field, format string, args ...any) {
	c.errs = append(c.errs, &policy.Error{File: pos.File, Line: pos.Line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *compiler) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs
}

// CompilePolicy compiles one TracingPolicy. Its errors are a policy.Errors
// whose lines read "file:line: field: message".
func CompilePolicy(tp *policy.TracingPolicy) (*Compiled, error) {
	return compilePolicy(tp, "")
}

// compilePolicy compiles tp; path prefixes its fields (inline policies).
func compilePolicy(tp *policy.TracingPolicy, path string) (*Compiled, error) {
	c := &compiler{}
	out := &Compiled{Name: tp.Name, Pos: tp.Pos}
	monitor := tp.Mode == "monitor"
	for ki := range tp.Kprobes {
		k := &tp.Kprobes[ki]
		kpath := fmt.Sprintf("%s[%d]", join(path, "spec.kprobes"), ki)
		h, ok := hooks[k.Call]
		if !ok {
			c.errorf(k.Pos, join(kpath, "call"), "%q is not supported", k.Call)
			continue
		}
		if k.ReturnArgAction == "TrackSock" {
			if k.Call != "sk_alloc" {
				c.errorf(k.Pos, join(kpath, "returnArgAction"), "TrackSock is supported on sk_alloc only, not %s", k.Call)
			}
			out.TrackSockets = true
		}
		sels := k.Selectors
		if len(sels) == 0 {
			// Tetragon reports every call of a kprobe without selectors.
			sels = []policy.Selector{{Pos: k.Pos, Actions: []policy.Action{{Pos: k.Pos, Action: "Post"}}, ImplicitPost: true}}
		}
		for si := range sels {
			ps := &sels[si]
			spath := fmt.Sprintf("%s[%d]", join(kpath, "selectors"), si)
			if len(k.Selectors) == 0 {
				spath = join(kpath, "selectors")
			}
			s, track, ok := c.selector(k, ps, h, spath)
			out.TrackSockets = out.TrackSockets || track
			if !ok || h.point < 0 {
				continue
			}
			s.Policy, s.Call, s.Monitor, s.Variant = tp.Name, k.Call, monitor, callVariants[k.Call]
			if err := s.validate(); err != nil {
				c.errorf(ps.Pos, spath, "%v", err)
				continue
			}
			pt := h.point
			if s.Relayed {
				pt = PointRelay // decided where argv and the peer are known
			}
			out.Points[pt] = append(out.Points[pt], s)
			out.At[pt] = append(out.At[pt], ps.Pos)
		}
	}
	addInternal(tp, out, c)
	if err := c.err(); err != nil {
		sortErrs(c.errs)
		return nil, err
	}
	return out, nil
}

// selector compiles one selector of kprobe k; track says it has a TrackSock
// action.
func (c *compiler) selector(k *policy.Kprobe, ps *policy.Selector, h hook, path string) (s Selector, track, ok bool) {
	n := len(c.errs)
	b := &selBuilder{c: c, s: &s, set: map[target]string{}}
	for i := range ps.Args {
		b.arg(k, &ps.Args[i], fmt.Sprintf("%s[%d]", join(path, "matchArgs"), i))
	}
	if h.tcp {
		b.tcpOnly(k, ps, path)
	}
	kinds := map[string]int{}
	for i, m := range ps.Binaries {
		field := fmt.Sprintf("%s[%d]", join(path, "matchBinaries"), i)
		kind := strings.TrimPrefix(m.Operator, "Not")
		if line, dup := kinds[kind]; dup {
			c.errorf(m.Pos, field, "%s: a selector holds one matchBinaries entry of kind %s (In/NotIn, Prefix/NotPrefix, Postfix/NotPostfix); the other is at line %d", m.Operator, kind, line)
			continue
		}
		kinds[kind] = m.Line
		s.Binaries = append(s.Binaries, BinaryMatch{Operator: m.Operator, Values: slices.Clone(m.Values)})
	}
	for _, m := range ps.Namespaces {
		s.Namespaces = append(s.Namespaces, NamespaceMatch{Namespace: m.Namespace, Not: m.Operator == "NotIn",
			Inodes: slices.Clone(m.Inodes), HostNS: m.HostNS})
	}
	track = c.actions(k, ps, &s, h, path)
	return s, track, len(c.errs) == n
}

// actions fills the action of s from the selector's matchActions.
func (c *compiler) actions(k *policy.Kprobe, ps *policy.Selector, s *Selector, h hook, path string) (track bool) {
	var primary *policy.Action // the action that decides, Post excepted
	var post, noPost *policy.Action
	for i := range ps.Actions {
		a := &ps.Actions[i]
		field := fmt.Sprintf("%s[%d]", join(path, "matchActions"), i)
		if ps.ImplicitPost {
			field = path
		}
		switch a.Action {
		case "Post":
			post = a
		case "NoPost":
			noPost = a
		case "TrackSock":
			track = true
		case "UntrackSock":
		case "Sigkill", "Override", "NotifyEnforcer", "Signal":
			if primary != nil {
				c.errorf(a.Pos, field, "%s and %s (line %d) in one selector: a selector takes one of Sigkill, Override, NotifyEnforcer and Signal", a.Action, primary.Action, primary.Line)
				continue
			}
			primary = a
		default:
			c.errorf(a.Pos, field, "action %q is not supported", a.Action)
		}
	}
	if post != nil && noPost != nil {
		c.errorf(noPost.Pos, join(path, "matchActions"), "Post and NoPost (line %d) in one selector contradict each other", post.Line)
	}
	if h.point < 0 {
		// __sk_free: only UntrackSock (and NoPost) can be honoured.
		bad := primary
		if bad == nil {
			bad = post
		}
		if bad != nil {
			what := bad.Action
			if ps.ImplicitPost {
				what = "Post (a selector without matchActions reports)"
			}
			c.errorf(bad.Pos, path, "%s on %s: ocigate only stops tracking sockets on %s and cannot report or act on it; use matchActions UntrackSock and NoPost", what, k.Call, k.Call)
		}
		return track
	}
	s.Action, s.NoPost = ActionPost, noPost != nil
	if primary == nil {
		return track
	}
	switch primary.Action {
	case "Sigkill":
		s.Action = ActionSigkill
	case "Override":
		s.Action, s.Errno = ActionOverride, -int(primary.ArgError)
	case "NotifyEnforcer":
		s.Action, s.Errno, s.Signal = ActionNotifyEnforcer, -int(primary.ArgError), primary.ArgSig
		if !primary.HasArgError {
			s.Errno = int(unix.EPERM)
		}
	case "Signal":
		s.Action, s.Signal = ActionSignal, primary.ArgSig
	}
	if (s.Action == ActionOverride || s.Action == ActionNotifyEnforcer) && s.Errno <= 0 {
		c.errorf(primary.Pos, path, "%s: argError %d: want a negative errno such as -1 (EPERM)", primary.Action, primary.ArgError)
	}
	return track
}

// selBuilder fills one selector's predicates from matchArgs, refusing a
// second predicate of one kind: the kernel holds one per kind.
type selBuilder struct {
	c   *compiler
	s   *Selector
	set map[target]string // predicate → "OPERATOR at line N" that set it
}

func (b *selBuilder) claim(t target, m *policy.ArgMatch, field string) bool {
	if prev, dup := b.set[t]; dup {
		b.c.errorf(m.Pos, field, "%s: a selector holds one %s match and %s sets it already", m.Operator, targetNames[t], prev)
		return false
	}
	b.set[t] = fmt.Sprintf("%s at line %d", m.Operator, m.Line)
	return true
}

func (b *selBuilder) arg(k *policy.Kprobe, m *policy.ArgMatch, field string) {
	c, s := b.c, b.s
	var ops map[string]operand
	switch m.ArgType {
	case "sock", "socket":
		ops = sockOps
	case "sockaddr":
		ops = sockaddrOps
	case "linux_binprm": // the exec
		switch m.Operator {
		case "StdioSocket":
			s.StdioInet = true
		case "Fileless":
			s.Fileless = true
		case "RelayedShell":
			s.Relayed = true
		}
		return
	case "fd": // dup's old descriptor: the family of the socket it is
		if b.claim(tFamily, m, field) {
			s.Families = b.small(m, field, "family")
		}
		return
	case "int":
		if callVariants[k.Call] != 0 && m.Index == dupNewFD {
			if m.Operator != "Equal" {
				c.errorf(m.Pos, field, "%s on the new descriptor of %s is not supported: it takes Equal only", m.Operator, k.Call)
				return
			}
			s.Fds = b.small(m, field, "descriptor")
			return
		}
		if k.Call != "sk_alloc" || m.Index != skAllocFamily {
			c.errorf(m.Pos, field, "operator %s on int arg %d of %s is not supported (only sk_alloc's family and dup's new descriptor)", m.Operator, m.Index, k.Call)
			return
		}
		if m.Operator != "Equal" {
			c.errorf(m.Pos, field, "%s on family is not supported: the family match of sk_alloc takes Equal only", m.Operator)
			return
		}
		if b.claim(tFamily, m, field) {
			s.Families = b.small(m, field, "family")
		}
		return
	}
	op, ok := ops[m.Operator]
	if !ok {
		c.errorf(m.Pos, field, "operator %s on %s arg %d of %s is not supported", m.Operator, m.ArgType, m.Index, k.Call)
		return
	}
	if !b.claim(op.t, m, field) {
		return
	}
	switch op.t {
	case tDaddr:
		s.Daddr = AddrMatch{Not: op.not, Prefixes: slices.Clone(m.Prefixes)}
	case tSaddr:
		s.Saddr = AddrMatch{Not: op.not, Prefixes: slices.Clone(m.Prefixes)}
	case tDport:
		s.Dport = ports(op, m)
	case tSport:
		s.Sport = ports(op, m)
	case tProtocol:
		for i, v := range m.Numbers {
			if v < 0 || v > 255 {
				c.errorf(m.Pos, fmt.Sprintf("%s[%d]", join(field, "values"), i), "protocol %d: want 0-255", v)
				continue
			}
			s.Protocols = append(s.Protocols, uint8(v))
		}
	case tFamily:
		s.Families = b.small(m, field, "family")
	case tState:
		s.States = b.small(m, field, "state")
	}
}

// small converts values the kernel keeps in a 32-bit set (families, states).
func (b *selBuilder) small(m *policy.ArgMatch, field, what string) []uint8 {
	var out []uint8
	for i, v := range m.Numbers {
		if v < 0 || v > 31 {
			b.c.errorf(m.Pos, fmt.Sprintf("%s[%d]", join(field, "values"), i), "%s %d cannot be matched: the kernel side matches %s 0-31", what, v, what)
			continue
		}
		out = append(out, uint8(v))
	}
	return out
}

func ports(op operand, m *policy.ArgMatch) PortMatch {
	if op.priv {
		return PortMatch{Not: op.not, Ranges: []PortRange{PrivilegedPorts}}
	}
	pm := PortMatch{Not: op.not}
	for _, r := range m.Ports {
		pm.Ranges = append(pm.Ranges, PortRange{r.Lo, r.Hi})
	}
	return pm
}

// tcpOnly restricts a selector of a TCP-only call to TCP, keeping a
// Protocol match only when it allows TCP.
func (b *selBuilder) tcpOnly(k *policy.Kprobe, ps *policy.Selector, path string) {
	tcp := uint8(unix.IPPROTO_TCP)
	if _, given := b.set[tProtocol]; given && !slices.Contains(b.s.Protocols, tcp) {
		b.c.errorf(ps.Pos, path, "%s sees TCP sockets only: Protocol %v never matches", k.Call, b.s.Protocols)
	}
	b.s.Protocols = []uint8{tcp}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Compile compiles a WorkloadProfile: each policy it lists (lookup finds
// those given by name) becomes one group at every point it has selectors
// for, groups in the order the profile lists the policies. Its errors are
// a policy.Errors whose lines read "file:line: field: message".
func Compile(wp *policy.WorkloadProfile, lookup func(name string) (*policy.TracingPolicy, bool)) (*Profile, error) {
	c := &compiler{}
	resolve := func(i int, ref policy.PolicyRef) *Compiled {
		path := fmt.Sprintf("spec.policies[%d]", i)
		tp, prefix := ref.Inline, path+".inline"
		if tp == nil {
			var ok bool
			if tp, ok = lookup(ref.Name); !ok || tp == nil {
				c.errorf(ref.Pos, path+".name", "unknown TracingPolicy %q", ref.Name)
				return nil
			}
			prefix = ""
		}
		compiled, err := compilePolicy(tp, prefix)
		c.errs = appendErrs(c.errs, err)
		return compiled
	}
	p, _ := assemble(wp, resolve, c)
	if err := c.err(); err != nil {
		sortErrs(c.errs)
		return nil, err
	}
	return p, nil
}

// assemble builds wp's profile from its compiled policies; resolve reports
// its own errors and returns nil for a policy that cannot be used.
func assemble(wp *policy.WorkloadProfile, resolve func(int, policy.PolicyRef) *Compiled, c *compiler) (*Profile, bool) {
	n := len(c.errs)
	p := &Profile{Name: wp.Name, Mode: Mode(wp.Mode), FailOpen: wp.FailurePolicy == "open", NoProcessEvents: wp.NoProcessEvents}
	if p.Mode != ModeEnforce && p.Mode != ModeMonitor {
		c.errorf(wp.Pos, "spec.mode", "profile %q: mode %q: want %s or %s", wp.Name, wp.Mode, ModeEnforce, ModeMonitor)
	}
	if wp.FailurePolicy != "" && wp.FailurePolicy != "open" && wp.FailurePolicy != "closed" {
		c.errorf(wp.Pos, "spec.failurePolicy", "profile %q: failure policy %q: want closed or open", wp.Name, wp.FailurePolicy)
	}
	track := false
	var groups [NumPoints]int
	for i, ref := range wp.Policies {
		cp := resolve(i, ref)
		if cp == nil {
			continue
		}
		track = track || cp.TrackSockets
		field := fmt.Sprintf("spec.policies[%d]", i)
		for pt, sels := range cp.Points {
			if len(sels) == 0 {
				continue
			}
			if have := len(p.Points[pt]); have <= MaxSelectors && have+len(sels) > MaxSelectors {
				c.errorf(ref.Pos, field, "profile %q: policy %q brings %s to %d selectors: at most %d per point, all policies together", wp.Name, cp.Name, Point(pt), have+len(sels), MaxSelectors)
			}
			// One group per (policy, call), as Tetragon runs each kprobe of
			// each policy: the first matching selector of a call decides
			// for that call.
			callGroup := map[string]int{}
			for _, s := range sels {
				group, ok := callGroup[s.Call]
				if !ok {
					group = groups[pt]
					groups[pt]++
					callGroup[s.Call] = group
					if group == MaxGroups {
						c.errorf(ref.Pos, field, "profile %q: policy %q call %s would be the %dth policy call with selectors at %s: at most %d per point", wp.Name, cp.Name, s.Call, group+1, Point(pt), MaxGroups)
					}
				}
				s.Group = group
				p.Points[pt] = append(p.Points[pt], s)
			}
		}
	}
	p.TrackSockets = track
	if len(c.errs) == n {
		if err := p.Validate(); err != nil {
			c.errorf(wp.Pos, "", "%v", err)
		}
	}
	return p, track
}
