// Package wire is the part of the agent's protocol that the OCI hook
// speaks: the registration and unregistration messages, their framing,
// the agent's verdict on them, version negotiation, and a blocking
// unix-socket client bounded by a deadline.
//
// The hook is a fresh process on every container's start, and it pays
// at its start for the code it links, so the code reached from here
// uses no fmt, encoding/json, reflect, context, net or
// golang.org/x/sys/unix: messages are built by concatenation
// (internal/errwrap), JSON is written by hand (internal/jsonstr) and
// read by internal/plainjson. Package api is the rest of the protocol
// (status, events, pods, the server) and uses these types as its own.
package wire

import (
	"path/filepath"
	"strconv"
)

// DefaultSocket is where the agent listens.
const DefaultSocket = "/run/ocigate/agentd.sock"

// Operations of the hook.
const (
	OpRegister   = "register"
	OpUnregister = "unregister"
)

// Failure policies.
const (
	FailOpen   = "open"
	FailClosed = "closed"
)

// NRIMarker is the file an agent listening on socket keeps beside it
// while its NRI plugin is synchronized with the runtime, and removes
// when the plugin is not (and at start). ocigate-hook --nri-gate, on
// every container's start path, reads it instead of asking the agent's
// status: a stat, not a status call. It says nothing without an agent
// listening on socket.
func NRIMarker(socket string) string {
	return filepath.Join(filepath.Dir(socket), "nri-connected")
}

// The protocol's versions. Version 1 is the protocol before versions: its
// messages carry no "protocol" field and its readers refuse fields they do
// not know. From version 2 on every message carries its version and
// readers ignore unknown fields.
//
// The compatibility rule: an agent answers requests of its own version and
// of the one before, each in the version it was asked in, leaving out
// what that version does not have; a client (hook, CLI) sends its own
// version and, when an agent answers a refusal in the version before,
// sends the request once more in that version. So a hook and an agent at
// most one version apart always understand each other, whichever of the
// two is upgraded first. Anything further apart is refused with an error
// that names both versions.
const (
	// ProtocolVersion is the version this build sends and prefers.
	ProtocolVersion = 2
	// MinProtocolVersion is the oldest version this build still speaks.
	MinProtocolVersion = ProtocolVersion - 1
)

// VersionOf maps a message's protocol field to its version: 1 when the
// message carries none.
func VersionOf(field int) int {
	if field == 0 {
		return 1
	}
	return field
}

// Speaks reports whether this build speaks protocol version v.
func Speaks(v int) bool { return v >= MinProtocolVersion && v <= ProtocolVersion }

// VersionError says that a peer's protocol version is not spoken here; it
// names both.
type VersionError struct {
	// Peer is who used the version: "the client", "the agent at PATH".
	Peer string
	// Self is this side: "this agent", "this client".
	Self string
	// Got is the version the peer used.
	Got int
}

// Error names the peer's version and the versions this build speaks.
func (e *VersionError) Error() string {
	return e.Peer + " speaks protocol version " + strconv.Itoa(e.Got) + "; " + e.Self + " speaks " + spokenRange()
}

// spokenRange is "1 to 2", or "2" when only one version is spoken.
func spokenRange() string {
	if MinProtocolVersion == ProtocolVersion {
		return strconv.Itoa(ProtocolVersion)
	}
	return strconv.Itoa(MinProtocolVersion) + " to " + strconv.Itoa(ProtocolVersion)
}
