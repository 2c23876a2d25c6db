package events

import (
	"strconv"
	"strings"
)

// ClaimEvent is an ocigate_claim event: a container's spec asked for
// weaker protection than its identity gives it — a profile by annotation,
// a claimed image, namespace or runtime, fail-open — and ocigate refused
// the container or ignored the claim (docs/trust.md).
type ClaimEvent struct {
	// Pod names the container (and its pod) as the runtime knows it.
	Pod *Pod `json:"pod,omitempty"`
	// Claims are the annotations that asked, each key=value as written.
	Claims []ClaimArg `json:"claims"`
	// RequestedProfile is the profile the claims chose ("" for a
	// fail-open claim).
	RequestedProfile string `json:"requested_profile,omitempty"`
	// Profile is the profile the container's identity selects, which it
	// gets when the claim is ignored ("" when none does).
	Profile string `json:"profile,omitempty"`
	// Action is "refused" (the container does not start) or "ignored"
	// (it runs under Profile).
	Action string `json:"action"`
	// Rule says why, in the words of the refusal the hook reports.
	Rule string `json:"rule"`
	// ReportedBy is "agent", or "hook" for a refusal the hook made while
	// no agent answered, delivered when the agent was back.
	ReportedBy string `json:"reported_by"`
}

// ClaimArg is one annotation of a claim.
type ClaimArg struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Claim actions.
const (
	ClaimRefused = "refused"
	ClaimIgnored = "ignored"
)

func (c *ClaimEvent) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if c.Pod != nil {
		b = append(b, `"pod":`...)
		b = c.Pod.appendJSON(b)
		b = append(b, ',')
	}
	b = append(b, `"claims":`...)
	if c.Claims == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, a := range c.Claims {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"key":`...)
			b = appendString(b, a.Key)
			b = append(b, `,"value":`...)
			b = appendString(b, a.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if c.RequestedProfile != "" {
		b = append(b, `,"requested_profile":`...)
		b = appendString(b, c.RequestedProfile)
	}
	if c.Profile != "" {
		b = append(b, `,"profile":`...)
		b = appendString(b, c.Profile)
	}
	b = append(b, `,"action":`...)
	b = appendString(b, c.Action)
	b = append(b, `,"rule":`...)
	b = appendString(b, c.Rule)
	b = append(b, `,"reported_by":`...)
	b = appendString(b, c.ReportedBy)
	return append(b, '}')
}

// claimLabel is the compact form of a claim event.
func claimLabel(c *ClaimEvent) string {
	parts := make([]string, len(c.Claims))
	for i, a := range c.Claims {
		parts[i] = a.Key + "=" + strconv.Quote(a.Value)
	}
	s := "claim " + strings.Join(parts, " ") + " " + c.Action
	if c.Action == ClaimIgnored && c.Profile != "" {
		s += " (profile " + c.Profile + ")"
	}
	if c.ReportedBy == "hook" {
		s += " by the hook"
	}
	return s + ": " + c.Rule
}
