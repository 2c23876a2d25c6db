package api

import (
	"fmt"
	"maps"
)

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

// Version returns the protocol version of a request: 1 when it carries
// none.
func (r *Request) Version() int { return versionOf(r.Protocol) }

// Version returns the protocol version of a response: 1 when it carries
// none.
func (r *Response) Version() int { return versionOf(r.Protocol) }

// versionOf maps a message's protocol field to its version.
func versionOf(field int) int {
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
	return fmt.Sprintf("%s speaks protocol version %d; %s speaks %s", e.Peer, e.Got, e.Self, spokenRange())
}

// spokenRange is "1 to 2", or "2" when only one version is spoken.
func spokenRange() string {
	if MinProtocolVersion == ProtocolVersion {
		return fmt.Sprint(ProtocolVersion)
	}
	return fmt.Sprintf("%d to %d", MinProtocolVersion, ProtocolVersion)
}

// AnswerVersion returns the answer to a request of a version this build
// does not speak: the error naming both versions, in a form the sender
// can read. A newer sender ignores unknown fields and learns this side's
// version from "protocol"; an older one may refuse unknown fields, so it
// gets only "ok" and "error", which every version has.
func AnswerVersion(req *Request) *Response {
	v := req.Version()
	resp := &Response{Error: (&VersionError{Peer: "the client", Self: "this agent", Got: v}).Error()}
	if v > ProtocolVersion {
		resp.Protocol = ProtocolVersion
	}
	return resp
}

// As returns the response as version v has it (v spoken here): its
// "protocol" field set to v, except for version 1 which has none, and
// every field that v does not have cleared, since readers of version 1
// refuse unknown fields. A field added to Response or to anything it
// carries in version N must be cleared here for v < N
// (TestResponseAsVersion1 fails until it is).
func (r *Response) As(v int) *Response {
	out := *r
	out.Protocol = v
	if v <= 1 {
		out.Protocol = 0
	}
	return &out
}

// As returns the request as version v has it, like Response.As. A
// registration's version-2 fields go: the runtime annotation's name,
// which a version-1 agent does not weigh, and the operator's profile,
// which version 1 carried as the profile annotation (run-job's way).
func (r *Request) As(v int) *Request {
	out := *r
	out.Protocol = v
	if v > 1 {
		return &out
	}
	out.Protocol = 0
	out.Pods = nil // version 1 has no pod table
	if r.Register != nil {
		reg := *r.Register
		reg.RuntimeAnnotation = ""
		if reg.Profile != "" {
			reg.Annotations = maps.Clone(reg.Annotations)
			if reg.Annotations == nil {
				reg.Annotations = map[string]string{}
			}
			reg.Annotations[v1ProfileAnnotation] = reg.Profile
			reg.Profile = ""
		}
		out.Register = &reg
	}
	return &out
}

// v1ProfileAnnotation is the annotation through which a version-1 agent
// takes a registration's profile.
const v1ProfileAnnotation = "ocigate.io/profile"
