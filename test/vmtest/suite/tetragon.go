package main

import (
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// The Tetragon examples of the vmtest profile on every backend: an
// lsmhook at exec, an Override with a positive argError, DNS only to
// listed servers on ip_output. The same policies run natively in
// test/e2e/tetragon_test.go on the fallback.

// scenarioTetragonLSMExec: the probe (the program calling exec, as
// Tetragon's matchBinaries names it) exec'ing a file named tetragon-nop
// is refused: EPERM in the caller on LSM and fmod_ret, SIGKILL before it
// runs on the fallback; the event is a process_lsm. A file of another
// name runs.
func scenarioTetragonLSMExec(s *suite, r *result) {
	w := s.newWorkload(r, "tetragon-lsm-exec")
	defer w.cleanup(r)
	w.register(r)
	dir := filepath.Join(s.cfg.workdir, "tetragon-exec")
	p := w.run(r, "execcopy", filepath.Join(dir, "tetragon-nop"))
	want := map[string]any{"ocigate.container_id": w.id, "ocigate.point": "exec", "ocigate.enforced": true,
		"process_lsm.function_name": "bprm_check_security", "process_lsm.action": "KPROBE_ACTION_OVERRIDE",
		"process_lsm.args.0.linux_binprm_arg.path": filepath.Join(dir, "tetragon-nop")}
	if s.expect.For("exec") == backendFallback {
		if p.signal != syscall.SIGKILL {
			r.failf("fallback: want the new image killed before it runs, got %v", p)
		}
	} else {
		s.expectDenied(r, "exec of tetragon-nop", p, "exec")
	}
	s.expectHookEvent(r, w, want)
	other := w.run(r, "execcopy", filepath.Join(dir, "tetragon-other"))
	if other.out() != "ok" || other.exit != 0 {
		r.failf("exec of a file of another name: want ok, got %v", other)
	}
}

// scenarioTetragonOverrideValue: Override with argError 7 on
// security_socket_connect. fmod_ret returns 7 from the hook, so connect
// returns 7 (no error) and connects nothing, as in Tetragon; BPF LSM and
// the cgroup hook refuse with EPERM, and the event's note says so.
func scenarioTetragonOverrideValue(s *suite, r *result) {
	w := s.newWorkload(r, "tetragon-override")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "connect", "127.0.0.4:4444")
	note := "cannot return a positive value"
	if s.expect.For("connect") == backendFmodRet {
		note = "returned 7 from security_socket_connect"
		if p.out() != "ok" {
			r.failf("fmod_ret: want connect to return 7 (not an error), got %v", p)
		}
	} else {
		s.expectDenied(r, "connect 127.0.0.4:4444", p, "connect")
	}
	ev := s.expectEvent(r, w, p, "connect", map[string]any{"process_kprobe.function_name": "security_socket_connect",
		"process_kprobe.action": "KPROBE_ACTION_OVERRIDE"})
	if got := getString(ev, "ocigate.note"); ev != nil && !strings.Contains(got, note) {
		r.failf("event note %q, want it to say %q", got, note)
	}
}

// scenarioTetragonDNS: DNS to a server other than the listed ones kills
// the sender, UDP sent or connected; DNS to 127.0.0.53 is left alone.
func scenarioTetragonDNS(s *suite, r *result) {
	w := s.newWorkload(r, "tetragon-dns")
	defer w.cleanup(r)
	w.register(r)
	for _, op := range []string{"udp", "udpconnect"} {
		p := w.run(r, op, "127.0.0.5:53")
		if p.signal != syscall.SIGKILL && !strings.Contains(p.out(), "EPERM") {
			r.failf("%s 127.0.0.5:53: want killed (or refused before the agent's kill), got %v", op, p)
		}
		s.expectHookEvent(r, w, map[string]any{"ocigate.container_id": w.id, "process_kprobe.function_name": "ip_output",
			"process_kprobe.action": "KPROBE_ACTION_SIGKILL", "process_kprobe.process.pid.value": p.pid,
			"process_kprobe.args.0.skb_arg.dport": 53})
	}
	ok := w.run(r, "udp", "127.0.0.53:53")
	if ok.signal != 0 {
		r.failf("DNS to the listed server was killed: %v", ok)
	}
}

// scenarioTetragonAccept: a connection the kernel accepts for the
// probe's listener is reported in softirq for the workload, naming the
// probe (the listener), on every backend.
func scenarioTetragonAccept(s *suite, r *result) {
	w := s.newWorkload(r, "tetragon-accept")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "loopback")
	if p.out() != "ok" {
		r.failf("loopback: want ok, got %v", p)
		return
	}
	want := map[string]any{"ocigate.container_id": w.id, "process_kprobe.process.pid.value": p.pid,
		"ocigate.point": "accept", "process_kprobe.function_name": "tcp_set_state",
		"process_kprobe.args.0.sock_arg.sport": 7007, "process_kprobe.args.0.sock_arg.state": "TCP_SYN_RECV"}
	if _, ok := s.waitEvent(s.cfg.eventWait, want); !ok {
		r.failf("no event like %v within %s", want, s.cfg.eventWait)
		r.diagf("events of %s:\n%s", w.id, strings.Join(s.containerLines(w.id), "\n"))
	}
}

// scenarioTetragonReceive: Tetragon's datagram_518 on sk_filter_trim_cap
// and dev_hard_start_xmit. A UDP datagram delivered to the probe's socket
// on 127.0.0.8:7008 is reported for the workload, naming the probe (the
// socket's creator, as TrackSock makes it), on every backend:
// cgroup_skb/ingress or fentry; the same datagram leaving through lo is
// reported for the probe, the sender.
func scenarioTetragonReceive(s *suite, r *result) {
	w := s.newWorkload(r, "tetragon-receive")
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "udpself", "127.0.0.8:7008")
	if p.out() != "ok" {
		r.failf("udpself: want ok, got %v", p)
		return
	}
	want := map[string]any{"ocigate.container_id": w.id, "process_kprobe.process.pid.value": p.pid,
		"ocigate.point": "receive", "process_kprobe.function_name": "sk_filter_trim_cap",
		"process_kprobe.action": "KPROBE_ACTION_POST", "process_kprobe.args.1.skb_arg.daddr": "127.0.0.8",
		"process_kprobe.args.1.skb_arg.dport": 7008, "process_kprobe.args.1.skb_arg.protocol": "IPPROTO_UDP"}
	xmit := map[string]any{"ocigate.container_id": w.id, "process_kprobe.process.pid.value": p.pid,
		"ocigate.point": "xmit", "process_kprobe.function_name": "dev_hard_start_xmit",
		"process_kprobe.args.0.skb_arg.daddr": "127.0.0.8", "process_kprobe.args.0.skb_arg.dport": 7008,
		"process_kprobe.args.1.net_dev_arg.name": "lo"}
	for _, m := range []map[string]any{want, xmit} {
		ev, ok := s.waitEvent(s.cfg.eventWait, m)
		if !ok {
			r.failf("no event like %v within %s", m, s.cfg.eventWait)
			r.diagf("events of %s:\n%s", w.id, strings.Join(s.containerLines(w.id), "\n"))
			return
		}
		r.notef("%s event via %s", getString(ev, "ocigate.point"), getString(ev, "ocigate.mechanism"))
	}
}

// scenarioTetragonDrop: Tetragon's stack_traces on kfree_skb_reason. The
// probe's malformed packet on a raw socket, which the kernel drops, is
// reported for the probe with the drop reason, its kernel stack
// symbolized (raw_sendmsg among the frames) and its user stack naming
// the suite's binary. Its workload has its own profile, vmtest-drop: the
// default one refuses raw sockets.
func scenarioTetragonDrop(s *suite, r *result) {
	w := s.newWorkload(r, "tetragon-drop")
	w.annotations = map[string]string{"io.ocigate.vmtest-drop": "1"}
	defer w.cleanup(r)
	w.register(r)
	p := w.run(r, "rawdrop")
	if p.out() != "ok" {
		r.failf("rawdrop: want the packet refused with EINVAL, got %v", p)
		return
	}
	want := map[string]any{"ocigate.container_id": w.id, "process_kprobe.process.pid.value": p.pid,
		"ocigate.point": "drop", "process_kprobe.function_name": "kfree_skb_reason",
		"process_kprobe.args.1.label": "reason"}
	ev, ok := s.waitEvent(s.cfg.eventWait, want)
	if !ok {
		r.failf("no event like %v within %s", want, s.cfg.eventWait)
		r.diagf("events of %s:\n%s", w.id, strings.Join(s.containerLines(w.id), "\n"))
		return
	}
	if k := getString(ev, "process_kprobe.kernel_stack_trace"); !strings.Contains(k, `"symbol":"raw_sendmsg"`) {
		r.failf("kernel stack without raw_sendmsg: %s (note %q)", k, getString(ev, "ocigate.note"))
	}
	if u := getString(ev, "process_kprobe.user_stack_trace"); !strings.Contains(u, `/suite"`) {
		r.failf("user stack without the suite's binary: %s (note %q)", u, getString(ev, "ocigate.note"))
	}
	r.notef("drop reason %s", getString(ev, "process_kprobe.args.1.int_arg.value"))
}

// expectHookEvent waits for an event like want (any hook type).
func (s *suite) expectHookEvent(r *result, w *workload, want map[string]any) {
	ev, ok := s.waitEvent(s.cfg.eventWait, want)
	if !ok {
		r.failf("no event like %v within %s", want, s.cfg.eventWait)
		r.diagf("events of %s:\n%s", w.id, strings.Join(s.containerLines(w.id), "\n"))
		return
	}
	if !agentlog.Match(ev, map[string]any{"ocigate.enforced": true}) {
		r.failf("event not enforced: %v", ev["ocigate"])
	}
	r.notef("event %s via %s", getString(ev, "ocigate.verdict"), getString(ev, "ocigate.mechanism"))
}
