package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lineOf returns the 1-based line of the first line of src containing marker.
func lineOf(t *testing.T, src, marker string) int {
	t.Helper()
	for i, l := range strings.Split(src, "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	t.Fatalf("marker %q not in source", marker)
	return 0
}

// wantError checks that parsing src as file yields an error that starts
// with "file:LINE: field: " (LINE: the line holding marker) and contains msg.
func wantError(t *testing.T, src, marker, field, msg string) {
	t.Helper()
	_, err := Parse("p.yaml", []byte(src))
	checkError(t, err, fmt.Sprintf("p.yaml:%d: %s: ", lineOf(t, src, marker), field), msg)
}

func checkError(t *testing.T, err error, prefix, msg string) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("got %v, want Errors", err)
	}
	for _, e := range es {
		if s := e.Error(); strings.HasPrefix(s, prefix) && strings.Contains(s, msg) {
			return
		}
	}
	t.Errorf("no error %q...%q in:\n%v", prefix, msg, err)
}

const head = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: p
spec:
  kprobes:
`

// connect is a valid tcp_connect kprobe; tests replace parts of it.
const connect = `  - call: tcp_connect
    syscall: false
    args:
    - index: 0
      type: sock
    selectors:
    - matchArgs:
      - index: 0
        operator: NotDAddr
        values:
        - 10.0.0.0/8
        - 127.0.0.0/8
      matchActions:
      - action: Sigkill
`

func TestValidBase(t *testing.T) {
	if _, err := Parse("p.yaml", []byte(head+connect)); err != nil {
		t.Fatal(err)
	}
}

func edit(old, new string) string { return head + strings.Replace(connect, old, new, 1) }

// errorClass is a document with one error: the line of marker, the field
// path and a message that starts the error.
type errorClass struct{ name, src, marker, field, msg string }

// documentErrors are errors outside the kprobes: kind, apiVersion,
// metadata, spec fields, options and YAML.
var documentErrors = []errorClass{
	{"unsupported option", head + connect + "  options:\n  - name: disable-multi\n    value: \"1\"\n", "disable-multi",
		"spec.options[0].name", `option "disable-multi" is not supported (supported: policy-mode, disable-kprobe-multi, disable-uprobe-multi)`},
	{"bad policy mode", head + connect + "  options:\n  - name: policy-mode\n    value: audit\n", "audit",
		"spec.options[0].value", `"audit" is not a policy mode (supported: monitor, enforce)`},
	{"unsupported spec field", head + connect + "  podSelector:\n    matchLabels: {app: x}\n", "podSelector",
		"spec.podSelector", "refused: ocigate chooses the containers a policy applies to with a WorkloadProfile's match"},
	{"uprobe", head + connect + "  uprobes:\n  - path: /bin/bash\n    symbols: [readline]\n", "- path", "spec.uprobes[0]",
		"uprobe on /bin/bash (readline): refused: a user-space probe, outside ocigate's domain"},
	{"tracepoint out of domain", head + connect + "  tracepoints:\n  - subsystem: syscalls\n    event: sys_enter_openat\n", "- subsystem",
		"spec.tracepoints[0]", "tracepoint syscalls/sys_enter_openat: refused: file access, outside ocigate's domain"},
	{"host only", head + connect + "  hostSelector: {}\n", "hostSelector", "spec.hostSelector",
		"refused: this policy selects host processes only"},
	{"list undefined", strings.Replace(head+connect, "call: tcp_connect", "call: list:nope", 1), "list:nope",
		"spec.kprobes[0].call", `list "nope" is not defined in spec.lists`},
	{"macro undefined", strings.Replace(head+connect, "    - matchArgs:", "    - macros: [m]\n      matchArgs:", 1), "macros",
		"spec.kprobes[0].selectors[0].macros[0]", `macro "m" is not defined in spec.selectorsMacros`},
	{"two enforcers", head + connect + "  enforcers:\n  - calls: [sys_dup]\n  - calls: [sys_dup2] # second\n", "# second",
		"spec.enforcers[1]", "only one enforcer is allowed"},
	{"enforcer out of domain", head + connect + "  enforcers:\n  - calls: [sys_openat]\n", "calls:",
		"spec.enforcers[0].calls[0]", "enforcer on sys_openat: refused: file access"},
	{"unknown kind", strings.Replace(head+connect, "kind: TracingPolicy", "kind: TracingPolicyX", 1), "kind:",
		"kind", `"TracingPolicyX" is not supported (supported: TracingPolicy, TracingPolicyNamespaced`},
	{"unknown apiVersion", strings.Replace(head+connect, "cilium.io/v1alpha1", "cilium.io/v1", 1), "apiVersion",
		"apiVersion", `"cilium.io/v1" is not supported for kind TracingPolicy (supported: cilium.io/v1alpha1)`},
	{"missing kind", strings.Replace(head+connect, "kind: TracingPolicy\n", "", 1), "apiVersion", "kind", "required"},
	{"missing name", strings.Replace(head+connect, "  name: p\n", "  labels: {a: b}\n", 1), "metadata:",
		"metadata.name", "required"},
	{"bad name", strings.Replace(head+connect, "name: p", "name: Bad_Name", 1), "Bad_Name",
		"metadata.name", `"Bad_Name" is not a valid name`},
	{"unknown metadata field", strings.Replace(head+connect, "  name: p\n", "  name: p\n  uid: x\n", 1), "uid",
		"metadata.uid", "unknown field"},
	{"no kprobes", strings.Replace(head, "  kprobes:\n", "  options: [{name: policy-mode, value: monitor}]\n", 1), "spec:",
		"spec.kprobes", "at least one hook is required"},
	{"duplicate key", edit("    syscall: false\n", "    syscall: false\n    syscall: false # dup\n"), "# dup",
		"spec.kprobes[0].syscall", "duplicate field"},
	{"alias", head + strings.Replace(connect, "- 127.0.0.0/8", "- &a 127.0.0.0/8\n        - *a", 1), "*a",
		"spec.kprobes[0].selectors[0].matchArgs[0].values[2]", "YAML aliases (*a) are not supported"},
	{"anchor", head + strings.Replace(connect, "- 127.0.0.0/8", "- &a 127.0.0.0/8", 1), "&a",
		"spec.kprobes[0].selectors[0].matchArgs[0].values[1]", "YAML anchors (&a) are not supported"},
}

// kprobeErrors are errors in a kprobe's own fields: call, args, return.
var kprobeErrors = []errorClass{
	{"unknown field", edit("    syscall: false\n", "    syscall: false\n    frobnicate: 1\n"), "frobnicate",
		"spec.kprobes[0].frobnicate", "unknown field (known: call, syscall,"},
	{"out of domain call", edit("call: tcp_connect", "call: fd_install"), "- call:",
		"spec.kprobes[0]", `kprobe fd_install: refused: file access, outside ocigate's domain (network, exec, FD redirection, memfd): ocigate does not watch file access; closest: `},
	{"out of domain syscall", edit("call: tcp_connect", "call: sys_openat"), "- call:",
		"spec.kprobes[0]", `kprobe sys_openat: refused: file access`},
	{"syscall true", edit("syscall: false", "syscall: true"), "syscall",
		"spec.kprobes[0].syscall", "tcp_connect is a kernel function, not a system call: syscall must be false"},
	{"syscall not bool", edit("syscall: false", `syscall: "no"`), "syscall",
		"spec.kprobes[0].syscall", `must be true or false, not the string "no"`},
	{"wrong arg type", edit("type: sock", "type: socket"), "type: socket",
		"spec.kprobes[0].args[0].type", "argument 0 of tcp_connect is read as sock, not socket"},
	{"unknown arg type", edit("type: sock", "type: strang"), "type: strang",
		"spec.kprobes[0].args[0].type", `"strang" is not an argument type of Tetragon's`},
	{"resolve", edit("type: sock", "type: sock\n      resolve: sk_common"), "resolve",
		"spec.kprobes[0].args[0].resolve", "refused: resolve walks kernel structures by BTF"},
	{"char_buf size", edit("type: sock", "type: sock\n      sizeArgIndex: 3"), "sizeArgIndex",
		"spec.kprobes[0].args[0].sizeArgIndex", "refused: sizeArgIndex sizes the bytes read from a char_buf argument"},
	{"arg index out of call", edit("    - index: 0\n      type: sock\n", "    - index: 0\n      type: sock\n    - index: 1 # here\n      type: int\n"), "# here",
		"spec.kprobes[0].args[1].index", "tcp_connect has no argument 1 that ocigate reads (it reads: 0 sock)"},
	{"arg index range", edit("    - index: 0\n      type: sock", "    - index: 32\n      type: sock"), "index: 32",
		"spec.kprobes[0].args[0].index", "32 is out of range [0, 31]"},
	{"arg declared twice", edit("    - index: 0\n      type: sock\n", "    - index: 0\n      type: sock\n    - index: 0 # again\n      type: sock\n"), "# again",
		"spec.kprobes[0].args[1].index", "argument 0 declared twice"},
	{"return without returnArg", edit("    syscall: false\n", "    syscall: false\n    return: true\n"), "return:",
		"spec.kprobes[0].returnArg", "required with return: true"},
	{"return on void function", strings.Replace(edit("    syscall: false\n", "    syscall: false\n    return: true\n"), "tcp_connect", "tcp_close", 1), "return:",
		"spec.kprobes[0].return", "tcp_close returns nothing"},
	{"returnArgAction needs sock", edit("    syscall: false\n", "    syscall: false\n    return: true\n    returnArg: {index: 0, type: int}\n    returnArgAction: TrackSock\n"), "returnArgAction",
		"spec.kprobes[0].returnArgAction", "TrackSock needs return: true and a returnArg of type sock"},
	{"returnArgAction unknown", edit("    syscall: false\n", "    syscall: false\n    returnArgAction: Post\n"), "returnArgAction",
		"spec.kprobes[0].returnArgAction", `"Post" is not supported (supported: TrackSock, UntrackSock)`},
	{"too many tags", edit("    syscall: false\n", "    syscall: false\n    tags: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q]\n"), "tags",
		"spec.kprobes[0].tags", "17 tags, at most 16 allowed"},
}

// selectorErrors are errors in selectors' matches.
var selectorErrors = []errorClass{
	{"unread field in selector", edit("      matchActions:", "      matchReturnArgs: []\n      matchActions:"), "matchReturnArgs",
		"spec.kprobes[0].selectors[0].matchReturnArgs", "not supported by ocigate: ocigate decides before the call runs"},
	{"unknown field in selector", edit("      matchActions:", "      matchStuff: []\n      matchActions:"), "matchStuff",
		"spec.kprobes[0].selectors[0].matchStuff", "unknown field (known: matchArgs,"},
	{"unknown operator", edit("operator: NotDAddr", "operator: Glob"), "Glob",
		"spec.kprobes[0].selectors[0].matchArgs[0].operator", `"Glob" is not an operator (Tetragon's: Equal,`},
	{"operator of another type", edit("operator: NotDAddr", "operator: Prefix"), "Prefix",
		"spec.kprobes[0].selectors[0].matchArgs[0].operator", `Prefix does not apply to argument 0 of type sock (supported for sock: SAddr,`},
	{"Tetragon operator not supported", edit("operator: NotDAddr", "operator: CelExpr"), "CelExpr",
		"spec.kprobes[0].selectors[0].matchArgs[0].operator", `Tetragon's CelExpr is not supported by ocigate (supported for sock: SAddr,`},
	{"followChildren", edit("    - matchArgs:", "    - matchBinaries:\n      - operator: In\n        values: [/bin/sh]\n        followChildren: true\n      matchArgs:"), "followChildren",
		"spec.kprobes[0].selectors[0].matchBinaries[0].followChildren", "refused: ocigate matches each process's own binary"},
	{"operator not fitting arg type", strings.Replace(edit("operator: NotDAddr", "operator: Equal"), "", "", 1), "Equal",
		"spec.kprobes[0].selectors[0].matchArgs[0].operator", "Equal does not apply to argument 0 of type sock"},
	{"index not declared", edit("      - index: 0\n        operator", "      - index: 1\n        operator"), "- index: 1",
		"spec.kprobes[0].selectors[0].matchArgs[0].index", "argument 1 is not declared in args (declared: 0 sock)"},
	{"bad CIDR", edit("- 127.0.0.0/8", "- 10.0.0.0/33"), "10.0.0.0/33",
		"spec.kprobes[0].selectors[0].matchArgs[0].values[1]", `"10.0.0.0/33" is not a CIDR`},
	{"bad port", edit("operator: NotDAddr\n        values:\n        - 10.0.0.0/8", "operator: DPort\n        values:\n        - 70000"), "70000",
		"spec.kprobes[0].selectors[0].matchArgs[0].values[0]", `"70000" is not a port`},
	{"too many selectors", edit("    selectors:\n", "    selectors:\n    - {}\n    - {}\n    - {}\n    - {}\n    - {}\n"), "- matchArgs:",
		"spec.kprobes[0].selectors[5]", "too many selectors: at most 5 per hook"},
	{"binary not absolute", edit("    - matchArgs:", "    - matchBinaries:\n      - operator: In\n        values: [bash]\n      matchArgs:"), "[bash]",
		"spec.kprobes[0].selectors[0].matchBinaries[0].values[0]", `"bash" is not an absolute path (In takes absolute paths)`},
	{"binary operator", edit("    - matchArgs:", "    - matchBinaries:\n      - operator: Glob\n        values: [/bin/sh]\n      matchArgs:"), "Glob",
		"spec.kprobes[0].selectors[0].matchBinaries[0].operator", `"Glob" is not a supported operator (supported: In, NotIn, Prefix, NotPrefix, Postfix, NotPostfix)`},
	{"empty postfix", edit("    - matchArgs:", "    - matchBinaries:\n      - operator: Postfix\n        values: [\"\"]\n      matchArgs:"), `[""]`,
		"spec.kprobes[0].selectors[0].matchBinaries[0].values[0]", "an empty suffix matches every binary"},
	{"namespace type", edit("    - matchArgs:", "    - matchNamespaces:\n      - namespace: Network\n        operator: In\n        values: [host_ns]\n      matchArgs:"), "Network",
		"spec.kprobes[0].selectors[0].matchNamespaces[0].namespace", `"Network" is not a supported namespace`},
	{"namespace value", edit("    - matchArgs:", "    - matchNamespaces:\n      - namespace: Net\n        operator: NotIn\n        values: [host, 4026531840]\n      matchArgs:"), "host,",
		"spec.kprobes[0].selectors[0].matchNamespaces[0].values[0]", `"host" is not a namespace inode number`},
}

// actionErrors are errors in selectors' matchActions.
var actionErrors = []errorClass{
	{"Override without argError", edit("action: Sigkill", "action: Override"), "Override",
		"spec.kprobes[0].selectors[0].matchActions[0].argError", "required with Override"},
	{"Signal without argSig", edit("action: Sigkill", "action: Signal"), "Signal",
		"spec.kprobes[0].selectors[0].matchActions[0].argSig", "required with Signal"},
	{"bad argSig", edit("action: Sigkill", "action: Signal\n        argSig: SIGFOO"), "SIGFOO",
		"spec.kprobes[0].selectors[0].matchActions[0].argSig", `"SIGFOO" is not a signal`},
	{"argError not an errno", edit("action: Sigkill", "action: Override\n        argError: -5000"), "argError",
		"spec.kprobes[0].selectors[0].matchActions[0].argError", "-5000 is out of range [-4095, 2147483647]"},
	{"argError 0", edit("action: Sigkill", "action: Override\n        argError: 0"), "argError",
		"spec.kprobes[0].selectors[0].matchActions[0].argError", "refused: argError 0 makes the call return success without running"},
	{"unknown action", edit("action: Sigkill", "action: FollowFD"), "FollowFD",
		"spec.kprobes[0].selectors[0].matchActions[0].action", `"FollowFD" is not a supported action (supported: Post, NoPost,`},
	{"Set", edit("action: Sigkill", "action: Set\n        argIndex: 0\n        argValue: 1"), "Set",
		"spec.kprobes[0].selectors[0].matchActions[0].action", "refused: Set writes a USDT probe's argument"},
	{"uprobe override fields", edit("action: Sigkill", "action: Override\n        argError: -1\n        argRegs: [rax=1]"), "argRegs",
		"spec.kprobes[0].selectors[0].matchActions[0].argRegs", "refused: only uprobes and USDTs take argRegs"},
	{"GetUrl without URL", edit("action: Sigkill", "action: GetUrl"), "GetUrl",
		"spec.kprobes[0].selectors[0].matchActions[0].argUrl", "required (the URL the agent requests)"},
	{"GetUrl bad URL", edit("action: Sigkill", "action: GetUrl\n        argUrl: ftp://x"), "argUrl",
		"spec.kprobes[0].selectors[0].matchActions[0].argUrl", `"ftp://x" is not an http or https URL`},
	{"DnsLookup bad name", edit("action: Sigkill", "action: DnsLookup\n        argFqdn: \"a b\""), "argFqdn",
		"spec.kprobes[0].selectors[0].matchActions[0].argFqdn", `"a b" is not a domain name`},
	{"rateLimit", edit("action: Sigkill", "action: Post\n        rateLimit: 5x"), "rateLimit",
		"spec.kprobes[0].selectors[0].matchActions[0].rateLimit", `"5x" is not a rate limit`},
	{"stack traces not a bool", edit("action: Sigkill", "action: Post\n        kernelStackTrace: maybe"), "kernelStackTrace",
		"spec.kprobes[0].selectors[0].matchActions[0].kernelStackTrace", "maybe"},
	{"TrackSock on non-sock", strings.Replace(edit("action: Sigkill", "action: TrackSock\n        argSock: 1"), "tcp_connect", "tcp_connect", 1), "argSock",
		"spec.kprobes[0].selectors[0].matchActions[0].argSock", "argument 1 is not a declared sock argument"},
}

func TestDocumentErrors(t *testing.T) { checkErrorClasses(t, documentErrors) }

func TestKprobeErrors(t *testing.T) { checkErrorClasses(t, kprobeErrors) }

func TestSelectorErrors(t *testing.T) { checkErrorClasses(t, selectorErrors) }

func TestActionErrors(t *testing.T) { checkErrorClasses(t, actionErrors) }

// checkErrorClasses wants each case's error.
func checkErrorClasses(t *testing.T, cases []errorClass) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tc.src, tc.marker, tc.field, tc.msg)
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	src := edit("    syscall: false\n", "    syscall: false\n    frobnicate: 1\n")
	src = strings.Replace(src, "- 127.0.0.0/8", "- 1.2.3.4/40\n        - 5.6.7.8/99", 1)
	src = strings.Replace(src, "action: Sigkill", "action: Override", 1)
	_, err := Parse("p.yaml", []byte(src))
	var es Errors
	if !errors.As(err, &es) || len(es) != 4 {
		t.Fatalf("want 4 errors, got %v", err)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Line < es[i-1].Line {
			t.Errorf("errors not in line order:\n%v", err)
		}
	}
	if es[0].File != "p.yaml" || es[0].Field != "spec.kprobes[0].frobnicate" || es[0].Line != 9 {
		t.Errorf("first error %+v", es[0])
	}
}

func TestYAMLSyntaxError(t *testing.T) {
	src := head + "  - call: tcp_connect\n    args: [\n"
	_, err := Parse("p.yaml", []byte(src))
	if err == nil || !strings.HasPrefix(err.Error(), "p.yaml:") || !strings.Contains(err.Error(), "invalid YAML") {
		t.Fatalf("got %v", err)
	}
}

func TestAcceptedExtras(t *testing.T) {
	src := strings.Replace(head, "  name: p\n", "  name: p\n  namespace: default\n  labels: {app: web}\n  annotations: {note: \"x\"}\n", 1) +
		strings.Replace(connect, "type: sock", "type: sock\n      label: the-sock", 1) +
		"    message: outbound connect\n    tags: [\"reverse-shell\", net]\n  options:\n  - name: policy-mode\n    value: enforce\n"
	docs, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p := docs[0].Policy
	if p.Namespace != "default" || p.Labels["app"] != "web" || p.Annotations["note"] != "x" || p.Mode != "enforce" {
		t.Errorf("metadata/mode %+v", p)
	}
	k := p.Kprobes[0]
	if k.Args[0].Label != "the-sock" || k.Message != "outbound connect" || len(k.Tags) != 2 {
		t.Errorf("kprobe %+v", k)
	}
}

func TestActions(t *testing.T) {
	src := head + strings.Replace(strings.Replace(connect, "tcp_connect", "security_socket_connect", 1), "type: sock", "type: socket", 1) +
		strings.Replace(`  - call: tcp_connect
    args: [{index: 0, type: sock}]
    selectors:
    - matchActions:
      - {action: NotifyEnforcer}
      - {action: NotifyEnforcer, argError: -13, argSig: SIGTERM}
      - {action: Signal, argSig: 10}
      - {action: Override, argError: -1}
      - {action: TrackSock}
      - {action: UntrackSock, argSock: 0}
      - {action: NoPost}
      - {action: Post}
`, "", "", 1)
	docs, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a := docs[0].Policy.Kprobes[1].Selectors[0].Actions
	want := []Action{
		{Action: "NotifyEnforcer", ArgError: -1},
		{Action: "NotifyEnforcer", ArgError: -13, ArgSig: 15, HasArgError: true, HasArgSig: true},
		{Action: "Signal", ArgSig: 10, HasArgSig: true},
		{Action: "Override", ArgError: -1, HasArgError: true},
		{Action: "TrackSock"},
		{Action: "UntrackSock"},
		{Action: "NoPost"},
		{Action: "Post"},
	}
	if len(a) != len(want) {
		t.Fatalf("%+v", a)
	}
	for i := range want {
		want[i].Pos = a[i].Pos
		if a[i] != want[i] {
			t.Errorf("action %d: %+v, want %+v", i, a[i], want[i])
		}
	}
}

// writeFiles writes name→content into a new temporary directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDuplicateNameAcrossFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.yaml": head + connect, "b.yml": "# second copy\n" + head + connect})
	_, _, err := LoadDir(dir)
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yml")
	checkError(t, err, b+":5: metadata.name: ", `duplicate TracingPolicy name "p" (also at `+a+":4)")
}

func TestDuplicateNameInOneFile(t *testing.T) {
	src := head + connect + "---\n" + head + connect
	_, err := Parse("p.yaml", []byte(src))
	checkError(t, err, "p.yaml:25: metadata.name: ", `duplicate TracingPolicy name "p" (also at p.yaml:4)`)
}

func TestUnknownPolicyReference(t *testing.T) {
	prof := `apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: web}
spec:
  match: {runtimes: [runc]}
  mode: enforce
  policies:
  - name: p
  - name: nope
`
	dir := writeFiles(t, map[string]string{"p.yaml": head + connect, "web.yaml": prof})
	_, _, err := LoadDir(dir)
	checkError(t, err, filepath.Join(dir, "web.yaml")+":9: spec.policies[1].name: ", `unknown TracingPolicy "nope"`)
	if es := err.(Errors); len(es) != 1 {
		t.Errorf("want only that error, got:\n%v", err)
	}
}
