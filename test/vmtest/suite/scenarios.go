package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// The default profile's stand-in attacker.
const (
	deniedHost = "127.0.0.2"
	deniedAddr = deniedHost + ":4444"
	deniedUDP  = deniedHost + ":53"
)

// What the attacker types into the shell it expects; a live shell answers
// PWNED-42.
const (
	shellGreeting = "echo PWNED-$((6*7)); exit\n"
	shellAnswer   = "PWNED-42"
)

// shellPath is exec'd with socket stdio: busybox in the guest, dash here.
const shellPath = "/bin/sh"

// noEventWait is how long a "no event" check gives the agent.
const noEventWait = 1500 * time.Millisecond

var scenarios = []scenario{
	{"connect-denied", scenarioConnectDenied},
	{"connect-allowed", scenarioConnectAllowed},
	{"udp-denied", scenarioUDPDenied},
	{"raw-denied", scenarioRawDenied},
	{"packet-denied", scenarioPacketDenied},
	{"listen-allowed", scenarioListenAllowed},
	{"revshell", scenarioRevshell},
	{"relayshell", scenarioRelayShell},
	{"precision", scenarioPrecision},
	{"tetragon-lsm-exec", scenarioTetragonLSMExec},
	{"tetragon-override-value", scenarioTetragonOverrideValue},
	{"tetragon-dns", scenarioTetragonDNS},
	{"tetragon-accept", scenarioTetragonAccept},
	{"tetragon-receive", scenarioTetragonReceive},
	{"tetragon-drop", scenarioTetragonDrop},
	{"subcgroup", scenarioSubcgroup},
	{"unregister", scenarioUnregister},
	{"control-unregistered", scenarioControl},
}

// scenarioBackends checks the backend the agent chose for every point.
func scenarioBackends(s *suite, r *result) {
	var got []string
	for _, p := range profilePoints {
		want := s.expect.For(p)
		var entries []backendEntry
		for _, b := range s.backends {
			if b.Point == p {
				entries = append(entries, b)
			}
		}
		if len(entries) == 0 {
			r.failf("point %s: not in status (want %s)", p, want)
			continue
		}
		var bs []string
		for _, e := range entries {
			bs = append(bs, e.Backend+"("+e.Mechanism+")")
			if e.Backend != want {
				r.failf("point %s: backend %s via %s, want %s", p, e.Backend, e.Mechanism, want)
			}
		}
		got = append(got, p+"="+strings.Join(bs, "+"))
	}
	for _, b := range s.backends {
		if !slices.Contains(profilePoints, b.Point) {
			got = append(got, b.Point+"="+b.Backend+"("+b.Mechanism+")")
		}
	}
	s.emit("VMTEST-INFO backends %s", strings.Join(got, " "))
	r.notef("%s", strings.Join(got, " "))
	if s.expect.For("sendmsg") == backendFallback {
		s.checkFallbackTCPSend(r)
	}
}

// checkFallbackTCPSend: the fallback's cgroup send hooks see UDP only; it
// sees TCP sends through the sock_send_length tracepoint, which kernels
// from 6.3 have. The send point's mechanism must say so on those and only
// on those.
func (s *suite) checkFallbackTCPSend(r *result) {
	var mech string
	var skipped []string
	for _, b := range s.backends {
		if b.Point == "sendmsg" {
			mech, skipped = b.Mechanism, b.Skipped
		}
	}
	seen := strings.Contains(mech, "sock_send_length")
	rel := kernelRelease()
	want := kernelAtLeast(rel, 6, 3)
	state, what := "seen", "TCP sends seen (sock_send_length, after the send: report or kill)"
	if !seen {
		state, what = "unseen", "TCP sends not seen (no sock_send_length: "+strings.Join(skipped, "; ")+")"
	}
	s.emit("VMTEST-INFO tcp-send %s", state)
	if seen != want {
		r.failf("fallback on %s: %s, but sock_send_length is there from 6.3 on", rel, what)
		return
	}
	r.notef("fallback: %s", what)
}

// kernelAtLeast reports whether a release ("6.1.0-28-cloud-amd64") is at
// least major.minor.
func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// errnoOf returns the errno name of an "error: NAME: text" probe output.
func errnoOf(p probeResult) string {
	rest, ok := strings.CutPrefix(p.out(), "error: ")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, ":")
	return name
}

var errnoNumbers = map[string]int{"EPERM": int(syscall.EPERM), "EACCES": int(syscall.EACCES)}

// expectDenied checks that the probe got EPERM (fallback) or EPERM/EACCES
// (lsm, fmod_ret: whatever the program returns), exited 1 and was not
// killed. It returns the errno name.
func (s *suite) expectDenied(r *result, what string, p probeResult, point string) string {
	backend := s.expect.For(point)
	allowed := []string{"EPERM"}
	if backend != backendFallback {
		allowed = append(allowed, "EACCES")
	}
	e := errnoOf(p)
	if p.signal != 0 || p.exit != 1 || !slices.Contains(allowed, e) {
		r.failf("%s: want denied with %s, got %v", what, strings.Join(allowed, " or "), p)
		return e
	}
	r.notef("%s errno=%s", what, e)
	return e
}

// expectEvent waits for the enforced event of the probe's process at point,
// checks the backend and the extra fields, and returns it.
func (s *suite) expectEvent(r *result, w *workload, p probeResult, point string, extra map[string]any) map[string]any {
	want := map[string]any{
		"ocigate.container_id":             w.id,
		"ocigate.enforced":                 true,
		"ocigate.point":                    point,
		"process_kprobe.process.pid.value": p.pid,
	}
	ev, ok := s.waitEvent(s.cfg.eventWait, want)
	if !ok {
		r.failf("no enforced %s event for pid %d of %s within %s", point, p.pid, w.id, s.cfg.eventWait)
		r.diagf("events of %s:\n%s", w.id, strings.Join(s.containerLines(w.id), "\n"))
		return nil
	}
	before := len(r.fails)
	defer func() {
		if len(r.fails) > before {
			b, _ := json.Marshal(ev)
			r.diagf("event: %s", b)
		}
	}()
	if b := getString(ev, "ocigate.backend"); b != s.expect.For(point) {
		r.failf("event backend %q (mechanism %s), want %q", b, getString(ev, "ocigate.mechanism"), s.expect.For(point))
	}
	if p := getString(ev, "ocigate.profile"); s.ownProfile && p != "vmtest" {
		r.failf("event profile %q, want vmtest", p)
	}
	for path, v := range extra {
		if !agentlog.Match(ev, map[string]any{path: v}) {
			r.failf("event .%s = %s, want %v", path, getString(ev, path), v)
		}
	}
	r.notef("event %s/%s action=%s via %s", getString(ev, "process_kprobe.function_name"),
		getString(ev, "ocigate.verdict"), getString(ev, "process_kprobe.action"), getString(ev, "ocigate.mechanism"))
	return ev
}

// expectRefused checks that the probe's operation (what) was denied at
// point, that the agent reported it with the extra fields, and that the
// event names the errno the process saw.
func (s *suite) expectRefused(r *result, w *workload, p probeResult, what, point string, extra map[string]any) {
	e := s.expectDenied(r, what, p, point)
	ev := s.expectEvent(r, w, p, point, extra)
	expectErrnoInEvent(r, ev, e)
}

// expectErrnoInEvent checks that the event reports the errno the process saw.
func expectErrnoInEvent(r *result, ev map[string]any, seen string) {
	if ev == nil || errnoNumbers[seen] == 0 {
		return
	}
	if !agentlog.Match(ev, map[string]any{"ocigate.errno": errnoNumbers[seen]}) {
		got := getString(ev, "ocigate.errno")
		if got == "" {
			got = "absent"
		}
		r.failf("event .ocigate.errno %s, the process saw %s", got, seen)
		b, _ := json.Marshal(ev)
		r.diagf("event: %s", b)
	}
}

// expectNoEvent checks that the workload produced no enforced event.
func (s *suite) expectNoEvent(r *result, w *workload, pid int) {
	want := map[string]any{"ocigate.container_id": w.id, "ocigate.enforced": true, "process_kprobe.process.pid.value": pid}
	if ev, ok := s.waitEvent(noEventWait, want); ok {
		r.failf("unexpected enforced event %s/%s", getString(ev, "ocigate.point"), getString(ev, "process_kprobe.function_name"))
		r.diagf("events of %s:\n%s", w.id, strings.Join(s.containerLines(w.id), "\n"))
	}
}

func connectEventFields(port int) map[string]any {
	return map[string]any{
		"process_kprobe.action":                "KPROBE_ACTION_OVERRIDE",
		"process_kprobe.function_name":         []string{"tcp_connect", "security_socket_connect"},
		"process_kprobe.args.0.sock_arg.daddr": deniedHost,
		"process_kprobe.args.0.sock_arg.dport": port,
	}
}

// The workload's very first program connects to the attacker.
func scenarioConnectDenied(s *suite, r *result) {
	w := s.newWorkload(r, "connect")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "connect", deniedAddr)
	s.expectRefused(r, w, p, "connect "+deniedAddr, "connect", connectEventFields(4444))
}

// scenarioConnectAllowed checks that a connect to an allowed loopback
// peer succeeds and makes no enforced event.
func scenarioConnectAllowed(s *suite, r *result) {
	ln := listen(r, "")
	defer ln.Close()
	w := s.newWorkload(r, "allowed")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "connect", ln.Addr())
	if p.out() != "ok" || p.exit != 0 {
		r.failf("connect %s: want ok, got %v", ln.Addr(), p)
	}
	if !ln.WaitConn(5 * time.Second) {
		r.failf("listener %s saw no connection", ln.Addr())
	}
	s.expectNoEvent(r, w, p.pid)
	r.notef("connect %s ok", ln.Addr())
}

// scenarioUDPDenied checks that a UDP sendto the attacker is refused and
// reported.
func scenarioUDPDenied(s *suite, r *result) {
	w := s.newWorkload(r, "udp")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "udp", deniedUDP)
	s.expectRefused(r, w, p, "sendto "+deniedUDP, "sendmsg", map[string]any{
		"process_kprobe.action":                "KPROBE_ACTION_OVERRIDE",
		"process_kprobe.args.0.sock_arg.daddr": deniedHost,
		"process_kprobe.args.0.sock_arg.dport": 53,
	})
}

// scenarioRawDenied checks that a raw socket is refused and reported.
func scenarioRawDenied(s *suite, r *result) {
	w := s.newWorkload(r, "raw")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "raw")
	s.expectRefused(r, w, p, "raw socket", "sock_create", map[string]any{
		"process_kprobe.action":        "KPROBE_ACTION_OVERRIDE",
		"process_kprobe.function_name": "security_socket_create",
	})
}

// A packet socket: the fallback backend can only kill the caller (at
// sys_enter_socket); lsm and fmod_ret may kill it or refuse the socket.
func scenarioPacketDenied(s *suite, r *result) {
	w := s.newWorkload(r, "packet")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "packet")
	killed := p.signal == syscall.SIGKILL && p.out() == ""
	switch {
	case killed:
		r.notef("packet socket: caller killed by SIGKILL")
	case s.expect.For("sock_create") != backendFallback:
		s.expectDenied(r, "packet socket", p, "sock_create")
	default:
		r.failf("packet socket: want the caller SIGKILLed before it prints, got %v", p)
	}
	want := map[string]any{"process_kprobe.function_name": "security_socket_create"}
	if killed {
		want["process_kprobe.action"] = "KPROBE_ACTION_SIGKILL"
	}
	s.expectEvent(r, w, p, "sock_create", want)
}

func scenarioListenAllowed(s *suite, r *result) {
	w := s.newWorkload(r, "listen")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "listen")
	if p.out() != "ok" || p.exit != 0 {
		r.failf("bind+listen on 127.0.0.1:0: want ok, got %v", p)
	}
	s.expectNoEvent(r, w, p.pid)
	r.notef("bind+listen ok")
}

// A reverse shell: the probe connects to the attacker (allowed), puts the
// socket on its stdio and execs a shell. fallback kills the shell at
// sched_process_exec; lsm and fmod_ret make execve fail in the caller.
// Either way the attacker must receive nothing.
func scenarioRevshell(s *suite, r *result) {
	ln := listen(r, shellGreeting)
	defer ln.Close()
	w := s.newWorkload(r, "revshell")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "revshell", ln.Addr(), shellPath)
	if !ln.WaitConn(5 * time.Second) {
		r.failf("the reverse connection (to an allowed address) never arrived; probe: %v", p)
	}
	if ln.WaitReceived("", time.Second) {
		r.failf("the attacker received shell output %q", ln.Received())
	}
	backend := s.expect.For("exec")
	extra := map[string]any{"process_kprobe.function_name": "security_bprm_check"}
	var errno string
	switch {
	case backend == backendFallback:
		if p.signal != syscall.SIGKILL {
			r.failf("want the shell SIGKILLed at exec, got %v", p)
		} else {
			s.emit("VMTEST-INFO exec-denial SIGKILL")
			r.notef("exec denial (fallback): shell killed by SIGKILL before it ran")
		}
		extra["process_kprobe.action"] = "KPROBE_ACTION_SIGKILL"
	case p.signal == syscall.SIGKILL:
		r.failf("backend %s: want execve refused in the caller, but the caller was SIGKILLed", backend)
	default:
		errno = s.expectDenied(r, "execve "+shellPath, p, "exec")
		if errno != "" {
			s.emit("VMTEST-INFO exec-denial %s", errno)
			r.notef("exec denial (%s): execve failed with %s in the caller", backend, errno)
		}
	}
	ev := s.expectEvent(r, w, p, "exec", extra)
	if errno != "" {
		expectErrnoInEvent(r, ev, errno)
	}
}

// A relayed shell whose peer connects after the shell started: the peer's
// connect is refused by the connect backend (LSM, fmod_ret or the cgroup
// hook) and the agent kills the shell.
func scenarioRelayShell(s *suite, r *result) {
	ln := listen(r, shellGreeting)
	defer ln.Close()
	w := s.newWorkload(r, "relayshell")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "relayshell", ln.Addr(), shellPath)
	s.expectDenied(r, "the relay's connect", p, "connect")
	if !strings.Contains(p.stderr, "shell-signal: 9") {
		r.failf("want the shell killed by the agent, got %v", p)
	}
	want := map[string]any{
		"ocigate.container_id": w.id,
		"ocigate.point":        "relay",
		"ocigate.verdict":      "killed",
		"ocigate.relay":        "parent,at_connect",
		"ocigate.backend":      s.expect.For("connect"),
	}
	if _, ok := s.waitEvent(s.cfg.eventWait, want); !ok {
		r.failf("no relay event like %v", want)
		r.diagf("events of %s:\n%s", w.id, strings.Join(s.containerLines(w.id), "\n"))
	}
}

// A process in a sub-cgroup of the workload is still covered: one started
// there, and one that moves itself there.
func scenarioSubcgroup(s *suite, r *result) {
	w := s.newWorkload(r, "subcgroup")
	defer w.cleanup(r)
	w.register(r)
	sub := filepath.Join(w.dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		r.fatalf("mkdir %s: %v", sub, err)
	}
	p := s.runIn(r, sub, "connect", deniedAddr)
	s.expectRefused(r, w, p, "connect from sub", "connect", connectEventFields(4444))

	sub2 := filepath.Join(w.dir, "sub2")
	if err := os.Mkdir(sub2, 0o755); err != nil {
		r.fatalf("mkdir %s: %v", sub2, err)
	}
	p = w.run(r, "movecg", sub2, "connect", deniedAddr)
	rel := strings.TrimPrefix(sub2, s.root)
	if !strings.Contains(p.stderr, "cgroup "+rel) {
		r.failf("the probe did not move itself into %s: %v", rel, p)
	}
	s.expectRefused(r, w, p, "connect after moving into sub2", "connect", connectEventFields(4444))
}

func (s *suite) listed(r *result, id string) bool {
	st, err := s.status()
	if err != nil {
		r.fatalf("%v", err)
	}
	return slices.Contains(st.workloadIDs(), id)
}

// After poststop the same cgroup is no longer enforced: the connect to the
// attacker reaches the loopback (nobody listens: ECONNREFUSED).
func scenarioUnregister(s *suite, r *result) {
	w := s.newWorkload(r, "unregister")
	defer w.cleanup(r)
	w.register(r)
	if !s.listed(r, w.id) {
		r.failf("workload %s not listed by status after createRuntime", w.id)
	}
	p := w.run(r, "connect", deniedAddr)
	s.expectDenied(r, "connect while registered", p, "connect")
	w.stopInit() // the container's process is gone when poststop runs
	out, err := w.unregister()
	if err != nil || out != "" {
		r.failf("poststop: %v %s", err, out)
	}
	if s.listed(r, w.id) {
		r.failf("workload %s still listed after poststop", w.id)
	}
	p = w.run(r, "connect", deniedAddr)
	if errnoOf(p) != "ECONNREFUSED" || p.exit != 1 {
		r.failf("connect after poststop: want ECONNREFUSED, got %v", p)
	} else {
		r.notef("after poststop: connect %s ECONNREFUSED", deniedAddr)
	}
	s.expectNoEvent(r, w, p.pid)
}

// Controls: an unregistered cgroup and the suite itself are not filtered,
// and there a reverse shell does answer, so the scenarios above prove
// something.
func scenarioControl(s *suite, r *result) {
	ln := listen(r, shellGreeting)
	defer ln.Close()
	w := s.newWorkload(r, "control") // never registered
	defer w.cleanup(r)
	ln2, err := net.Listen("tcp", deniedHost+":0")
	if err != nil {
		r.fatalf("listening on %s: %v", deniedHost, err)
	}
	defer ln2.Close()
	go func() {
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if p := w.run(r, "connect", ln2.Addr().String()); p.out() != "ok" {
		r.failf("unregistered connect %s: want ok, got %v", ln2.Addr(), p)
	}
	if c, err := net.DialTimeout("tcp", ln2.Addr().String(), 10*time.Second); err != nil {
		r.failf("the suite itself (not a workload) connecting %s: %v", ln2.Addr(), err)
	} else {
		c.Close()
	}
	if p := w.run(r, "raw"); p.out() != "ok" {
		r.failf("unregistered raw socket: want ok, got %v", p)
	}
	p := w.run(r, "revshell", ln.Addr(), shellPath)
	if !ln.WaitReceived(shellAnswer, 10*time.Second) {
		r.failf("unprotected reverse shell did not answer %s (received %q; probe %v)", shellAnswer, ln.Received(), p)
	} else {
		r.notef("unregistered: connect %s ok, raw ok, reverse shell answered", deniedHost)
	}
	if lines := s.containerLines(w.id); len(lines) > 0 {
		r.failf("events for an unregistered cgroup: %d", len(lines))
	}
}

// scenarioTeardown: no workload left, and the agent stops cleanly.
func scenarioTeardown(s *suite, r *result) {
	st, err := s.status()
	if err != nil {
		r.fatalf("%v", err)
	}
	if ids := st.workloadIDs(); len(ids) > 0 {
		r.failf("workloads still registered: %v", ids)
	}
	var counters []string
	for k, v := range st.Counters {
		if v != 0 {
			counters = append(counters, fmt.Sprintf("%s=%d", k, v))
		}
	}
	slices.Sort(counters)
	if err := s.stopAgent(); err != nil {
		r.failf("agent stop: %v", err)
	}
	r.notef("no workloads; agent exited 0 on SIGTERM; counters %s", strings.Join(counters, ","))
}
