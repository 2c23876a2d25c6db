package agent

import (
	"strings"
	"testing"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/profiles"
)

// An exec event names the predicate that fired and what the kernel saw:
// the stdio on a socket, who dialled it, the name that made it a shell.
func TestPredicateEvidence(t *testing.T) {
	shells := profiles.NameMatch{Names: []string{"sh", "bash"}}
	for _, tc := range []struct {
		name      string
		raw       record.RawEvent
		sel       profiles.Selector
		pred      string
		fragments []string
	}{
		{"dialled by the parent", record.RawEvent{Tgid: 20, Ppid: 10, Peer: 10, Dialled: true, StdioInet: 3, Binary: "kworker", Comm: "kworker"},
			profiles.Selector{StdioInet: true, StdioDialled: true}, profiles.PredicateDialledStdio,
			[]string{"stdin, stdout on an INET socket", "dialled by its parent (pid 10)", `executed file "kworker"`}},
		{"a shell by applet name", record.RawEvent{Tgid: 20, StdioInet: 1, Binary: "busybox", Comm: "sh"},
			profiles.Selector{StdioInet: true, Names: shells}, profiles.PredicateShellStdio,
			[]string{"stdin on an INET socket", `identified as a shell: "sh" (executed file "busybox", run as "sh")`}},
		{"relayed through a pipe", record.RawEvent{Tgid: 20, Peer: 30, Relay: record.RelayPipe | record.RelayAtConnect, Binary: "dash", Comm: "sh"},
			profiles.Selector{Relayed: true, Names: shells}, profiles.PredicateRelayed,
			[]string{"the reader of its stdout or stderr (pid 30)", "decided at that connect", `identified as a shell: "sh"`}},
		{"no exec predicate", record.RawEvent{}, profiles.Selector{Action: profiles.ActionPost}, "", nil},
	} {
		pred, ev := predicateEvidence(&tc.raw, &tc.sel)
		if pred != tc.pred {
			t.Errorf("%s: predicate %q, want %q", tc.name, pred, tc.pred)
		}
		for _, f := range tc.fragments {
			if !strings.Contains(ev, f) {
				t.Errorf("%s: evidence %q lacks %q", tc.name, ev, f)
			}
		}
	}
}
