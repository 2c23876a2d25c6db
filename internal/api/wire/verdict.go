package wire

import (
	"errors"
	"strings"

	"github.com/ocigate/ocigate/internal/errwrap"
	"github.com/ocigate/ocigate/internal/plainjson"
)

// Verdict is the part of the agent's answer that the hook reads: the
// answer's version, whether the agent did what was asked, its error
// when not, and on a refused registration the failure policy ("open"
// or "closed") of the profile the agent chose, when it got that far.
// The rest of an answer (a registration's workload) is skipped.
type Verdict struct {
	Protocol      int    `json:"protocol,omitempty"`
	OK            bool   `json:"ok"`
	Error         string `json:"error,omitempty"`
	FailurePolicy string `json:"failure_policy,omitempty"`
}

// ParseVerdict reads the verdict of an answer's body, one JSON object
// whose other members are skipped, with internal/plainjson: encoding/json
// would build its decoders by reflection for this one message (~45 us
// of a fresh hook's round trip). Members are matched as encoding/json
// matches them (FuzzParseVerdictMatchesEncodingJSON).
func ParseVerdict(body []byte) (*Verdict, error) {
	var v Verdict
	s := plainjson.New(body)
	ok := s.Fields(map[string]func() bool{
		"protocol":       s.IntInto(&v.Protocol),
		"ok":             s.BoolInto(&v.OK),
		"error":          s.StrInto(&v.Error),
		"failure_policy": s.StrInto(&v.FailurePolicy),
	})
	if !ok || !s.End() {
		return nil, errwrap.Wrap("decode message", s.Err())
	}
	return &v, nil
}

// Version returns the protocol version of the answer: 1 when it
// carries none.
func (v *Verdict) Version() int { return VersionOf(v.Protocol) }

// OlderVersion reports whether v refuses a request sent in version
// sent for its protocol version, in an older version that this build
// speaks too, and which: the request is then sent again in that
// version. An agent of version 2 or later says its version in the
// refusal; one of version 1 says nothing of versions but refuses the
// unknown field "protocol". A nil v (no answer) refuses nothing.
func (v *Verdict) OlderVersion(sent int) (int, bool) {
	if v == nil || v.OK {
		return 0, false
	}
	if v.Protocol == 0 && !strings.Contains(v.Error, `unknown field "protocol"`) {
		return 0, false
	}
	got := v.Version()
	return got, got < sent && Speaks(got)
}

// Check returns the error of an answer to op from the agent at socket:
// a refusal, or a version this build does not speak.
func (v *Verdict) Check(socket, op string) error {
	if !v.OK {
		return errors.New("agent refused " + op + ": " + v.Error)
	}
	if got := v.Version(); !Speaks(got) {
		return &VersionError{Peer: "the agent at " + socket, Self: "this client", Got: got}
	}
	return nil
}
