package policy

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// matchPolicy is a policy with one matchArgs entry on security_socket_connect
// (0 socket, 1 sockaddr, 2 int) or on sk_alloc (1 int family).
func matchPolicy(call string, index int, op, values string) string {
	args := "    - {index: 0, type: socket}\n    - {index: 1, type: sockaddr}\n    - {index: 2, type: int, label: size}\n"
	switch call {
	case "sk_alloc":
		args = "    - {index: 1, type: int}\n"
	case "labelled":
		call = "security_socket_connect"
		args = "    - {index: 2, type: int, label: family}\n"
	}
	vals := ""
	if values != "" {
		vals = "\n        values: " + values
	}
	return fmt.Sprintf(`apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: t
spec:
  kprobes:
  - call: %s
    args:
%s    selectors:
    - matchArgs:
      - index: %d
        operator: %s%s
`, call, args, index, op, vals)
}

func parseMatch(t *testing.T, call string, index int, op, values string) (ArgMatch, error) {
	t.Helper()
	docs, err := Parse("v.yaml", []byte(matchPolicy(call, index, op, values)))
	if err != nil {
		return ArgMatch{}, err
	}
	return docs[0].Policy.Kprobes[0].Selectors[0].Args[0], nil
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// operatorCase is one matchArgs entry on call (default
// security_socket_connect) and what it parses into, or its error.
type operatorCase struct {
	name    string
	call    string
	index   int
	op      string
	values  string
	pfx     []netip.Prefix
	ports   []PortRange
	nums    []int64
	raw     []string
	wantErr string // substring of the error; "" for success
}

// addressValues are CIDRs and addresses, and what is not one.
var addressValues = []operatorCase{
	{name: "v4 CIDRs", index: 0, op: "DAddr", values: `["10.0.0.0/8", 192.168.1.0/24]`, pfx: prefixes("10.0.0.0/8", "192.168.1.0/24")},
	{name: "bare v4 is /32", index: 0, op: "SAddr", values: `["10.1.2.3"]`, pfx: prefixes("10.1.2.3/32")},
	{name: "host bits masked, raw kept", index: 0, op: "NotDAddr", values: `["10.0.0.1/8"]`, pfx: prefixes("10.0.0.0/8"), raw: []string{"10.0.0.1/8"}},
	{name: "IPv6", index: 1, op: "SAddr", values: `["2001:db8::/32", "::1", "fe80::1/10"]`, pfx: prefixes("2001:db8::/32", "::1/128", "fe80::/10")},
	{name: "v4-mapped kept as IPv6", index: 1, op: "NotSAddr", values: `["::ffff:10.0.0.0/104"]`, pfx: prefixes("::ffff:10.0.0.0/104"), raw: []string{"::ffff:10.0.0.0/104"}},
	{name: "prefix too long", index: 0, op: "DAddr", values: `["10.0.0.0/33"]`, wantErr: `values[0]: "10.0.0.0/33" is not a CIDR`},
	{name: "v6 prefix too long", index: 0, op: "DAddr", values: `["::/129"]`, wantErr: `"::/129" is not a CIDR`},
	{name: "bad octet", index: 0, op: "DAddr", values: `["300.1.1.1"]`, wantErr: `"300.1.1.1" is not a CIDR or an IP address`},
	{name: "zone", index: 0, op: "DAddr", values: `["fe80::1%eth0"]`, wantErr: `"fe80::1%eth0" is not a CIDR`},
	{name: "integer is no address", index: 0, op: "DAddr", values: `[10]`, wantErr: `"10" is not a CIDR`},
	{name: "empty string", index: 0, op: "DAddr", values: `[""]`, wantErr: `"" is not a CIDR`},
	{name: "list is no value", index: 0, op: "DAddr", values: `[[1]]`, wantErr: `values[0]: must be a string or an integer, not a list`},
	{name: "float is no value", index: 0, op: "DPort", values: `[1.5]`, wantErr: `values[0]: must be a string or an integer, not the number 1.5`},
}

// portValues are ports and port ranges.
var portValues = []operatorCase{
	{name: "ports", index: 0, op: "DPort", values: `["80", 443, "0", 65535]`, ports: []PortRange{{80, 80}, {443, 443}, {0, 0}, {65535, 65535}}, raw: []string{"80", "443", "0", "65535"}},
	{name: "port ranges", index: 0, op: "NotSPort", values: `["1000-2000", "1000:2000", "0:65535", "7-7"]`, ports: []PortRange{{1000, 2000}, {1000, 2000}, {0, 65535}, {7, 7}}},
	{name: "sockaddr port", index: 1, op: "SPort", values: `[4444]`, ports: []PortRange{{4444, 4444}}},
	{name: "YAML hex integer", index: 0, op: "DPort", values: `[0x50]`, ports: []PortRange{{80, 80}}, raw: []string{"0x50"}},
	{name: "port too big", index: 0, op: "DPort", values: `["65536"]`, wantErr: `"65536" is not a port (0-65535)`},
	{name: "negative port", index: 0, op: "DPort", values: `[-1]`, wantErr: `"-1" is not a port range`},
	{name: "reversed range", index: 0, op: "DPort", values: `["2000-1000"]`, wantErr: `"2000-1000" is an empty port range`},
	{name: "open range", index: 0, op: "DPort", values: `["80-"]`, wantErr: `"80-" is not a port range`},
	{name: "named port", index: 0, op: "DPort", values: `["http"]`, wantErr: `"http" is not a port`},
	{name: "signed port", index: 0, op: "DPort", values: `["+80"]`, wantErr: `"+80" is not a port`},
}

// namedValues are protocols, families and TCP states by name or number,
// and the privileged port operators that take no values.
var namedValues = []operatorCase{
	{name: "protocol names", index: 0, op: "Protocol", values: `[IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_RAW, IPPROTO_SCTP, IPPROTO_IP]`, nums: []int64{6, 17, 1, 58, 255, 132, 0}},
	{name: "protocol numbers", index: 0, op: "Protocol", values: `[6, "17", 255]`, nums: []int64{6, 17, 255}},
	{name: "protocol too big", index: 0, op: "Protocol", values: `[256]`, wantErr: `"256" is not a protocol (IPPROTO_IP`},
	{name: "protocol lowercase", index: 0, op: "Protocol", values: `[ipproto_tcp]`, wantErr: `"ipproto_tcp" is not a protocol`},
	{name: "family names", index: 1, op: "Family", values: `[AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, 2]`, nums: []int64{1, 2, 10, 16, 17, 2}},
	{name: "family unknown", index: 0, op: "Family", values: `[AF_BLUETOOTH]`, wantErr: `"AF_BLUETOOTH" is not an address family`},
	{name: "states", index: 0, op: "State", values: `[TCP_ESTABLISHED, TCP_SYN_SENT, TCP_SYN_RECV, TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_TIME_WAIT, TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LAST_ACK, TCP_LISTEN, TCP_CLOSING, TCP_NEW_SYN_RECV, 7]`, nums: []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 7}},
	{name: "state unknown", index: 0, op: "State", values: `[LISTEN]`, wantErr: `"LISTEN" is not a TCP state`},
	{name: "priv ports take no values", index: 0, op: "DPortPriv", values: ``},
	{name: "priv ports refuse values", index: 0, op: "NotSPortPriv", values: `["1"]`, wantErr: `values: NotSPortPriv takes no values`},
}

// intValues are Equal and NotEqual on int arguments.
var intValues = []operatorCase{
	{name: "int equal", index: 2, op: "Equal", values: `["16", -1, 2147483647]`, nums: []int64{16, -1, 2147483647}},
	{name: "int not equal", index: 2, op: "NotEqual", values: `[0]`, nums: []int64{0}},
	{name: "int overflows int32", index: 2, op: "Equal", values: `["2147483648"]`, wantErr: `"2147483648" is not a 32-bit integer`},
	{name: "AF names only on family", index: 2, op: "Equal", values: `[AF_INET]`, wantErr: `"AF_INET" is not a 32-bit integer`},
	{name: "sk_alloc family names", call: "sk_alloc", index: 1, op: "Equal", values: `[AF_INET, AF_INET6, "2"]`, nums: []int64{2, 10, 2}},
	{name: "labelled family", call: "labelled", index: 2, op: "NotEqual", values: `[AF_UNIX]`, nums: []int64{1}},
	{name: "bad family int", call: "sk_alloc", index: 1, op: "Equal", values: `[AF_X]`, wantErr: `"AF_X" is not an integer or an address family`},
}

// valueLists are values that are missing or not a list.
var valueLists = []operatorCase{
	{name: "values required", index: 0, op: "DAddr", values: ``, wantErr: `matchArgs[0].values: required`},
	{name: "values not empty", index: 0, op: "DAddr", values: `[]`, wantErr: `values: at least one value is required`},
	{name: "values a list", index: 0, op: "DAddr", values: `"10.0.0.0/8"`, wantErr: `values: must be a list, not the string "10.0.0.0/8"`},
}

func TestAddressValues(t *testing.T) { checkOperatorValues(t, addressValues) }

func TestPortValues(t *testing.T) { checkOperatorValues(t, portValues) }

func TestNamedValues(t *testing.T) { checkOperatorValues(t, namedValues) }

func TestIntValues(t *testing.T) { checkOperatorValues(t, intValues) }

func TestValueLists(t *testing.T) { checkOperatorValues(t, valueLists) }

// checkOperatorValues parses each case's match and wants its result.
func checkOperatorValues(t *testing.T, cases []operatorCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := "security_socket_connect"
			if tc.call != "" {
				c = tc.call
			}
			m, err := parseMatch(t, c, tc.index, tc.op, tc.values)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Prefixes, tc.pfx) || !reflect.DeepEqual(m.Ports, tc.ports) || !reflect.DeepEqual(m.Numbers, tc.nums) {
				t.Errorf("got prefixes %v ports %v numbers %v", m.Prefixes, m.Ports, m.Numbers)
			}
			if tc.raw != nil && !reflect.DeepEqual(m.Raw, tc.raw) {
				t.Errorf("raw %q, want %q", m.Raw, tc.raw)
			}
			if m.Operator != tc.op || m.Index != tc.index {
				t.Errorf("operator %q index %d", m.Operator, m.Index)
			}
		})
	}
}

func TestV4MappedStaysV6(t *testing.T) {
	p, err := parseCIDR("::ffff:10.0.0.0/104")
	if err != nil || !p.Addr().Is4In6() || p.Bits() != 104 || p.Addr().Is4() {
		t.Fatalf("%v %v", p, err)
	}
	p, err = parseCIDR("::ffff:10.1.2.3")
	if err != nil || p.Bits() != 128 || !p.Addr().Is4In6() {
		t.Fatalf("%v %v", p, err)
	}
}

func TestSignals(t *testing.T) {
	for in, want := range map[string]int{"SIGKILL": 9, "SIGTERM": 15, "SIGUSR1": 10, "SIGUSR2": 12, "SIGHUP": 1, "9": 9, "64": 64} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "65", "KILL", "sigkill", "-9", ""} {
		if _, err := parseSignal(in); err == nil {
			t.Errorf("parseSignal(%q) succeeded", in)
		}
	}
}
