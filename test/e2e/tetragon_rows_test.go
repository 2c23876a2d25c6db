package e2e

import (
	"strings"
	"testing"
)

// The rows of docs/tetragon-compat.md that load, each triggered in a real
// container: the event Tetragon documents for the policy (and the
// outcome where the policy acts), and no event where its selectors
// leave the operation alone.

// compatRow is one row's trigger and what it must give.
type compatRowCase struct {
	name     string   // the test policy (profiles/testdata/tetragon, without .yaml)
	args     []string // the container's process
	want     []map[string]any
	none     []map[string]any // no such event
	stdout   string           // the container's stdout must contain it
	exitCode int              // the container's exit code, when not 0
}

// listenThen starts busybox nc listening on 127.0.0.1:port in the
// container, then runs cmd.
func listenThen(port, cmd string) []string {
	return []string{"/bin/sh", "-c", "/bin/nc -l -p " + port + " >/dev/null & sleep 1; " + cmd + "; sleep 1"}
}

// holdListenThen is listenThen with a listener that keeps its
// connection open for 5 seconds.
func holdListenThen(port, cmd string) []string {
	return []string{"/bin/sh", "-c", "sleep 5 | /bin/nc -l -p " + port + " >/dev/null & sleep 1; " + cmd + "; sleep 1"}
}

var compatRowCases = []compatRowCase{
	{name: "act-signal-notify-nopost", args: holdListenThen("4446",
		"/probe connect "+unroutable+":4447; sleep 3 | /bin/nc 127.0.0.1 4446; echo rc=$?"),
		// 4447: NotifyEnforcer argError -111 (ECONNREFUSED where the
		// network is unreachable), NoPost; 4446: SIGUSR1 ends nc (the
		// cgroup hook cannot signal: the agent does, and the event says so).
		stdout: "error: connection refused\nrc=138",
		want: []map[string]any{{"process_kprobe.function_name": "security_socket_connect", "process_kprobe.action": "KPROBE_ACTION_SIGNAL",
			"process_kprobe.args.0.sockaddr_arg.port": 4446, "process_kprobe.process.binary": "/bin/busybox",
			"ocigate.note": "cgroup_sock_addr cannot send a signal: the agent sent signal 10 when it read the event, after the call returned"}},
		none: []map[string]any{{"process_kprobe.args.0.sockaddr_arg.port": 4447}}},
	{name: "exec-creds-from-file", args: []string{"/bin/true"},
		want: []map[string]any{{"process_kprobe.function_name": "security_bprm_creds_from_file",
			"process_kprobe.args.0.file_arg.path": "/bin/busybox", "process_kprobe.action": "KPROBE_ACTION_POST"}}},
	{name: "exec-lsm-resolve-file", args: []string{"/bin/sh", "-c", "/probe udp 127.0.0.1:9; true"},
		want: []map[string]any{{"process_lsm.function_name": "bprm_check_security",
			"process_lsm.args.0.file_arg.path": "/probe", "process_lsm.action": "KPROBE_ACTION_POST"}}},
	{name: "exec-rawtp-process-exec", args: []string{"/bin/sh", "-c", "/probe udp 127.0.0.1:9; /bin/true"},
		want: []map[string]any{{"process_tracepoint.subsys": "sched", "process_tracepoint.event": "sched_process_exec",
			"process_tracepoint.args.0.linux_binprm_arg.path": "/probe"}},
		none: []map[string]any{{"process_tracepoint.event": "sched_process_exec", "process_tracepoint.args.0.linux_binprm_arg.path": "/bin/busybox"}}},
	{name: "fd-sys-dup2-newfd", args: listenThen("2223", "/bin/nc 127.0.0.1 2223 -e /bin/true"),
		want: []map[string]any{{"process_kprobe.function_name": "sys_dup2", "process_kprobe.args.1.int_arg.value": 0,
			"process_kprobe.action": "KPROBE_ACTION_POST"}}},
	{name: "fd-list-syscalls-kprobe", args: listenThen("2224", "/usr/bin/nc 127.0.0.1 2224 -e /bin/true; echo rc=$?"),
		stdout: "rc=137",
		want:   []map[string]any{{"process_kprobe.action": "KPROBE_ACTION_SIGKILL", "process_kprobe.process.binary": "/usr/bin/nc"}}},
	{name: "net-fentry-connect", args: []string{"/probe", "connect", "127.0.0.1:9"},
		want: []map[string]any{{"process_kprobe.function_name": "security_socket_connect",
			"process_kprobe.args.0.sockaddr_arg.family": "AF_INET", "process_kprobe.args.0.sockaddr_arg.port": 9}}},
	{name: "net-syscall-connect", args: []string{"/bin/sh", "-c", "/probe connect 127.0.0.1:9; /probe connect " + unroutable + ":9"},
		want: []map[string]any{{"process_kprobe.function_name": "sys_connect", "process_kprobe.args.1.sockaddr_arg.addr": unroutable}},
		none: []map[string]any{{"process_kprobe.function_name": "sys_connect", "process_kprobe.args.1.sockaddr_arg.addr": "127.0.0.1"}}},
	{name: "net-lsm-socket-family", args: []string{"/bin/sh", "-c",
		"/bin/nc -l -p 4444 2>&1; /probe raw; /probe udp " + unroutable + ":9"},
		stdout: "error: operation not permitted",
		want: []map[string]any{
			{"process_lsm.function_name": "socket_bind", "process_lsm.action": "KPROBE_ACTION_OVERRIDE", "process_lsm.args.1.sockaddr_arg.port": 4444},
			{"process_lsm.function_name": "socket_create", "process_lsm.action": "KPROBE_ACTION_OVERRIDE"},
			{"process_lsm.function_name": "socket_sendmsg", "process_lsm.action": "KPROBE_ACTION_POST"}}},
	{name: "net-tcp-observe", args: listenThen("2225", "echo hi | /bin/nc 127.0.0.1 2225"),
		want: []map[string]any{
			{"process_kprobe.function_name": "tcp_connect", "process_kprobe.args.0.sock_arg.dport": 2225},
			{"process_kprobe.function_name": "tcp_sendmsg", "process_kprobe.args.0.sock_arg.dport": 2225},
			{"process_kprobe.function_name": "tcp_close"}}},
	{name: "net-udp-sendmsg-sock-tracking", args: []string{"/probe", "udp", "127.0.0.1:53"},
		want: []map[string]any{{"process_kprobe.function_name": "udp_sendmsg", "process_kprobe.args.0.sock_arg.dport": 53,
			"process_kprobe.process.binary": "/probe"}}},
	{name: "sel-capabilities", args: []string{"/probe", "connect", "127.0.0.1:9"},
		// the container has CAP_NET_RAW (Docker's default set)
		want: []map[string]any{{"process_kprobe.function_name": "tcp_connect", "process_kprobe.args.0.sock_arg.dport": 9}}},
	{name: "sel-macros", args: []string{"/bin/sh", "-c", "/probe connect 127.0.0.1:23; /bin/nc 127.0.0.1 23"},
		want: []map[string]any{{"process_kprobe.function_name": "tcp_connect", "process_kprobe.process.binary": "/bin/busybox",
			"process_kprobe.args.0.sock_arg.dport": 23}},
		none: []map[string]any{{"process_kprobe.function_name": "tcp_connect", "process_kprobe.process.binary": "/probe"}}},
	{name: "sel-matchargs-args-field", args: []string{"/probe", "udpconnect", "127.0.0.1:9"},
		want: []map[string]any{{"process_kprobe.function_name": "security_socket_connect", "process_kprobe.args.0.sockaddr_arg.port": 9}}},
	{name: "sel-namespaces-host", args: []string{"/probe", "connect", "127.0.0.1:9"},
		want: []map[string]any{{"process_kprobe.function_name": "tcp_connect", "process_kprobe.args.0.sock_arg.dport": 9}}},
	{name: "sel-pids", args: []string{"/bin/sh", "-c", "/probe connect 127.0.0.1:9"},
		// NotIn 1 with followForks: the container's init and every
		// process it starts are left alone.
		none: []map[string]any{{"process_kprobe.function_name": "tcp_connect"}}},
	{name: "spec-namespaced", args: []string{"/probe", "connect", "127.0.0.1:9"},
		want: []map[string]any{{"process_kprobe.function_name": "tcp_connect", "process_kprobe.args.0.sock_arg.dport": 9}}},
	{name: "spec-options-kprobe-multi", args: []string{"/probe", "connect", "127.0.0.1:9"},
		want: []map[string]any{{"process_kprobe.function_name": "tcp_connect", "process_kprobe.args.0.sock_arg.dport": 9}}},
	{name: "spec-pod-selector-empty", args: []string{"/probe", "connect", "127.0.0.1:9"},
		want: []map[string]any{{"process_kprobe.function_name": "tcp_connect", "process_kprobe.args.0.sock_arg.dport": 9}}},
}

// TestTetragonCompatRows runs each row of compatRowCases in a container
// of its own network namespace under a profile of that one policy.
func TestTetragonCompatRows(t *testing.T) {
	requireE2E(t)
	for _, c := range compatRowCases {
		t.Run(c.name, func(t *testing.T) {
			p := tetragonProfile(t, "row-"+c.name, c.name)
			res := tetragonContainer(t, p, true, c.args...)
			if !strings.Contains(res.Stdout, c.stdout) {
				t.Errorf("want stdout with %q: %v", c.stdout, res)
			}
			for _, w := range c.want {
				w["ocigate.container_id"] = res.ID
				waitEvent(t, res.ID, w)
			}
			for _, n := range c.none {
				n["ocigate.container_id"] = res.ID
				noEvent(t, res.ID, n)
			}
		})
	}
}
