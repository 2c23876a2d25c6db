package policy

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// action reads one matchActions[] entry. As in Tetragon, argError and
// argSig on an action that does not use them have no effect.
func (p *parser) action(n *yaml.Node, path string, k *kprobeCtx) (Action, bool) {
	f, ok := p.mapping(n, path, actionFields, nil)
	if !ok {
		return Action{}, false
	}
	a := Action{Pos: p.pos(n)}
	a.Action, ok = p.oneOf(f, "action", path, "action", Actions)
	if !ok {
		return a, false
	}
	p.actionError(f, path, &a)
	p.actionSignal(f, path, &a)
	p.actionPost(f, path, &a)
	p.userProbeFields(f, path)
	switch a.Action {
	case "Set":
		p.errorf(f.line("action"), join(path, "action"), "refused: Set writes a USDT probe's argument, and USDTs (user-space probes) are outside ocigate's domain; closest: Override")
		return a, false
	case "GetUrl":
		a.ArgURL = p.actionURL(f, path)
	case "DnsLookup":
		a.ArgFQDN = p.actionFQDN(f, path)
	case "TrackSock", "UntrackSock":
		if !p.actionSock(f, path, &a, k) {
			return a, false
		}
	}
	return a, true
}

// actionError reads argError: Override requires it, NotifyEnforcer
// defaults to -1 (EPERM). A negative value is an errno; a positive one
// is what the call returns instead (Tetragon's meaning); 0 would make
// the call succeed without running.
func (p *parser) actionError(f fields, path string, a *Action) {
	field := join(path, "argError")
	if v, ok := p.integer(f.get("argError"), field, -4095, math.MaxInt32); ok {
		if v == 0 && (a.Action == "Override" || a.Action == "NotifyEnforcer") {
			p.errorf(f.line("argError"), field, "refused: argError 0 makes the call return success without running; ocigate does not skip calls it allows (leave the operation alone with Post)")
		}
		a.ArgError, a.HasArgError = int32(v), true
	}
	switch {
	case a.Action == "Override" && f.get("argError") == nil:
		p.errorf(f.line("action"), field, "required with Override (a negative errno, e.g. -1 for EPERM, or a value the call returns)")
	case a.Action == "NotifyEnforcer" && !a.HasArgError:
		a.ArgError = -1
	}
}

// actionSignal reads argSig: Signal requires it.
func (p *parser) actionSignal(f fields, path string, a *Action) {
	field := join(path, "argSig")
	if sn := f.get("argSig"); sn != nil {
		if _, text, err := scalarValue(sn); err != nil {
			p.errorf(sn.Line, field, "%s", err.Error())
		} else if sig, err := parseSignal(text); err != nil {
			p.errorf(sn.Line, field, "%s", err.Error())
		} else {
			a.ArgSig, a.HasArgSig = sig, true
		}
	} else if a.Action == "Signal" {
		p.errorf(f.line("action"), field, "required with Signal (a number 1-64 or a name such as SIGKILL)")
	}
}

// actionPost reads what Post takes: rateLimit, rateLimitScope, imaHash,
// kernelStackTrace, userStackTrace (the compiler says where).
func (p *parser) actionPost(f fields, path string, a *Action) {
	if rn := f.get("rateLimit"); rn != nil {
		_, text, err := scalarValue(rn)
		if err == nil {
			a.RateLimit, err = parseRateLimit(text)
		}
		if err != nil {
			p.errorf(rn.Line, join(path, "rateLimit"), "%s", err.Error())
		}
	}
	if f.get("rateLimitScope") != nil {
		a.RateLimitScope, _ = p.oneOf(f, "rateLimitScope", path, "scope", []string{"thread", "process", "global"})
	}
	a.ImaHash, _ = p.boolean(f.get("imaHash"), join(path, "imaHash"))
	a.KernelStackTrace, _ = p.boolean(f.get("kernelStackTrace"), join(path, "kernelStackTrace"))
	a.UserStackTrace, _ = p.boolean(f.get("userStackTrace"), join(path, "userStackTrace"))
}

// userProbeFields refuses the fields of Override on uprobes and Set on
// USDTs: user-space probes are outside the domain.
func (p *parser) userProbeFields(f fields, path string) {
	for _, key := range []string{"argIndex", "argValue", "argRegs", "argNewSymbol", "argNewAddr", "argNewOffset"} {
		if f.get(key) != nil {
			p.errorf(f.line(key), join(path, key), "refused: only uprobes and USDTs take %s, and user-space probes are outside ocigate's domain", key)
		}
	}
}

// actionURL reads GetUrl's argUrl: an http or https URL.
func (p *parser) actionURL(f fields, path string) string {
	s, ok := p.str(p.required(f, "argUrl", path, " (the URL the agent requests)"), join(path, "argUrl"))
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.errorf(f.line("argUrl"), join(path, "argUrl"), "%q is not an http or https URL", s)
		return ""
	}
	return s
}

var fqdnRE = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?\.?$`)

// actionFQDN reads DnsLookup's argFqdn: a domain name.
func (p *parser) actionFQDN(f fields, path string) string {
	s, ok := p.str(p.required(f, "argFqdn", path, " (the name the agent looks up)"), join(path, "argFqdn"))
	if !ok {
		return ""
	}
	if len(s) > 253 || !fqdnRE.MatchString(s) {
		p.errorf(f.line("argFqdn"), join(path, "argFqdn"), "%q is not a domain name", s)
		return ""
	}
	return s
}

// actionSock reads TrackSock's and UntrackSock's argSock: a declared sock
// argument, 0 by default.
func (p *parser) actionSock(f fields, path string, a *Action, k *kprobeCtx) bool {
	v, ok := p.integer(f.get("argSock"), join(path, "argSock"), 0, 31)
	if f.get("argSock") != nil && !ok {
		return false
	}
	a.ArgSock = int(v)
	if arg := k.args[a.ArgSock]; arg == nil || arg.Type != "sock" {
		p.errorf(f.line("argSock"), join(path, "argSock"), "argument %d is not a declared sock argument (declared: %s)", a.ArgSock, declaredArgs(k.args))
		return false
	}
	return true
}

// parseRateLimit parses Post's rateLimit: a number of seconds, or with m
// or h, minutes or hours.
func parseRateLimit(s string) (time.Duration, error) {
	unit := time.Second
	num := s
	switch {
	case strings.HasSuffix(s, "m"):
		unit, num = time.Minute, s[:len(s)-1]
	case strings.HasSuffix(s, "h"):
		unit, num = time.Hour, s[:len(s)-1]
	case strings.HasSuffix(s, "s"):
		num = s[:len(s)-1]
	}
	v, err := strconv.ParseUint(num, 10, 32)
	if err != nil || v == 0 || v > 24*3600 {
		return 0, fmt.Errorf("%q is not a rate limit (seconds, or a number of minutes or hours with m or h; at most a day)", s)
	}
	d := time.Duration(v) * unit
	if d > 24*time.Hour {
		return 0, fmt.Errorf("%q is longer than a day", s)
	}
	return d, nil
}
