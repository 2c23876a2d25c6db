package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
	"github.com/ocigate/ocigate/internal/testenv/precision"
)

// The precision corpora: every attack of attackCorpus stopped, every
// pattern of benignCorpus untouched, in real runc containers on the host
// root under the built-in reverse-shell policy in enforce mode (the
// testdata profile reverse-shell-enforce, picked by annotation: the e2e
// harness's own default adds a stand-in attacker). A pattern with a
// conflict names the profile its users must pick instead: the default
// cannot both stop the attacks and leave it alone, so its outcome under
// the default is recorded, not failed. With OCIGATE_PRECISION_OUT set,
// the results are written there (precision.WriteResults) for the table
// in docs/precision.md.

// corpusCase is one technique or pattern.
type corpusCase struct {
	name, what string
	// attacks
	attack   func(port int) []string
	udp, tls bool
	relay    bool // stopped as a relayed shell
	benign   func(t *testing.T) benignRun
	conflict string // the profile to pick where the default cannot hold
}

// enforceDefault picks the built-in reverse-shell policy in enforce mode,
// or with OCIGATE_PRECISION_PROFILE another profile to measure a
// candidate rule against the corpora (testdata/profiles/
// precision-alternatives.yaml); such a run writes no table.
var enforceDefault = map[string]string{"ocigate.io/profile": precisionProfile()}

func precisionProfile() string {
	if p := os.Getenv("OCIGATE_PRECISION_PROFILE"); p != "" {
		return p
	}
	return "reverse-shell-enforce"
}

var (
	corpusMu      sync.Mutex
	corpusResults []precision.Result
)

func record(r precision.Result) {
	corpusMu.Lock()
	defer corpusMu.Unlock()
	corpusResults = append(corpusResults, r)
}

// corpusTools are the host root's programs the corpora run besides
// hostTools (scripts/deps.sh installs them).
var corpusTools = []string{
	"/usr/bin/ruby", "/usr/bin/php", "/usr/bin/lua5.4", "/usr/bin/node", "/usr/bin/busybox", "/usr/bin/git",
	"/usr/bin/curl", "/usr/bin/script", "/usr/bin/gem", "/usr/bin/pip3", "/usr/bin/rev", "/usr/bin/sed",
	"/usr/bin/timeout", "/usr/bin/ln", "git",
}

func TestPrecisionCorpora(t *testing.T) {
	needHostRoot(t)
	testenv.NeedTools(t, corpusTools...)
	refusal := execRefusal(t)
	attacks, benigns := attackCorpus(), benignCorpus()
	if len(attacks) < 20 || len(benigns) < 20 {
		t.Fatalf("corpora too small: %d attacks, %d benign patterns; want 20 each", len(attacks), len(benigns))
	}
	for _, c := range attacks {
		t.Run("attack/"+c.name, func(t *testing.T) { runAttack(t, c) })
	}
	for _, c := range benigns {
		t.Run("benign/"+c.name, func(t *testing.T) { runBenign(t, c) })
	}
	t.Logf("profile %s: attacks stopped %s, benign untouched %s", precisionProfile(),
		tally(precision.Attack, precision.Stopped), tally(precision.Benign, precision.Untouched))
	out := os.Getenv("OCIGATE_PRECISION_OUT")
	if out == "" || os.Getenv("OCIGATE_PRECISION_PROFILE") != "" {
		return
	}
	if err := precision.WriteResults(out, precision.Run{Backend: refusal.Backend, Results: corpusResults}); err != nil {
		t.Error(err)
	}
}

func runAttack(t *testing.T, c corpusCase) {
	var ln shellListener
	switch {
	case c.udp:
		ln = udpShellListener(t)
	case c.tls:
		ln = tlsShellListener(t)
	default:
		ln = tcpShellListener(t)
	}
	res := runContainer(t, ctrOpts{Name: "p17-" + c.name, HostRoot: true, Args: c.attack(ln.Port()), Annotations: enforceDefault})
	got := ln.WaitReceived(reverseShellAnswer, 2*time.Second)
	ev, _ := events.Wait(t.Context(), eventTimeout, func(ev map[string]any) bool {
		return agentlog.Match(ev, anyEnforced(res.ID))
	})
	r := precision.Result{Kind: precision.Attack, Name: c.name, What: c.what, Outcome: precision.Stopped}
	switch {
	case got:
		r.Outcome = precision.Missed
		t.Errorf("the attacker got a shell: listener received %q; %v", ln.Received(), res)
	case ev == nil:
		r.Outcome = precision.Missed
		t.Errorf("no shell, but no enforced verdict either: the technique failed by itself; %v\n%s", res, diagnostics(res.ID))
	default:
		r.Predicate, r.Evidence = eventPredicate(ev)
		if strings.HasPrefix(r.Predicate, "point ") || r.Evidence == "" {
			// Every kill explains itself: the predicate and what the
			// kernel saw.
			t.Errorf("the verdict names no predicate or no evidence (%q, %q)", r.Predicate, r.Evidence)
		}
	}
	record(r)
}

func runBenign(t *testing.T, c corpusCase) {
	r := precision.Result{Kind: precision.Benign, Name: c.name, What: c.what, Outcome: precision.Untouched, Conflict: c.conflict}
	problems := benignRunOnce(t, c, enforceDefault, &r)
	if len(problems) > 0 {
		r.Outcome = precision.Disturbed
		if c.conflict == "" {
			t.Errorf("benign pattern disturbed: %s", strings.Join(problems, "; "))
		} else {
			t.Logf("known conflict under the default: %s", strings.Join(problems, "; "))
		}
	}
	if c.conflict != "" {
		// The profile the pattern's users must pick has to leave it alone.
		var alt precision.Result
		if p := benignRunOnce(t, c, map[string]string{"ocigate.io/profile": c.conflict}, &alt); len(p) > 0 {
			t.Errorf("benign pattern disturbed under profile %s, which its users are told to pick: %s", c.conflict, strings.Join(p, "; "))
			r.ConflictOutcome = precision.Disturbed
		} else {
			r.ConflictOutcome = precision.Untouched
		}
	}
	record(r)
}

// benignRunOnce runs c's pattern once in a container with annotations
// and returns what went wrong; r gets the predicate and evidence of an
// enforced verdict.
func benignRunOnce(t *testing.T, c corpusCase, annotations map[string]string, r *precision.Result) []string {
	run := c.benign(t)
	var answer string
	var clientErr error
	done := make(chan struct{})
	if run.client != nil {
		go func() { defer close(done); answer, clientErr = run.client() }()
	} else {
		close(done)
	}
	res := runContainer(t, ctrOpts{Name: "p17-" + c.name, HostRoot: true, Args: run.args, Annotations: annotations})
	<-done
	if run.client == nil {
		answer = res.Stdout
	}
	ev, _ := events.Wait(t.Context(), time.Second, func(ev map[string]any) bool {
		return agentlog.Match(ev, anyEnforced(res.ID))
	})
	var problems []string
	if res.ExitCode != 0 {
		problems = append(problems, fmt.Sprintf("exit %d", res.ExitCode))
	}
	if !strings.Contains(answer, run.want) {
		problems = append(problems, fmt.Sprintf("answer %q lacks %q (client error %v)", answer, run.want, clientErr))
	}
	if ev != nil {
		r.Predicate, r.Evidence = eventPredicate(ev)
		problems = append(problems, "enforced verdict: "+r.Predicate+": "+r.Evidence)
	}
	if len(problems) > 0 {
		problems = append(problems, res.String()+"\n"+diagnostics(res.ID))
	}
	return problems
}

// tally counts the recorded results of kind with outcome want.
func tally(kind, want string) string {
	n, of := 0, 0
	for _, r := range corpusResults {
		if r.Kind == kind {
			of++
			if r.Outcome == want {
				n++
			}
		}
	}
	return fmt.Sprintf("%d/%d", n, of)
}

// eventPredicate is the predicate and evidence an event names; for a
// point without one, the point and the event's function.
func eventPredicate(ev map[string]any) (string, string) {
	og, _ := ev["ocigate"].(map[string]any)
	pred, _ := og["predicate"].(string)
	evid, _ := og["evidence"].(string)
	if pred == "" {
		b, _ := json.Marshal(og["point"])
		pred = "point " + strings.Trim(string(b), `"`)
	}
	return pred, evid
}
