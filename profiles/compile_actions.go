package profiles

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/profiles/policy"
)

// refusing are the actions that decide the operation; a selector takes
// one of them.
var refusing = []string{"Sigkill", "Override", "NotifyEnforcer", "Signal"}

// actions fills the action of s from the selector's matchActions; track
// says it has a TrackSock action.
func (c *compiler) actions(k *policy.Kprobe, ps *policy.Selector, s *Selector, h hookDef, path string) (track bool) {
	var primary *policy.Action // the action that decides, Post excepted
	var post, noPost *policy.Action
	for i := range ps.Actions {
		a := &ps.Actions[i]
		field := fmt.Sprintf("%s[%d]", join(path, "matchActions"), i)
		if ps.ImplicitPost {
			field = path
		}
		switch {
		case a.Action == "Post":
			post = a
		case a.Action == "NoPost":
			noPost = a
		case a.Action == "TrackSock":
			track = true
		case slices.Contains(refusing, a.Action) && primary != nil:
			c.errorf(a.Pos, field, "%s and %s (line %d) in one selector: a selector takes one of Sigkill, Override, NotifyEnforcer and Signal", a.Action, primary.Action, primary.Line)
		case slices.Contains(refusing, a.Action):
			primary = a
		}
	}
	if post != nil && noPost != nil {
		c.errorf(noPost.Pos, join(path, "matchActions"), "Post and NoPost (line %d) in one selector contradict each other", post.Line)
	}
	s.Action, s.NoPost = ActionPost, noPost != nil
	if primary != nil {
		c.primary(k, primary, s, path)
	}
	return track
}

// primary sets the deciding action of s.
func (c *compiler) primary(k *policy.Kprobe, a *policy.Action, s *Selector, path string) {
	if k.Hook == policy.HookTracepoint && a.Action == "Override" {
		c.errorf(a.Pos, path, "%s on a tracepoint: as in Tetragon, a tracepoint cannot change a call's result (Sigkill or Signal can act on it)", a.Action)
		return
	}
	switch a.Action {
	case "Sigkill":
		s.Action = ActionSigkill
	case "Override":
		s.Action = ActionOverride
		c.returnValue(a, s)
	case "NotifyEnforcer":
		s.Action, s.Signal = ActionNotifyEnforcer, a.ArgSig
		c.returnValue(a, s)
	case "Signal":
		s.Action, s.Signal = ActionSignal, a.ArgSig
	}
}

// returnValue is what a refusal returns: a negative argError is the
// errno, a positive one the call's return value (EPERM where the backend
// can only refuse with an errno).
func (c *compiler) returnValue(a *policy.Action, s *Selector) {
	switch {
	case !a.HasArgError:
		s.Errno = int(unix.EPERM)
	case a.ArgError < 0:
		s.Errno = -int(a.ArgError)
	default:
		s.Errno, s.ReturnValue = int(unix.EPERM), a.ArgError
	}
}

// actionReport fills what the agent does on the selector's events:
// GetUrl, DnsLookup, Post's rateLimit and imaHash, with their notes.
func (c *compiler) actionReport(k *policy.Kprobe, ps *policy.Selector, s *Selector, path string) {
	for _, a := range ps.Actions {
		switch a.Action {
		case "GetUrl":
			s.URL = a.ArgURL
		case "DnsLookup":
			s.FQDN = a.ArgFQDN
		case "Post":
			s.RateLimit, s.RateLimitScope, s.ImaHash = a.RateLimit, a.RateLimitScope, a.ImaHash
			s.KernelStack, s.UserStack = a.KernelStackTrace, a.UserStackTrace
		}
		if a.RateLimit > 0 && a.Action != "Post" {
			s.RateLimit, s.RateLimitScope = a.RateLimit, a.RateLimitScope
		}
	}
	if s.RateLimit > 0 && s.RateLimitScope == "" {
		s.RateLimitScope = "thread"
	}
	if (s.URL != "" || s.FQDN != "") && s.NoPost {
		c.errorf(ps.Pos, path, "GetUrl and DnsLookup are carried out by the agent on the selector's events, and NoPost sends none")
	}
	if s.ImaHash && !slices.Contains(targetsOf(k), PointExec) {
		c.errorf(ps.Pos, path, "imaHash: ocigate hashes the executed file, at exec hooks only")
	}
	if (s.KernelStack || s.UserStack) && !stackPoints(targetsOf(k)) {
		c.errorf(ps.Pos, path, "kernelStackTrace, userStackTrace: refused here: ocigate takes stack traces at the device-layer hooks only (dev_hard_start_xmit, kfree_skb_reason), whose tracepoint programs can; elsewhere the event's process, parent, binary and arguments say who did it")
	}
	c.actionNotes(ps, s, path)
}

// stackPoints reports whether points are all device-layer points, whose
// programs take stack traces.
func stackPoints(points []Point) bool {
	if len(points) == 0 {
		return false
	}
	for _, pt := range points {
		if pt != PointXmit && pt != PointDrop {
			return false
		}
	}
	return true
}

// targetsOf is the points of k's hook (none for raw_syscalls).
func targetsOf(k *policy.Kprobe) []Point {
	h, _ := hookOf(k)
	return h.points
}

// actionNotes notes the actions ocigate carries out otherwise than
// Tetragon's kernel programs.
func (c *compiler) actionNotes(ps *policy.Selector, s *Selector, path string) {
	if s.ReturnValue > 0 {
		c.notef(ps.Pos, path, "argError %d: the fmod_ret backend returns it from the call as Tetragon does; BPF LSM and the cgroup hooks can only refuse with an errno and return -EPERM; the event says which", s.ReturnValue)
	}
	if s.KernelStack || s.UserStack {
		c.notef(ps.Pos, path, "stack traces: the kernel's are symbolized from /proc/kallsyms; the user's are addresses with the mapped file and offset (no symbols), from /proc/PID/maps when the agent reads the event")
	}
	if s.ImaHash {
		c.notef(ps.Pos, path, "imaHash: the agent hashes the executed file (sha256 of its content, as IMA's default) when it writes the event")
	}
	if s.RateLimit > 0 {
		c.notef(ps.Pos, path, "rateLimit: the agent drops the events of the window; the kernel still decides and counts each call")
	}
	if s.URL != "" || s.FQDN != "" {
		c.notef(ps.Pos, path, "GetUrl and DnsLookup: the agent makes the request when it reads the event, as Tetragon's agent does")
	}
}
