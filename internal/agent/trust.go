package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/hookreport"
	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/runtime/oci"
)

// trust is what the operator vouches for beyond the runtimes' records,
// and the way the agent's own events (claims refused or ignored) reach
// the events file.
type trust struct {
	keys map[string]bool // annotation keys whose values are the operator's

	mu   sync.Mutex
	sink *sinkQueue // the events file's queue while RunEvents runs
}

// newTrust returns the trust of an agent whose operator vouches for keys.
func newTrust(keys []string) *trust {
	t := &trust{keys: map[string]bool{}}
	for _, k := range keys {
		t.keys[k] = true
	}
	return t
}

// vouched reports whether a workload's image or pod came from where the
// container's spec cannot reach: its runtime's records, or an annotation
// whose key the operator trusts.
func (t *trust) vouched(source string) bool { return runtimeSources[source] || t.keys[source] }

// workloadInfo is what profile selection knows of a workload, its
// identity told apart from the claims of its annotations.
func (a *Agent) workloadInfo(w *workload.Workload) profiles.WorkloadInfo {
	info := profiles.WorkloadInfo{Annotations: w.Annotations, TrustedKeys: a.trust.keys, Runtime: w.Runtime,
		RuntimeClaim: w.RuntimeAnnotation, Profile: w.RequestedProfile}
	if a.trust.vouched(w.ImageSource) {
		info.Image, info.ImageDigests = w.Image, w.ImageDigests
	}
	if a.trust.vouched(w.PodSource) {
		info.Namespace = w.PodNamespace
	}
	return info
}

// choice is a workload's profile in a profile set, why, and a choice of
// its annotations that was ignored (nil: none).
type choice struct {
	lp      loadedProfile
	reason  string
	ignored *profiles.Refusal
}

// choose picks a workload's profile in set. An annotation that names a
// profile the workload may not choose refuses it (a *profiles.ClaimError)
// when running is false; a container that runs already (adopted, moved by
// a reload or a restart) cannot be refused, so it gets the profile its
// identity selects and the choice counts as ignored.
func (a *Agent) choose(set *profileSet, w *workload.Workload, running bool) (choice, error) {
	sel, err := profiles.Select(set.catalog, a.workloadInfo(w))
	var ce *profiles.ClaimError
	switch {
	case errors.As(err, &ce) && running && ce.Base != nil:
		sel = profiles.Selection{Profile: ce.Base, Reason: ce.BaseReason, Ignored: &ce.Refusal}
	case err != nil:
		return choice{}, fmt.Errorf("container %q: %w", w.ContainerID, err)
	}
	c := choice{lp: set.byName[sel.Profile.Name], reason: sel.Reason, ignored: sel.Ignored}
	if c.ignored != nil {
		c.reason += "; ignored: " + c.ignored.Error()
	}
	return c, nil
}

// reportClaim makes a refused or ignored claim an ocigate_claim event,
// for the events file and the API's followers, counts and logs it.
func (a *Agent) reportClaim(w *workload.Workload, r *profiles.Refusal, action string) {
	claims := make([]events.ClaimArg, len(r.Claims))
	for i, c := range r.Claims {
		claims[i] = events.ClaimArg{Key: c.Key, Value: c.Value}
	}
	ev := a.claimEvent(w, &events.ClaimEvent{Claims: claims, RequestedProfile: r.Requested, Profile: r.Profile,
		Action: action, Rule: r.Rule, ReportedBy: "agent"})
	a.emit(ev)
	counter, level := &a.stats.ClaimsIgnored, zap.WarnLevel
	if action == events.ClaimRefused {
		counter, level = &a.stats.ClaimsRefused, zap.ErrorLevel
	}
	counter.Add(1)
	a.log.Log(level, "container's claim "+action, zap.String("container", w.ContainerID), zap.String("image", w.Image),
		zap.String("requested", r.Requested), zap.String("profile", r.Profile), zap.String("rule", r.Error()))
}

// claimEvent wraps a claim in an event about workload w.
func (a *Agent) claimEvent(w *workload.Workload, c *events.ClaimEvent) *events.Event {
	c.Pod = &events.Pod{Namespace: w.PodNamespace, Name: w.Pod,
		Container: events.Container{ID: w.ContainerID, Name: w.Name, Image: events.Image{Name: w.Image}}}
	o := &events.Ocigate{ContainerID: w.ContainerID, Runtime: w.Runtime, Profile: c.Profile, Enforced: true, Verdict: c.Action,
		CgroupID: w.CgroupID, Adopted: w.Adopted}
	if c.Action == events.ClaimIgnored { // under a.mu: the profile it runs under
		if lp, ok := a.profiles.byName[c.Profile]; ok {
			o.Mode = string(lp.profile.Mode)
		}
	}
	return &events.Event{OcigateClaim: c, NodeName: a.node, Time: time.Now().UTC(), Ocigate: o}
}

// emit publishes an event the agent made itself: to the API's followers,
// and to the events file while RunEvents runs (dropped and counted when
// its queue is full; it never blocks).
func (a *Agent) emit(ev *events.Event) {
	a.hub.Publish(ev)
	a.trust.mu.Lock()
	defer a.trust.mu.Unlock()
	if a.trust.sink != nil && a.sinkTypes.match(ev) && !a.trust.sink.tryPut(ev) {
		a.stats.EventsDropped.Add(1)
	}
}

// setSink makes q the queue emit writes to (nil: none, before the queue
// closes).
func (t *trust) setSink(q *sinkQueue) {
	t.mu.Lock()
	t.sink = q
	t.mu.Unlock()
}

// failurePolicy is what the hook does when the agent refuses w after
// choosing its profile p: p's failurePolicy, unless the container's
// ocigate.io/failure-policy annotation says closed, or says open and the
// operator trusts that key. An open the operator did not allow is
// ignored: an event, and the refusal stays closed.
func (a *Agent) failurePolicy(w *workload.Workload, p *profiles.Profile) string {
	open := p.FailOpen
	switch v, set := w.Annotations[oci.AnnotationFailurePolicy]; {
	case !set:
	case v != api.FailOpen:
		open = false // closed, or a value the hook treats as closed
	case a.trust.keys[oci.AnnotationFailurePolicy]:
		open = true
	case !open:
		a.reportClaim(w, &profiles.Refusal{Claims: []profiles.Claim{{Key: oci.AnnotationFailurePolicy, Value: v}}, Profile: p.Name,
			Rule: fmt.Sprintf("fail-open is the operator's choice: profile %q is fail-closed and the agent's --trusted-annotations does not name %s",
				p.Name, oci.AnnotationFailurePolicy)}, events.ClaimIgnored)
	}
	if open {
		return api.FailOpen
	}
	return api.FailClosed
}

// hookReportInterval is how often the agent looks for refusals hooks
// made while it was away.
const hookReportInterval = 2 * time.Second

// runHookReports reports, at once and then every hookReportInterval
// until ctx ends, the refusals hooks made while no agent answered.
func (a *Agent) runHookReports(ctx context.Context) {
	if a.hookReports == "" {
		return
	}
	t := time.NewTicker(hookReportInterval)
	defer t.Stop()
	for {
		a.collectHookReports()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// collectHookReports turns each report in the hooks' directory into an
// ocigate_claim event reported by the hook.
func (a *Agent) collectHookReports() {
	reports, errs := hookreport.Collect(a.hookReports)
	for _, err := range errs {
		a.log.Warn("hook report dropped", zap.Error(err))
	}
	for _, r := range reports {
		claims := make([]events.ClaimArg, len(r.Claims))
		for i, c := range r.Claims {
			claims[i] = events.ClaimArg{Key: c.Key, Value: c.Value}
		}
		c := &events.ClaimEvent{Pod: &events.Pod{Container: events.Container{ID: r.ContainerID}}, Claims: claims,
			Action: events.ClaimRefused, Rule: r.Rule, ReportedBy: "hook"}
		a.emit(&events.Event{OcigateClaim: c, NodeName: a.node, Time: r.Time.UTC(),
			Ocigate: &events.Ocigate{ContainerID: r.ContainerID, Runtime: r.Runtime, Enforced: true, Verdict: events.ClaimRefused}})
		a.stats.ClaimsRefused.Add(1)
		a.log.Error("the hook refused a container's claim while no agent answered", zap.String("container", r.ContainerID),
			zap.Time("at", r.Time), zap.String("rule", r.Rule))
	}
}
