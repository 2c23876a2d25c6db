package api

import "github.com/ocigate/ocigate/internal/api/wire"

// The protocol's versions and the compatibility rule between them are
// package wire's (wire.ProtocolVersion): an agent answers requests of
// its own version and of the one before, each in the version it was
// asked in; a client sends its own and, refused in the version before,
// once more in that one.
const (
	// ProtocolVersion is the version this build sends and prefers.
	ProtocolVersion = wire.ProtocolVersion
	// MinProtocolVersion is the oldest version this build still speaks.
	MinProtocolVersion = wire.MinProtocolVersion
)

// Version returns the protocol version of a request: 1 when it carries
// none.
func (r *Request) Version() int { return wire.VersionOf(r.Protocol) }

// Version returns the protocol version of a response: 1 when it carries
// none.
func (r *Response) Version() int { return wire.VersionOf(r.Protocol) }

// Speaks reports whether this build speaks protocol version v.
func Speaks(v int) bool { return wire.Speaks(v) }

// VersionError says that a peer's protocol version is not spoken here; it
// names both (wire.VersionError).
type VersionError = wire.VersionError

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
// registration is as wire.Registration.As has it; version 1 has no pod
// table.
func (r *Request) As(v int) *Request {
	out := *r
	out.Protocol = v
	if v > 1 {
		return &out
	}
	out.Protocol = 0
	out.Pods = nil
	out.Register = r.Register.As(v)
	return &out
}
