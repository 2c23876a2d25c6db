package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/profiles/policy"
)

func builtinCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := NewCatalog(true)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fromDefault returns Default()'s selectors at pt as policy name's.
func fromDefault(pt Point, name string) []Selector {
	sels := Default().Points[pt]
	for i := range sels {
		sels[i].Policy = name
	}
	return sels
}

func TestBuiltinsLoad(t *testing.T) {
	c := builtinCatalog(t)
	var names []string
	for _, p := range c.Profiles() {
		names = append(names, p.Name)
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
		if p.Mode != ModeEnforce || p.FailOpen {
			t.Errorf("%s: mode %s, fail open %v", p.Name, p.Mode, p.FailOpen)
		}
	}
	if want := []string{"reverse-shell", "ci-runner", "ci-shell-executor", "egress-allowlist"}; !reflect.DeepEqual(names, want) {
		t.Errorf("profiles %q, want %q", names, want)
	}
	if d := c.Default(); d == nil || d.Name != "reverse-shell" {
		t.Errorf("default %v", d)
	}
	if len(c.Notes()) != 0 {
		t.Errorf("notes %q", c.Notes())
	}
	files := BuiltinFiles()
	if len(files) != 4 {
		t.Errorf("%d built-in files", len(files))
	}
	for name, data := range files {
		if !strings.HasPrefix(string(data), "# "+strings.TrimSuffix(filepath.Base(name), ".yaml")+": ") {
			t.Errorf("%s does not start with a comment naming it", name)
		}
	}
}

func TestBuiltinReverseShell(t *testing.T) {
	p, ok := builtinCatalog(t).Get("reverse-shell")
	if !ok {
		t.Fatal("no reverse-shell")
	}
	var bins []string
	for _, b := range []string{"bash", "sh", "nc", "ncat", "python3", "perl", "php", "ruby", "socat", "dash", "nc.openbsd", "nc.traditional"} {
		bins = append(bins, "/bin/"+b, "/usr/bin/"+b)
	}
	for v := 9; v <= 13; v++ {
		bins = append(bins, fmt.Sprintf("/usr/bin/python3.%d", v))
	}
	nonPrivate := AddrMatch{Not: true, Prefixes: prefixes(private8...)}
	wantPoints(t, p.Points, map[Point][]Selector{
		PointConnect: {
			{Policy: "reverse-shell", Call: "tcp_connect", Protocols: []uint8{6},
				Binaries: []BinaryMatch{{Operator: "In", Values: bins}}, Daddr: nonPrivate, Action: ActionSigkill},
			{Policy: "reverse-shell", Call: "security_socket_connect", Group: 1, Families: []uint8{2, 10}, Daddr: nonPrivate, Action: ActionPost},
		},
		PointSockCreate: fromDefault(PointSockCreate, "reverse-shell"),
		PointExec: append([]Selector{
			{Policy: "reverse-shell", Call: "security_bprm_check", StdioInet: true, StdioDialled: true, Action: ActionSigkill},
			{Policy: "reverse-shell", Call: "security_bprm_check", Fileless: true, Action: ActionSigkill},
			{Policy: "reverse-shell", Call: "security_bprm_check", Paths: []BinaryMatch{{Operator: "Prefix", Values: []string{"/dev/shm/"}}}, Action: ActionSigkill},
		}, fromDefault(PointExec, "reverse-shell")...),
		PointMemfd: {{Policy: "reverse-shell", Call: "memfd_create", Action: ActionPost}},
		PointRelay: fromDefault(PointRelay, "reverse-shell"),
		PointDup: {
			{Policy: "reverse-shell", Call: "dup2", Variant: 2, Families: []uint8{2, 10}, Fds: []uint8{0, 1, 2}, Action: ActionPost},
			{Policy: "reverse-shell", Call: "dup3", Variant: 3, Group: 1, Families: []uint8{2, 10}, Fds: []uint8{0, 1, 2}, Action: ActionPost},
			{Policy: "reverse-shell", Call: "dup", Variant: 1, Group: 2, Families: []uint8{2, 10}, Fds: []uint8{0, 1, 2}, Action: ActionPost},
			{Policy: "reverse-shell", Call: "fcntl", Variant: 4, Group: 3, Families: []uint8{2, 10}, Fds: []uint8{0, 1, 2}, Action: ActionPost},
		},
	})
	e := p.Points[PointExec][3]
	if !e.StdioInet || e.Action != ActionSigkill || len(e.Names.Names) == 0 {
		t.Errorf("exec selector %+v", e)
	}
}

func TestBuiltinEgressAllowlist(t *testing.T) {
	p, _ := builtinCatalog(t).Get("egress-allowlist")
	loop := prefixes("127.0.0.0/8", "::1/128")
	addr := Selector{Policy: "egress-allowlist", Call: "security_socket_connect", Families: []uint8{2, 10},
		Daddr: AddrMatch{Not: true, Prefixes: loop}, Action: ActionOverride, Errno: 1}
	port := Selector{Policy: "egress-allowlist", Call: "security_socket_connect", Families: []uint8{2, 10},
		Dport: PortMatch{Not: true, Ranges: []PortRange{{0, 65535}}}, Action: ActionOverride, Errno: 1}
	udpAddr, udpPort := addr, port
	udpAddr.Call, udpAddr.Protocols = "security_socket_sendmsg", []uint8{17}
	udpPort.Call, udpPort.Protocols = "security_socket_sendmsg", []uint8{17}
	wantPoints(t, p.Points, map[Point][]Selector{
		PointConnect: {addr, port},
		PointSendmsg: {udpAddr, udpPort},
	})
}

func TestBuiltinCIRunner(t *testing.T) {
	c := builtinCatalog(t)
	p, _ := c.Get("ci-runner")
	rs, _ := c.Get("reverse-shell")
	egress := Selector{Policy: "ci-runner-egress", Call: "security_socket_connect", Group: 2, Families: []uint8{2, 10},
		Daddr: AddrMatch{Not: true, Prefixes: prefixes("127.0.0.0/8", "::1/128")}, Action: ActionOverride, Errno: 1}
	udp := egress
	udp.Call, udp.Protocols, udp.Group = "security_socket_sendmsg", []uint8{17}, 0
	wantPoints(t, p.Points, map[Point][]Selector{
		PointConnect:    append(append([]Selector{}, rs.Points[PointConnect]...), egress),
		PointSendmsg:    {udp},
		PointSockCreate: rs.Points[PointSockCreate],
		PointExec:       rs.Points[PointExec],
		PointRelay:      rs.Points[PointRelay],
		PointDup:        rs.Points[PointDup],
		PointMemfd:      rs.Points[PointMemfd],
	})
}

// A user's filled-in copy of a built-in file replaces it and keeps the
// internal selectors.
func TestBuiltinCopy(t *testing.T) {
	dir := t.TempDir()
	data := string(BuiltinFiles()["builtin/ci-runner.yaml"])
	data = strings.Replace(data, "        - 127.0.0.0/8\n", "        - 127.0.0.0/8\n        - 198.51.100.0/24\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "ci.yaml"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := NewCatalog(true, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Notes()) != 2 || !strings.Contains(c.Notes()[0], `TracingPolicy "ci-runner-egress" replaces the built-in one`) ||
		!strings.Contains(c.Notes()[1], `WorkloadProfile "ci-runner" replaces the built-in one`) {
		t.Errorf("notes %q", c.Notes())
	}
	p, _ := c.Get("ci-runner")
	want := prefixes("127.0.0.0/8", "198.51.100.0/24", "::1/128")
	if got := p.Points[PointSendmsg][0].Daddr.Prefixes; !reflect.DeepEqual(got, want) {
		t.Errorf("sendmsg prefixes %v", got)
	}
	if got := p.Points[PointConnect][2].Daddr.Prefixes; !reflect.DeepEqual(got, want) {
		t.Errorf("connect prefixes %v", got)
	}
}

func TestInternalAnnotationErrors(t *testing.T) {
	src := strings.Replace(header, "  name: t\n", "  name: t\n  annotations:\n    ocigate.io/internal-selectors: \"udp-send, nope, udp-send\"\n", 1) +
		sockArgs + "    - matchActions:\n      - action: Post\n"
	docs, err := policy.Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = CompilePolicy(docs[0].Policy)
	want := `t.yaml:1: metadata.annotations.ocigate.io/internal-selectors: "nope" is not an internal selector set (known: raw-packet-sockets, relayed-shell, shell-stdio-inet, udp-send)` + "\n" +
		`t.yaml:1: metadata.annotations.ocigate.io/internal-selectors: "udp-send" given twice`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// ci-shell-executor keeps the default's exec selectors, drops its
// relayed-shell selector for the egress allowlist, and is therefore
// weaker than the default: only the operator can give it to a container.
func TestBuiltinCIShellExecutor(t *testing.T) {
	c := builtinCatalog(t)
	p, _ := c.Get("ci-shell-executor")
	rs, _ := c.Get("reverse-shell")
	if len(p.Points[PointRelay]) != 0 {
		t.Errorf("relay selectors %v", p.Points[PointRelay])
	}
	preds := map[string]bool{}
	for _, s := range p.Points[PointExec] {
		preds[s.Predicate()] = true
	}
	for _, want := range []string{PredicateDialledStdio, PredicateShellStdio, PredicateFileless} {
		if !preds[want] {
			t.Errorf("exec lacks predicate %s: %v", want, p.Points[PointExec])
		}
	}
	if len(p.Points[PointConnect]) == 0 || len(p.Points[PointSendmsg]) == 0 {
		t.Errorf("no egress allowlist: %v", p.Points)
	}
	w := strings.Join(Weaknesses(rs, p), "; ")
	if !strings.Contains(w, "relay") {
		t.Errorf("weaknesses against reverse-shell %q: want the relay point", w)
	}
}
