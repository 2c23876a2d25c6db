package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ocigate/ocigate/bpf/record"
	"github.com/ocigate/ocigate/profiles"
)

// stdioWords names the standard descriptors.
var stdioWords = [3]string{"stdin", "stdout", "stderr"}

// predicateEvidence is what an exec or relay event says of the predicate
// that fired: its name and, in plain words, what the kernel saw — the
// stdio kinds, who dialled or relays the connection, and what identified
// the program. Empty for selectors without an exec-time predicate.
func predicateEvidence(raw *record.RawEvent, sel *profiles.Selector) (string, string) {
	pred := sel.Predicate()
	if pred == "" {
		return "", ""
	}
	var parts []string
	if fds := stdioOnSocket(raw.StdioInet); fds != "" {
		parts = append(parts, fds+" on an INET socket")
	}
	if raw.Dialled && raw.Peer != 0 {
		parts = append(parts, "the connection was dialled by "+diallerWords(raw))
	}
	if r := raw.Relay; r != 0 {
		parts = append(parts, relayWords(raw))
	}
	if id := identityWords(raw, sel); id != "" {
		parts = append(parts, id)
	}
	if raw.Fileless {
		parts = append(parts, "the executed file has no link on disk")
	}
	return pred, strings.Join(parts, "; ")
}

func stdioOnSocket(mask uint8) string {
	var fds []string
	for fd := range stdioWords {
		if mask&(1<<fd) != 0 {
			fds = append(fds, stdioWords[fd])
		}
	}
	return strings.Join(fds, ", ")
}

func diallerWords(raw *record.RawEvent) string {
	switch raw.Peer {
	case raw.Tgid:
		return fmt.Sprintf("the process itself (pid %d)", raw.Peer)
	case raw.Ppid:
		return fmt.Sprintf("its parent (pid %d)", raw.Peer)
	}
	return fmt.Sprintf("its grandparent (pid %d)", raw.Peer)
}

func relayWords(raw *record.RawEvent) string {
	how := "its parent or grandparent"
	if raw.Relay&record.RelayPipe != 0 {
		how = "the reader of its stdout or stderr"
	}
	s := fmt.Sprintf("relayed to the network by %s (pid %d), which dialled a connection", how, raw.Peer)
	if raw.Relay&record.RelayAtConnect != 0 {
		s += "; decided at that connect, after the shell started"
	}
	return s
}

// identityWords says which name of the program matched the selector's
// names (the executed file's own name, or the name it was run as: a
// busybox applet), or names the executed file.
func identityWords(raw *record.RawEvent, sel *profiles.Selector) string {
	if len(sel.Names.Names) > 0 && !sel.Names.Not {
		for _, n := range []string{raw.Binary, raw.Comm} {
			if slices.Contains(sel.Names.Names, n) {
				return fmt.Sprintf("identified as a shell: %q (executed file %q, run as %q) is one of %v",
					n, raw.Binary, raw.Comm, sel.Names.Names)
			}
		}
	}
	if raw.Binary != "" {
		return fmt.Sprintf("executed file %q, run as %q", raw.Binary, raw.Comm)
	}
	return ""
}
