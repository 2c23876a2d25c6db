package profiles

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/seeds"
	"github.com/ocigate/ocigate/profiles/policy"
)

// seedPolicy parses one seed policy file (internal/seeds).
func seedPolicy(t *testing.T, prefix string) *policy.TracingPolicy {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(seeds.Dir(t), prefix+"-*.yaml"))
	if len(files) != 1 {
		t.Fatalf("seed %s: %d files", prefix, len(files))
	}
	docs, err := policy.ParseFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	return docs[0].Policy
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

var (
	private4 = []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8"}
	private8 = append(append([]string{}, private4...), "169.254.0.0/16", "::1/128", "fe80::/10", "fc00::/7")
)

// wantPoints checks the selectors of c against want, point by point; what
// selectors report (Report) is left out: the tests that check it say so.
func wantPoints(t *testing.T, got [NumPoints][]Selector, want map[Point][]Selector) {
	t.Helper()
	for pt := Point(0); pt < NumPoints; pt++ {
		sels, wants := slices.Clone(got[pt]), slices.Clone(want[pt])
		for i := range sels {
			sels[i].Report = Report{}
		}
		for i := range wants {
			wants[i].Report = Report{}
		}
		if !reflect.DeepEqual(sels, wants) {
			t.Errorf("%s:\n got  %+v\n want %+v", pt, got[pt], want[pt])
		}
	}
}

func TestCompileSeed01(t *testing.T) {
	c, err := CompilePolicy(seedPolicy(t, "01"))
	if err != nil {
		t.Fatal(err)
	}
	wantPoints(t, c.Points, map[Point][]Selector{PointConnect: {{
		Policy: "detect-reverse-shell-outbound", Call: "tcp_connect", Protocols: []uint8{6},
		Daddr: AddrMatch{Not: true, Prefixes: prefixes(private8...)}, Action: ActionPost,
	}}})
	if c.TrackSockets || c.Name != "detect-reverse-shell-outbound" || c.At[PointConnect][0].Line != 14 {
		t.Errorf("compiled %+v", c)
	}
}

func TestCompileSeed02(t *testing.T) {
	c, err := CompilePolicy(seedPolicy(t, "02"))
	if err != nil {
		t.Fatal(err)
	}
	var sport []PortRange
	for _, p := range []uint16{4444, 8888, 1337, 31337, 9001, 5555, 6666} {
		sport = append(sport, PortRange{p, p})
	}
	wantPoints(t, c.Points, map[Point][]Selector{
		PointSockCreate: {{Policy: "detect-bind-shell", Call: "sk_alloc", Families: []uint8{2, 10}, Action: ActionPost, NoPost: true}},
		PointListen: {{Policy: "detect-bind-shell", Call: "inet_csk_listen_start", Protocols: []uint8{6},
			Sport: PortMatch{Ranges: sport}, Action: ActionPost}},
	})
	if !c.TrackSockets {
		t.Error("TrackSockets not set")
	}
}

func TestCompileSeed03(t *testing.T) {
	c, err := CompilePolicy(seedPolicy(t, "03"))
	if err != nil {
		t.Fatal(err)
	}
	wantPoints(t, c.Points, map[Point][]Selector{PointConnect: {{
		Policy: "detect-reverse-shell-all-protocols", Call: "security_socket_connect",
		Protocols: []uint8{6, 17}, Families: []uint8{2, 10},
		Daddr: AddrMatch{Not: true, Prefixes: prefixes(private4...)}, Action: ActionPost,
	}}})
}

func TestCompileSeed05(t *testing.T) {
	c, err := CompilePolicy(seedPolicy(t, "05"))
	if err != nil {
		t.Fatal(err)
	}
	wantPoints(t, c.Points, map[Point][]Selector{PointConnect: {{
		Policy: "enforce-no-reverse-shell", Call: "tcp_connect", Protocols: []uint8{6},
		Binaries: []BinaryMatch{{Operator: "In", Values: []string{"/usr/bin/bash", "/bin/bash", "/usr/bin/sh",
			"/bin/sh", "/usr/bin/nc", "/usr/bin/ncat", "/usr/bin/python3", "/usr/bin/perl"}}},
		Daddr:  AddrMatch{Not: true, Prefixes: prefixes(private4...)},
		Action: ActionSigkill,
	}}})
}

func TestCompileAllSeeds(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(seeds.Dir(t), "*.yaml"))
	if len(files) != 7 {
		t.Fatalf("%d seed files, want 7", len(files))
	}
	for _, f := range files {
		docs, err := policy.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := CompilePolicy(docs[0].Policy)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if c.Selectors() == 0 {
			t.Errorf("%s: no selectors", f)
		}
	}
}

// header is the start of a test policy: kprobes begin at line 7.
const header = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: t
spec:
  kprobes:
`

func compileText(t *testing.T, kprobes string) (*Compiled, error) {
	t.Helper()
	docs, err := policy.Parse("t.yaml", []byte(header+kprobes))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return CompilePolicy(docs[0].Policy)
}

const connectArgs = `  - call: security_socket_connect
    args:
    - index: 0
      type: socket
    - index: 1
      type: sockaddr
    - index: 2
      type: int
    selectors:
`

const sockArgs = `  - call: tcp_connect
    args:
    - index: 0
      type: sock
    selectors:
`

// compileErrorCase is a kprobes section that must not compile and its error.
type compileErrorCase struct{ name, kprobes, want string }

// matchArgErrors are matchArgs that cannot be compiled.
var matchArgErrors = []compileErrorCase{
	{"int arg", connectArgs + `    - matchArgs:
      - index: 2
        operator: Equal
        values: ["16"]
`, `t.yaml:17: spec.kprobes[0].selectors[0].matchArgs[0]: Equal on int argument 2 of security_socket_connect is not supported: ocigate reads sk_alloc's family (1); socket creation's family (0), type (1) and protocol (2); the dup calls' new descriptor (1)`},
	{"NotEqual family", `  - call: sk_alloc
    return: true
    args:
    - index: 1
      type: int
    returnArg:
      index: 0
      type: sock
    selectors:
    - matchArgs:
      - index: 1
        operator: NotEqual
        values: [AF_UNIX]
`, `t.yaml:17: spec.kprobes[0].selectors[0].matchArgs[0]: NotEqual on the family of sk_alloc is not supported: it takes Equal (InMap) only`},
	{"two DAddr", sockArgs + `    - matchArgs:
      - index: 0
        operator: DAddr
        values: [10.0.0.0/8]
      - index: 0
        operator: NotDAddr
        values: [10.1.0.0/16]
`, `t.yaml:16: spec.kprobes[0].selectors[0].matchArgs[1]: NotDAddr: a selector holds one destination address match and DAddr at line 13 sets it already`},
	{"two families", connectArgs + `    - matchArgs:
      - index: 0
        operator: Family
        values: [AF_INET]
      - index: 1
        operator: Family
        values: [AF_INET]
`, `t.yaml:20: spec.kprobes[0].selectors[0].matchArgs[1]: Family: a selector holds one family match and Family at line 17 sets it already`},
	{"family > 31", connectArgs + `    - matchArgs:
      - index: 1
        operator: Family
        values: ["40"]
`, `t.yaml:17: spec.kprobes[0].selectors[0].matchArgs[0].values[0]: family 40 cannot be matched: the kernel side matches family 0-31`},
	{"state > 31", sockArgs + `    - matchArgs:
      - index: 0
        operator: State
        values: ["33"]
`, `t.yaml:13: spec.kprobes[0].selectors[0].matchArgs[0].values[0]: state 33 cannot be matched: the kernel side matches state 0-31`},
}

// selectorErrors are selectors whose entries contradict each other or
// exceed what the kernel side holds.
var selectorErrors = []compileErrorCase{
	{"two binaries", sockArgs + `    - matchBinaries:
      - operator: In
        values: [/bin/sh]
      - operator: NotIn
        values: [/bin/bash]
`, `t.yaml:15: spec.kprobes[0].selectors[0].matchBinaries[1]: NotIn: a selector holds one matchBinaries entry of kind In (In/NotIn, Prefix/NotPrefix, Postfix/NotPostfix); the other is at line 13`},
	{"two primaries", sockArgs + `    - matchActions:
      - action: Sigkill
      - action: Override
        argError: -1
`, `t.yaml:14: spec.kprobes[0].selectors[0].matchActions[1]: Override and Sigkill (line 13) in one selector: a selector takes one of Sigkill, Override, NotifyEnforcer and Signal`},
	{"Post and NoPost", sockArgs + `    - matchActions:
      - action: Post
      - action: NoPost
`, `t.yaml:14: spec.kprobes[0].selectors[0].matchActions: Post and NoPost (line 13) in one selector contradict each other`},
	{"long postfix", sockArgs + `    - matchBinaries:
      - operator: Postfix
        values: ["` + strings.Repeat("x", 129) + `"]
`, `t.yaml:12: spec.kprobes[0].selectors[0]: matchBinaries "` + strings.Repeat("x", 129) + `": want 1 to 128 bytes`},
}

// callErrors are selectors that cannot work on their call.
var callErrors = []compileErrorCase{
	{"imaHash off exec", sockArgs + `    - matchActions:
      - action: Post
        imaHash: true
`, `t.yaml:12: spec.kprobes[0].selectors[0]: imaHash: ocigate hashes the executed file, at exec hooks only`},
	{"stack traces off the device layer", sockArgs + `    - matchActions:
      - action: Post
        userStackTrace: true
`, `t.yaml:12: spec.kprobes[0].selectors[0]: kernelStackTrace, userStackTrace: refused here: ocigate takes stack traces at the device-layer hooks only (dev_hard_start_xmit, kfree_skb_reason), whose tracepoint programs can; elsewhere the event's process, parent, binary and arguments say who did it`},
	{"Override on a tracepoint", `  - call: tcp_connect
    args: [{index: 0, type: sock}]
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args: [{index: 4, type: syscall64}]
    selectors:
    - matchArgs: [{index: 0, operator: InMap, values: [sys_dup2]}]
      matchActions: [{action: Override, argError: -1}]
`, `t.yaml:15: spec.tracepoints[0].selectors[0]: Override on a tracepoint: as in Tetragon, a tracepoint cannot change a call's result (Sigkill or Signal can act on it)`},
	{"every system call", `  - call: tcp_connect
    args: [{index: 0, type: sock}]
  tracepoints:
  - subsystem: raw_syscalls
    event: sys_enter
    args: [{index: 4, type: syscall64}]
`, `t.yaml:10: spec.tracepoints[0].selectors: tracepoint raw_syscalls/sys_enter for every system call: refused: outside ocigate's domain (network, exec, FD redirection, memfd): name the system calls with matchArgs Equal or InMap (ocigate enforces sys_bind, sys_connect, sys_dup, sys_dup2, sys_dup3, sys_execve, sys_execveat, sys_fcntl, sys_listen, sys_memfd_create, sys_sendmmsg, sys_sendmsg, sys_sendto, sys_socket)`},
	{"tcp_connect UDP", sockArgs + `    - matchArgs:
      - index: 0
        operator: Protocol
        values: [IPPROTO_UDP]
`, `t.yaml:12: spec.kprobes[0].selectors[0]: tcp_connect sees protocols [6] only: Protocol [17] never matches`},
}

func TestCompileErrorsMatchArgs(t *testing.T) { checkCompileErrors(t, matchArgErrors) }

func TestCompileErrorsSelectors(t *testing.T) { checkCompileErrors(t, selectorErrors) }

func TestCompileErrorsCalls(t *testing.T) { checkCompileErrors(t, callErrors) }

// checkCompileErrors compiles each case's kprobes and wants its error.
func checkCompileErrors(t *testing.T, cases []compileErrorCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := compileText(t, tc.kprobes)
			if err == nil {
				t.Fatalf("compiled: %+v", c)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got  %s\n want %s", err, tc.want)
			}
		})
	}
}

func TestCompileActions(t *testing.T) {
	for _, tc := range []struct {
		name, actions string
		want          Selector
	}{
		{"implicit Post", "", Selector{Action: ActionPost}},
		{"NoPost alone", "      - action: NoPost\n", Selector{Action: ActionPost, NoPost: true}},
		{"Sigkill NoPost", "      - action: Sigkill\n      - action: NoPost\n", Selector{Action: ActionSigkill, NoPost: true}},
		{"Post and Sigkill", "      - action: Post\n      - action: Sigkill\n", Selector{Action: ActionSigkill}},
		{"Override", "      - action: Override\n        argError: -13\n", Selector{Action: ActionOverride, Errno: 13}},
		{"NotifyEnforcer default", "      - action: NotifyEnforcer\n", Selector{Action: ActionNotifyEnforcer, Errno: 1}},
		{"NotifyEnforcer", "      - action: NotifyEnforcer\n        argError: -111\n        argSig: SIGKILL\n",
			Selector{Action: ActionNotifyEnforcer, Errno: 111, Signal: 9}},
		{"Signal", "      - action: Signal\n        argSig: 10\n", Selector{Action: ActionSignal, Signal: 10}},
		{"TrackSock", "      - action: TrackSock\n", Selector{Action: ActionPost}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel := "    - matchArgs:\n      - index: 0\n        operator: DPortPriv\n"
			if tc.actions != "" {
				sel += "      matchActions:\n" + tc.actions
			}
			c, err := compileText(t, sockArgs+sel)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Policy, want.Call, want.Protocols = "t", "tcp_connect", []uint8{6}
			want.Dport = PortMatch{Ranges: []PortRange{PrivilegedPorts}}
			wantPoints(t, c.Points, map[Point][]Selector{PointConnect: {want}})
			if c.TrackSockets != (tc.name == "TrackSock") {
				t.Errorf("TrackSockets %v", c.TrackSockets)
			}
		})
	}
}

func TestCompileOperators(t *testing.T) {
	c, err := compileText(t, connectArgs+`    - matchArgs:
      - index: 0
        operator: NotSPortPriv
      - index: 0
        operator: SAddr
        values: [192.0.2.0/24]
      - index: 0
        operator: DPort
        values: ["80", "8000-8080"]
      - index: 0
        operator: State
        values: [TCP_SYN_SENT]
      - index: 1
        operator: SAddr
        values: ["2001:db8::/32"]
      matchNamespaces:
      - namespace: Net
        operator: NotIn
        values: [host_ns, "4026531840"]
  - call: sk_alloc
    return: true
    args:
    - index: 1
      type: int
    returnArg:
      index: 0
      type: sock
    selectors:
    - matchArgs:
      - index: 1
        operator: Equal
        values: [AF_INET]
  - call: tcp_sendmsg
    args:
    - index: 0
      type: sock
  - call: tcp_close
    args:
    - index: 0
      type: sock
    selectors:
    - matchArgs:
      - index: 0
        operator: NotDPort
        values: ["443"]
  - call: security_socket_connect
    args:
    - index: 1
      type: sockaddr
    selectors:
    - matchArgs:
      - index: 1
        operator: NotSPort
        values: ["53"]
`)
	if err != nil {
		t.Fatal(err)
	}
	wantPoints(t, c.Points, map[Point][]Selector{
		PointConnect: {{Policy: "t", Call: "security_socket_connect",
			Sport:      PortMatch{Not: true, Ranges: []PortRange{{0, 1023}}},
			Saddr:      AddrMatch{Prefixes: prefixes("192.0.2.0/24")},
			Dport:      PortMatch{Ranges: []PortRange{{80, 80}, {8000, 8080}}},
			States:     []uint8{2},
			Daddr:      AddrMatch{Prefixes: prefixes("2001:db8::/32")},
			Namespaces: []NamespaceMatch{{Namespace: "Net", Not: true, Inodes: []uint64{4026531840}, HostNS: true}},
			Action:     ActionPost,
		}, {Policy: "t", Call: "security_socket_connect", Dport: PortMatch{Not: true, Ranges: []PortRange{{53, 53}}}, Action: ActionPost}},
		PointSockCreate: {{Policy: "t", Call: "sk_alloc", Families: []uint8{2}, Action: ActionPost}},
		PointSendmsg:    {{Policy: "t", Call: "tcp_sendmsg", Protocols: []uint8{6}, Action: ActionPost}},
		PointClose: {{Policy: "t", Call: "tcp_close", Protocols: []uint8{6},
			Dport: PortMatch{Not: true, Ranges: []PortRange{{443, 443}}}, Action: ActionPost}},
	})
}

func TestCompileMonitorMode(t *testing.T) {
	docs, err := policy.Parse("m.yaml", []byte(strings.Replace(header, "spec:\n", "spec:\n  options:\n  - name: policy-mode\n    value: monitor\n", 1)+sockArgs+"    - matchActions:\n      - action: Sigkill\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := CompilePolicy(docs[0].Policy)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Points[PointConnect][0]; !s.Monitor || s.Action != ActionSigkill {
		t.Errorf("selector %+v", s)
	}
}

func TestHooksCoverSupportedCalls(t *testing.T) {
	var tracepoints []string
	for _, tp := range policy.SupportedTracepoints {
		if name := strings.TrimSuffix(tp, " (raw)"); !slices.Contains(tracepoints, name) {
			tracepoints = append(tracepoints, name)
		}
	}
	for _, c := range []struct {
		kind  string
		names []string
		hooks map[string]hookDef
	}{{"call", policy.SupportedCalls, kprobeHooks}, {"LSM hook", policy.SupportedLSMHooks, lsmHookDefs},
		{"tracepoint", tracepoints, tracepointHooks}} {
		for _, name := range c.names {
			if _, ok := c.hooks[name]; !ok {
				t.Errorf("%s %s has no enforcement point", c.kind, name)
			}
		}
		if len(c.hooks) != len(c.names) {
			t.Errorf("%d hooks for %d supported %ss", len(c.hooks), len(c.names), c.kind)
		}
	}
}

// RelayedShell selectors are decided at the relay point; the other exec
// selectors of the same call stay at exec, in one group each point.
func TestCompileRelayedShell(t *testing.T) {
	c, err := compileText(t, `  - call: security_bprm_check
    args:
    - index: 0
      type: linux_binprm
    selectors:
    - matchBinaries:
      - operator: In
        values: [/bin/sh, /usr/bin/bash]
      matchArgs:
      - index: 0
        operator: RelayedShell
      matchActions:
      - action: Sigkill
    - matchArgs:
      - index: 0
        operator: StdioSocket
      matchActions:
      - action: Post
`)
	if err != nil {
		t.Fatal(err)
	}
	relay, exec := c.Points[PointRelay], c.Points[PointExec]
	if len(relay) != 1 || !relay[0].Relayed || relay[0].Action != ActionSigkill ||
		len(relay[0].Binaries) != 1 || !slices.Equal(relay[0].Binaries[0].Values, []string{"/bin/sh", "/usr/bin/bash"}) {
		t.Errorf("relay selectors %+v", relay)
	}
	if len(exec) != 1 || exec[0].Relayed || !exec[0].StdioInet {
		t.Errorf("exec selectors %+v", exec)
	}
}

// matchPIDs NotIn entries merge; matchCapabilities is a mask of one set.
func TestCompileCapsAndPids(t *testing.T) {
	c, err := compileText(t, sockArgs+`    - matchPIDs:
      - {operator: NotIn, followForks: true, isNamespacePID: true, values: [1]}
      - {operator: NotIn, followForks: true, isNamespacePID: true, values: [0]}
      matchCapabilities:
      - {type: Permitted, operator: In, values: [CAP_NET_RAW, CAP_SYS_ADMIN]}
`)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Points[PointConnect][0]
	if s.PIDs == nil || !s.PIDs.Not || !s.PIDs.Follow || !s.PIDs.Namespace || !slices.Equal(s.PIDs.Values, []uint32{1, 0}) {
		t.Errorf("pids %+v", s.PIDs)
	}
	if s.Caps == nil || s.Caps.Set != 2 || s.Caps.Not || s.Caps.Mask != 1<<13|1<<21 {
		t.Errorf("caps %+v", s.Caps)
	}
	_, err = compileText(t, sockArgs+`    - matchPIDs:
      - {operator: In, values: [1]}
      - {operator: In, values: [2]}
`)
	if err == nil || !strings.Contains(err.Error(), "one matchPIDs entry with In") {
		t.Errorf("two In entries: %v", err)
	}
}

// matchNamespaceChanges is a mask of Tetragon's namespace types; one
// entry per selector.
func TestCompileNamespaceChanges(t *testing.T) {
	c, err := compileText(t, sockArgs+`    - matchNamespaceChanges:
      - {operator: NotIn, values: [Mnt, User]}
`)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Points[PointConnect][0]
	if s.NsChanges == nil || !s.NsChanges.Not || s.NsChanges.Mask != 1<<2|1<<9 {
		t.Errorf("namespace changes %+v", s.NsChanges)
	}
	_, err = compileText(t, sockArgs+`    - matchNamespaceChanges:
      - {operator: In, values: [Net]}
      - {operator: In, values: [Pid]}
`)
	if err == nil || !strings.Contains(err.Error(), "one matchNamespaceChanges entry") {
		t.Errorf("two entries: %v", err)
	}
}

// The accept point reports only: enforcing actions and a new state
// other than TCP_ESTABLISHED are refused, TrackSock on the child is not.
func TestCompileAccept(t *testing.T) {
	c, err := compileText(t, `  - call: tcp_set_state
    args: [{index: 0, type: sock}, {index: 1, type: int}]
    selectors:
    - matchArgs:
      - {index: 0, operator: State, values: [TCP_SYN_RECV]}
      - {index: 1, operator: Equal, values: ["1"]}
`)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Points[PointAccept]
	if len(s) != 1 || s[0].Variant != acceptEstablished || !slices.Equal(s[0].States, []uint8{3}) {
		t.Errorf("accept selectors %+v", s)
	}
	_, err = compileText(t, `  - call: tcp_set_state
    args: [{index: 0, type: sock}, {index: 1, type: int}]
    selectors:
    - matchArgs:
      - {index: 1, operator: Equal, values: ["7"]}
      matchActions:
      - {action: Sigkill}
`)
	for _, want := range []string{"new state [7]", "Sigkill at an accepted connection"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q: %v", want, err)
		}
	}
}
