package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// The in-domain rows of docs/tetragon-compat.md in real containers: each
// test loads one or more of the project's Tetragon-style test policies
// (profiles/testdata/tetragon) in a profile of its own, triggers them,
// and checks the event (and the enforcement) Tetragon documents.

// compatDir holds the test policies (relative to test/e2e).
const compatDir = "../../profiles/testdata/tetragon"

// tetragonProfile writes the test policies named (files of compatDir,
// without .yaml) and an enforce profile "tg-NAME" listing them into the
// agent's profiles directory, waits until the agent has it, and removes
// it when the test ends. It returns the profile's name.
func tetragonProfile(t *testing.T, name string, policies ...string) string {
	t.Helper()
	var doc strings.Builder
	var refs []string
	for _, p := range policies {
		data, err := os.ReadFile(filepath.Join(compatDir, p+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		doc.Write(data)
		doc.WriteString("---\n")
		refs = append(refs, "  - name: "+p)
	}
	return writeTetragonProfile(t, name, doc.String(), refs)
}

// writeTetragonProfile writes policies (YAML documents, each ending in
// "---") and the profile "tg-NAME" listing refs.
func writeTetragonProfile(t *testing.T, name, policies string, refs []string) string {
	t.Helper()
	profile := "tg-" + name
	doc := policies + fmt.Sprintf(`apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata: {name: %s}
spec:
  match:
    annotations: [{key: ocigate.io/e2e-tetragon, equals: %s}]
  mode: enforce
  policies:
%s
`, profile, name, strings.Join(refs, "\n"))
	file := filepath.Join(profileDir, "zz-tetragon-"+name+".yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(file); time.Sleep(500 * time.Millisecond) })
	waitForProfile(t, profile)
	return profile
}

// tetragonContainer runs a container under profile (chosen by annotation).
func tetragonContainer(t *testing.T, profile string, ownNetwork bool, args ...string) ctrResult {
	t.Helper()
	return runContainer(t, ctrOpts{Name: strings.TrimPrefix(profile, "tg-"), Args: args, OwnNetwork: ownNetwork,
		Annotations: map[string]string{"ocigate.io/profile": profile}})
}

// killed reports whether the container's process ended by SIGKILL (runc
// reports 137), or a shell it ran said so.
func killed(res ctrResult) bool {
	return res.ExitCode == 137 || strings.Contains(res.Stdout, "rc=137")
}

// stopped reports whether a Sigkill at a socket call took effect: the
// process was killed, or (the fallback's cgroup hooks refuse in the
// kernel and leave the kill to the agent) refused before the kill came.
func stopped(res ctrResult) bool {
	return killed(res) || strings.Contains(res.Stdout, "operation not permitted")
}

// tcp-connect-only-local-addrs: curl (here the probe) connecting outside
// loopback is killed; Sigkill on tcp_connect.
func TestTetragonTCPConnectSigkill(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "tcp-sigkill", "net-tcp-connect-sigkill")
	res := tetragonContainer(t, p, true, "/probe", "connect", unroutable+":80")
	if !stopped(res) {
		t.Fatalf("want the probe killed: %v", res)
	}
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "tcp_connect",
		"process_kprobe.action": "KPROBE_ACTION_SIGKILL", "process_kprobe.policy_name": "net-tcp-connect-sigkill",
		"process_kprobe.args.0.sock_arg.daddr": unroutable, "ocigate.enforced": true})
}

// security-socket-connect-block-others: Post for 127.0.0.3:80, Override
// with argError 1 for every other TCP connect of the probe. The fallback
// cannot return 1: it refuses with EPERM and the event says so.
func TestTetragonConnectOverridePositive(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "override-positive", "net-connect-override-positive")
	res := tetragonContainer(t, p, false, "/probe", "connect", "127.0.0.3:9")
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" {
		t.Fatalf("want the connect refused: %v", res)
	}
	ev := waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "security_socket_connect",
		"process_kprobe.action": "KPROBE_ACTION_OVERRIDE", "ocigate.enforced": true})
	if note, _ := ev["ocigate"].(map[string]any)["note"].(string); !strings.Contains(note, "argError 1") {
		t.Errorf("the event does not say what was done instead of returning 1: %v", ev["ocigate"])
	}
	allowed := tetragonContainer(t, p, false, "/probe", "connect", "127.0.0.3:80")
	if strings.TrimSpace(allowed.Stdout) != "error: connection refused" {
		t.Fatalf("the first selector (Post) should let 127.0.0.3:80 through: %v", allowed)
	}
	waitEvent(t, allowed.ID, map[string]any{"ocigate.container_id": allowed.ID, "process_kprobe.action": "KPROBE_ACTION_POST",
		"process_kprobe.args.1.sockaddr_arg.port": 80})
}

// tcp-listen: a listen on 1337 is reported, with TrackSock on sk_alloc.
func TestTetragonTCPListen(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "tcp-listen", "net-tcp-listen-tracksock")
	res := tetragonContainer(t, p, true, "/bin/sh", "-c", "nc -l -p 1337 & sleep 1; kill $!")
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "inet_csk_listen_start",
		"process_kprobe.args.0.sock_arg.sport": 1337, "process_kprobe.policy_name": "net-tcp-listen-tracksock"})
}

// tcp-accept, sshd: a connection the kernel accepts for the container's
// listener (busybox nc) is reported at tcp_create_openreq_child and at
// tcp_set_state (TCP_SYN_RECV to TCP_ESTABLISHED), in softirq, with the
// listener as the process: the client is /probe, which the
// matchBinaries of tcp_set_state does not take.
func TestTetragonTCPAccept(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "tcp-accept", "net-tcp-accept")
	res := tetragonContainer(t, p, true, "/bin/sh", "-c",
		"/bin/nc -l -p 2222 >/dev/null & sleep 1; /probe connect 127.0.0.1:2222; sleep 1; kill $!")
	sock := func(arg string) map[string]any {
		return map[string]any{arg + ".sock_arg.saddr": "127.0.0.1", arg + ".sock_arg.sport": 2222,
			arg + ".sock_arg.daddr": "127.0.0.1", arg + ".sock_arg.protocol": "IPPROTO_TCP"}
	}
	want := map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "tcp_set_state",
		"process_kprobe.policy_name": "net-tcp-accept", "process_kprobe.action": "KPROBE_ACTION_POST",
		"process_kprobe.args.0.sock_arg.state": "TCP_SYN_RECV", "process_kprobe.args.1.int_arg.value": 1,
		"process_kprobe.process.binary": "/bin/busybox", "ocigate.point": "accept"}
	for k, v := range sock("process_kprobe.args.0") {
		want[k] = v
	}
	ev := waitEvent(t, res.ID, want)
	if args, _ := ev["process_kprobe"].(map[string]any)["process"].(map[string]any)["arguments"].(string); ev != nil && !strings.Contains(args, "-l") {
		t.Errorf("the accepted connection's process is not the listener (nc -l): %v", ev["process_kprobe"])
	}
	child := map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "tcp_create_openreq_child",
		"process_kprobe.return.sock_arg.sport": 2222, "process_kprobe.process.binary": "/bin/busybox"}
	waitEvent(t, res.ID, child)
	if n := countEvents(res.ID, "tcp_set_state"); n != 1 {
		t.Errorf("%d tcp_set_state events, want 1 (the accepted connection; the client's own connect is not one)\n%s", n, diagnostics(res.ID))
	}
}

// datagram_518: a UDP datagram delivered to the container's socket on
// 127.0.0.1 is reported at sk_filter_trim_cap (in softirq), with the
// receiving socket's creator (TrackSock) as the process: the receiver
// is a probe started with udprecv, the sender another probe.
func TestTetragonReceivedDatagram(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "sk-filter", "net-sk-filter-receive")
	res := tetragonContainer(t, p, true, "/bin/sh", "-c",
		"/probe udprecv 127.0.0.1:5353 & sleep 1; /probe udp 127.0.0.1:5353; wait")
	if strings.Count(res.Stdout, "ok") != 2 {
		t.Fatalf("want the datagram sent and received: %v", res)
	}
	ev := waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "sk_filter_trim_cap",
		"process_kprobe.policy_name": "net-sk-filter-receive", "process_kprobe.action": "KPROBE_ACTION_POST",
		"process_kprobe.args.1.skb_arg.daddr": "127.0.0.1", "process_kprobe.args.1.skb_arg.dport": 5353,
		"process_kprobe.args.1.skb_arg.protocol": "IPPROTO_UDP", "process_kprobe.args.0.sock_arg.sport": 5353,
		"process_kprobe.process.binary": "/probe", "ocigate.point": "receive"})
	if args, _ := ev["process_kprobe"].(map[string]any)["process"].(map[string]any)["arguments"].(string); ev != nil && !strings.Contains(args, "udprecv") {
		t.Errorf("the datagram's process is not the receiving socket's creator (probe udprecv): %v", ev["process_kprobe"])
	}
}

// dev_hard_start_xmit: a UDP datagram the container sends on lo is
// reported where it leaves through the device (net_dev_arg lo), for the
// sender, which the kernel sends it in the context of; the packets of
// its TCP connect are not (Protocol UDP), nor the kernel's ICMP answer
// (no workload's socket).
func TestTetragonDevHardStartXmit(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "xmit", "net-dev-hard-start-xmit")
	res := tetragonContainer(t, p, true, "/bin/sh", "-c", "/probe udp 127.0.0.1:9; /probe connect 127.0.0.1:9; true")
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "dev_hard_start_xmit",
		"process_kprobe.policy_name": "net-dev-hard-start-xmit", "process_kprobe.action": "KPROBE_ACTION_POST",
		"process_kprobe.args.0.skb_arg.daddr": "127.0.0.1", "process_kprobe.args.0.skb_arg.dport": 9,
		"process_kprobe.args.0.skb_arg.protocol": "IPPROTO_UDP", "process_kprobe.args.1.net_dev_arg.name": "lo",
		"process_kprobe.process.binary": "/probe", "ocigate.point": "xmit"})
	time.Sleep(time.Second)
	if n := countEvents(res.ID, "dev_hard_start_xmit"); n != 1 {
		t.Errorf("%d dev_hard_start_xmit events, want 1 (the datagram; not the TCP connect's packets)\n%s", n, diagnostics(res.ID))
	}
}

// kfree_skb_reason (stack_traces.yaml's hook): a packet of the
// container's raw socket that the kernel frees as a drop (a malformed
// header, EINVAL) is reported with its drop reason, for the sender.
func TestTetragonKfreeSkbReason(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "kfree-skb", "net-kfree-skb-reason")
	res := tetragonContainer(t, p, true, "/probe", "rawdrop")
	if res.Stdout != "ok\n" {
		t.Fatalf("want the malformed packet refused with EINVAL: %v", res)
	}
	ev := waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "kfree_skb_reason",
		"process_kprobe.policy_name": "net-kfree-skb-reason", "process_kprobe.action": "KPROBE_ACTION_POST",
		"process_kprobe.args.1.label": "reason", "process_kprobe.process.binary": "/probe", "ocigate.point": "drop"})
	if ev == nil {
		return
	}
	args, _ := ev["process_kprobe"].(map[string]any)["args"].([]any)
	reason, _ := args[1].(map[string]any)["int_arg"].(map[string]any)["value"].(float64)
	if reason < 1 { // SKB_DROP_REASON_NOT_SPECIFIED: 1 or 2, as the kernel numbers it
		t.Errorf("drop reason %v, want the kernel's (not specified: 1 or 2): %v", reason, args)
	}
}

// stack_traces: the same drop with Post kernelStackTrace and
// userStackTrace: the kernel's frames are symbolized (the raw socket's
// send among them), the user's name the probe's file.
func TestTetragonStackTraces(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "stacks", "act-stack-traces")
	res := tetragonContainer(t, p, true, "/probe", "rawdrop", "hold")
	if res.Stdout != "ok\n" {
		t.Fatalf("want the malformed packet refused with EINVAL: %v", res)
	}
	// A drop the kernel makes in softirq while /probe is the current
	// task (a timer interrupt's RCU work freeing some other socket's
	// buffer) is /probe's too, as for Tetragon's kprobe on kfree_skb:
	// the event wanted is the one of the probe's own send, whose kernel
	// stack is symbolized with the raw socket's send among its frames.
	want := agentlog.Matcher(map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "kfree_skb_reason",
		"process_kprobe.policy_name": "act-stack-traces", "process_kprobe.process.binary": "/probe"})
	ev, err := events.Wait(context.Background(), eventTimeout, func(ev map[string]any) bool {
		return want(ev) && slices.ContainsFunc(stackFrames(ev, "kernel_stack_trace", "symbol"),
			func(s string) bool { return strings.HasPrefix(s, "raw_send") })
	})
	if err != nil {
		t.Fatalf("no drop event of the container with the raw socket's send (raw_sendmsg) in its kernel stack: %v\n%s",
			err, diagnostics(res.ID))
	}
	if mods := stackFrames(ev, "user_stack_trace", "module"); !slices.Contains(mods, "/probe") {
		t.Errorf("user stack modules %v: want /probe among them (note %v)", mods, ev["ocigate"])
	}
}

// stackFrames returns field of each frame of a process_kprobe event's
// stack trace name.
func stackFrames(ev map[string]any, name, field string) []string {
	kp, _ := ev["process_kprobe"].(map[string]any)
	list, _ := kp[name].([]any)
	var out []string
	for _, f := range list {
		s, _ := f.(map[string]any)[field].(string)
		out = append(out, s)
	}
	return out
}

// dns-only-specified-servers: DNS to a server other than 127.0.0.53
// kills the sender, TCP or UDP, connected or not; 127.0.0.53 is allowed.
func TestTetragonDNSOnlySpecifiedServers(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "dns-only", "net-ip-output-dns-only")
	for _, op := range []string{"udp", "udpconnect", "connect"} {
		res := tetragonContainer(t, p, true, "/probe", op, unroutable+":53")
		if !stopped(res) {
			t.Errorf("%s to %s:53: want killed: %v", op, unroutable, res)
		}
		waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "ip_output",
			"process_kprobe.action": "KPROBE_ACTION_SIGKILL", "process_kprobe.args.0.skb_arg.daddr": unroutable,
			"process_kprobe.args.0.skb_arg.dport": 53})
	}
	ok := tetragonContainer(t, p, false, "/probe", "udp", "127.0.0.53:53")
	if killed(ok) {
		t.Fatalf("DNS to the allowed server killed: %v", ok)
	}
	noEvent(t, ok.ID, map[string]any{"ocigate.container_id": ok.ID, "process_kprobe.function_name": "ip_output"})
}

// datagram-with-selectors: UDP to 203.0.113.0/24 is reported, at most
// once a minute per thread (rateLimit).
func TestTetragonDatagramRateLimit(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "datagram", "net-cgroup-skb-datagram")
	res := tetragonContainer(t, p, true, "/bin/sh", "-c", "/probe udp "+unroutable+":9; /probe udp "+unroutable+":9")
	want := map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "__cgroup_bpf_run_filter_skb",
		"process_kprobe.args.1.skb_arg.daddr": unroutable, "process_kprobe.args.1.skb_arg.protocol": "IPPROTO_UDP"}
	waitEvent(t, res.ID, want)
	// Two probes, two threads: one event each; a third send by the same
	// thread would be dropped (internal/agent's test checks the window).
	time.Sleep(time.Second)
	if n := countEvents(res.ID, "__cgroup_bpf_run_filter_skb"); n != 2 {
		t.Errorf("%d events, want one per sending thread (2)\n%s", n, diagnostics(res.ID))
	}
}

// countEvents counts the event lines of a container naming a function.
func countEvents(id, function string) int {
	n := 0
	for _, l := range events.Lines() {
		if strings.Contains(l, id) && strings.Contains(l, `"function_name":"`+function+`"`) {
			n++
		}
	}
	return n
}

// An lsmhook: socket_connect refuses with argError -1 and is reported as
// Tetragon reports LSM hooks, process_lsm.
func TestTetragonLSMSocketConnect(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "lsm-connect", "net-lsm-socket-connect")
	res := tetragonContainer(t, p, true, "/probe", "connect", unroutable+":80")
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" {
		t.Fatalf("want EPERM: %v", res)
	}
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_lsm.function_name": "socket_connect",
		"process_lsm.action": "KPROBE_ACTION_OVERRIDE", "process_lsm.args.1.sockaddr_arg.addr": unroutable,
		"process_lsm.args.1.sockaddr_arg.port": 80, "ocigate.enforced": true})
}

// security_bprm_check: Equal on the executed file's path kills its exec.
func TestTetragonBprmCheckEqual(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "bprm-equal", "exec-bprm-check-equal")
	res := tetragonContainer(t, p, true, "/bin/sh", "-c", "/usr/bin/nc -h 2>/dev/null; echo rc=$?; /bin/true; echo true=$?")
	if !strings.Contains(res.Stdout, "rc=137") || !strings.Contains(res.Stdout, "true=0") {
		t.Fatalf("want nc killed at its exec and true to run: %v", res)
	}
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "security_bprm_check",
		"process_kprobe.action": "KPROBE_ACTION_SIGKILL", "process_kprobe.args.0.linux_binprm_arg.path": "/usr/bin/nc"})
}

// lsm_bprm_check: the shell (matchBinaries names the program calling
// exec, as in Tetragon) executing a file ending in bin/nc is refused
// (the fallback cannot refuse an exec: it kills it before it runs); the
// event is a process_lsm with the file's hash. nc started by runc (not
// by busybox) runs.
func TestTetragonLSMBprmCheck(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "lsm-bprm", "exec-lsm-bprm-postfix")
	res := tetragonContainer(t, p, true, "/bin/sh", "-c", "/usr/bin/nc -h 2>/dev/null; echo rc=$?; sleep 1")
	if !strings.Contains(res.Stdout, "rc=137") && !strings.Contains(res.Stdout, "rc=126") {
		t.Fatalf("want the exec of nc by busybox refused or killed: %v", res)
	}
	data, err := os.ReadFile(filepath.Join(rootfsDir, "usr/bin/nc"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_lsm.function_name": "bprm_check_security",
		"process_lsm.action": "KPROBE_ACTION_OVERRIDE", "process_lsm.args.0.linux_binprm_arg.path": "/usr/bin/nc",
		"process_lsm.ima_hash": "sha256:" + hex.EncodeToString(sum[:]), "ocigate.enforced": true})
	direct := tetragonContainer(t, p, true, "/usr/bin/nc", "-h")
	if killed(direct) {
		t.Fatalf("nc started by runc, not by busybox, was stopped: %v", direct)
	}
}

// lsm_track_grandparent: every exec is reported with the comm of the
// grandparent of the process that execs (resolve
// mm.owner.real_parent.real_parent.comm): xargs starts sh, whose child
// execs cat, so cat's exec names xargs.
func TestTetragonTrackGrandparent(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "grandparent", "exec-resolve-grandparent")
	res := tetragonContainer(t, p, true, "/bin/sh", "-c", "echo x | /bin/xargs /bin/sh -c '/bin/cat /dev/null; echo done'")
	if !strings.Contains(res.Stdout, "done") {
		t.Fatalf("want the chain to run: %v", res)
	}
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_lsm.function_name": "bprm_check_security",
		"process_lsm.policy_name": "exec-resolve-grandparent", "process_lsm.action": "KPROBE_ACTION_POST",
		"process_lsm.process.binary": "/bin/busybox", "process_lsm.args.0.string_arg": "xargs"})
}

// nsChangeScript connects to 127.0.0.1:9, enters a new user namespace
// (unshare(CLONE_NEWUSER), no exec), and connects to 127.0.0.1:10.
const nsChangeScript = `import ctypes, socket
def connect(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1)
    except OSError:
        pass
connect(9)
libc = ctypes.CDLL(None, use_errno=True)
print("unshare", libc.unshare(0x10000000), ctypes.get_errno())
connect(10)
`

// matchNamespaceChanges In Mnt, User: a connect after the process left
// the user namespace it exec'd in is reported; its connect before is
// not (python3 of the host root: one thread, so unshare works).
func TestTetragonNamespaceChanges(t *testing.T) {
	needHostRoot(t)
	p := tetragonProfile(t, "ns-changes", "sel-namespace-changes")
	res := runContainer(t, ctrOpts{Name: "ns-changes", Args: []string{"/usr/bin/python3", "-c", nsChangeScript},
		OwnNetwork: true, HostRoot: true, Annotations: map[string]string{"ocigate.io/profile": p}})
	if !strings.Contains(res.Stdout, "unshare 0 0") {
		t.Fatalf("want unshare(CLONE_NEWUSER) to succeed: %v", res)
	}
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "tcp_connect",
		"process_kprobe.policy_name": "sel-namespace-changes", "process_kprobe.args.0.sock_arg.dport": 10})
	noEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "tcp_connect",
		"process_kprobe.args.0.sock_arg.dport": 9})
}

// fd_memfd_kill: an exec through /proc/self/fd/ (a memfd) is killed
// (sys_execve Prefix on the path exec was given); memfd_create's name is
// reported (sys_memfd_create Equal).
func TestTetragonExecveMemfd(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "memfd", "exec-sys-execve-memfd", "memfd-create-name")
	res := tetragonContainer(t, p, true, "/probe", "memfdexec", "proc")
	if !killed(res) || strings.Contains(res.Stdout, "fileless-ran") {
		t.Fatalf("want the fileless exec killed: %v", res)
	}
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "sys_execve",
		"process_kprobe.action": "KPROBE_ACTION_SIGKILL", "ocigate.point": "exec"})
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "sys_memfd_create",
		"process_kprobe.args.0.string_arg": "payload", "process_kprobe.action": "KPROBE_ACTION_POST"})
}

// killer: raw_syscalls/sys_enter InMap list:dups with NotifyEnforcer
// argSig 9 kills busybox when it calls dup2 (a shell redirection).
func TestTetragonRawSyscallsEnforcer(t *testing.T) {
	requireE2E(t)
	p := tetragonProfile(t, "killer", "fd-raw-syscalls-enforcer")
	res := tetragonContainer(t, p, true, "/bin/sh", "-c", "echo hi >/dev/null; echo survived")
	if !killed(res) || strings.Contains(res.Stdout, "survived") {
		t.Fatalf("want the shell killed at its dup2: %v", res)
	}
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_tracepoint.subsys": "raw_syscalls",
		"process_tracepoint.event": "sys_enter", "process_tracepoint.action": "KPROBE_ACTION_NOTIFYENFORCER",
		"process_tracepoint.args.0.syscall_id.id": 33})
}

// GetUrl: the agent requests the policy's URL when the event comes.
func TestTetragonGetURL(t *testing.T) {
	requireE2E(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.URL.Path })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	data, err := os.ReadFile(filepath.Join(compatDir, "act-geturl-dnslookup.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policy := strings.Replace(string(data), "http://127.0.0.1:1/", "http://"+ln.Addr().String()+"/", 1)
	p := writeTetragonProfile(t, "geturl", policy+"---\n", []string{"  - name: act-geturl-dnslookup"})
	res := tetragonContainer(t, p, false, "/probe", "connect", "127.0.0.3:4445")
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "tcp_connect"})
	select {
	case path := <-got:
		if path != "/ocigate-canary" {
			t.Fatalf("GetUrl requested %q", path)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not request the GetUrl URL")
	}
}

// The per-packet xmit point (net_dev_start_xmit, run for every packet of
// the host) is attached only while a loaded profile needs it: detached
// with the e2e's own profiles, attached once a profile of
// dev_hard_start_xmit is loaded (and it reports the container's
// datagram), detached again once that profile is removed.
func TestPerPacketPointAttachedOnlyWhileNeeded(t *testing.T) {
	requireE2E(t)
	waitPointAttached(t, socketPath, pinDir, "xmit", false)
	p := tetragonProfile(t, "pkt-xmit", "net-dev-hard-start-xmit")
	id := waitPointAttached(t, socketPath, pinDir, "xmit", true)
	res := tetragonContainer(t, p, true, "/bin/sh", "-c", "/probe udp 127.0.0.1:9; true")
	waitEvent(t, res.ID, map[string]any{"ocigate.container_id": res.ID, "process_kprobe.function_name": "dev_hard_start_xmit",
		"process_kprobe.policy_name": "net-dev-hard-start-xmit", "ocigate.point": "xmit"})
	if err := os.Remove(filepath.Join(profileDir, "zz-tetragon-pkt-xmit.yaml")); err != nil {
		t.Fatal(err)
	}
	waitPointAttached(t, socketPath, pinDir, "xmit", false)
	if l, err := link.NewFromID(id); err == nil {
		l.Close()
		t.Fatalf("xmit's link %d is still in the kernel after its profile was removed", id)
	}
}

// An agent restarted over its pins ends with exactly the per-packet
// points its profiles need: a profile needing xmit that was added while
// it was down attaches xmit at start (taken over from its pinned
// program, nothing loaded), and one removed while it was down detaches
// it.
func TestPerPacketPointsAfterRestart(t *testing.T) {
	requireE2E(t)
	a := startOwnAgent(t, "pkt-points")
	waitPointAttached(t, a.socket, a.pinDir, "xmit", false)
	if err := a.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	tetragonProfile(t, "pkt-restart", "net-dev-hard-start-xmit") // the suite's agent loads it too
	a.start()
	waitPointAttached(t, a.socket, a.pinDir, "xmit", true)
	if err := a.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(profileDir, "zz-tetragon-pkt-restart.yaml")); err != nil {
		t.Fatal(err)
	}
	a.start()
	waitPointAttached(t, a.socket, a.pinDir, "xmit", false)
	if n := strings.Count(string(readFile(t, a.log)), `"programs": "reused"`); n != 2 {
		t.Errorf("%d restarts took the pinned programs over, want 2:\n%s", n, agentlog.Tail(a.log, 30))
	}
}

// waitPointAttached waits until the status of the agent at socket says
// point is attached (or detached) and its link pinned in pin says the
// same; it returns the attached link's id.
func waitPointAttached(t *testing.T, socket, pin, point string, attached bool) link.ID {
	t.Helper()
	var why string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command(agentdBin, "status", "--socket", socket, "-o", "json").Output()
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		var st api.Status
		if err := json.Unmarshal(out, &st); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(st.Backends, func(b api.Backend) bool { return b.Point == point })
		if i < 0 {
			t.Fatalf("status lists no point %s", point)
		}
		mech := strings.TrimPrefix(st.Backends[i].Mechanism, "tracepoint/")
		l, err := link.LoadPinnedLink(filepath.Join(pin, "links", pinnedProgram[mech]), nil)
		var id link.ID
		if err == nil {
			info, ierr := l.Info()
			l.Close()
			if ierr != nil {
				t.Fatal(ierr)
			}
			id = info.ID
		}
		if st.Backends[i].Detached != attached && (err == nil) == attached {
			return id
		}
		why = fmt.Sprintf("status %+v, pinned link: %v", st.Backends[i], err)
	}
	t.Fatalf("point %s never %s: %s", point, map[bool]string{true: "attached", false: "detached"}[attached], why)
	return 0
}

// pinnedProgram names the program (and so its link's pin) of a
// per-packet point's tracepoint.
var pinnedProgram = map[string]string{"net/net_dev_start_xmit": "dev_xmit", "skb/kfree_skb": "skb_drop"}
