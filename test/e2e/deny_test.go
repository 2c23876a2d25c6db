package e2e

import (
	"net"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocigate/ocigate/internal/testenv"
)

const deniedAddr = "127.0.0.2:4444"

// The container's very first program connects to the denied address: the
// hook must have made enforcement live before the process started.
func TestDeniedFirstConnect(t *testing.T) {
	requireE2E(t)
	res := runContainer(t, ctrOpts{Name: "first-connect", Args: []string{"/probe", "connect", deniedAddr}})
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" || res.ExitCode != 1 {
		t.Errorf("want the connect denied with EPERM; got %v", res)
	}
	waitEvent(t, res.ID, deniedConnect(res.ID, "127.0.0.2", 4444))
}

// An unconnected UDP sendto to the denied address is denied too (sendmsg4).
func TestDeniedUDPSendto(t *testing.T) {
	requireE2E(t)
	res := runContainer(t, ctrOpts{Name: "udp", Args: []string{"/probe", "udp", deniedAddr}})
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" || res.ExitCode != 1 {
		t.Errorf("want the sendto denied with EPERM; got %v", res)
	}
	waitEvent(t, res.ID, anyEnforced(res.ID))
}

func TestAllowed(t *testing.T) {
	requireE2E(t)
	t.Run("container-to-127.0.0.1", func(t *testing.T) {
		ln := listen(t, "127.0.0.1:0", "")
		res := runContainer(t, ctrOpts{Name: "allowed", Args: []string{"/probe", "connect", ln.Addr()}})
		if strings.TrimSpace(res.Stdout) != "ok" || res.ExitCode != 0 {
			t.Errorf("want the connect allowed; got %v", res)
		}
		if !ln.WaitConn(5 * time.Second) {
			t.Errorf("listener %s saw no connection", ln.Addr())
		}
		noEvent(t, res.ID, anyEnforced(res.ID))
	})
	t.Run("host-to-127.0.0.2", func(t *testing.T) {
		ln := listen(t, "127.0.0.2:0", "")
		c, err := net.DialTimeout("tcp", ln.Addr(), 5*time.Second)
		if err != nil {
			t.Fatalf("the host itself must not be filtered: %v\n%s", err, diagnostics(""))
		}
		c.Close()
		if !ln.WaitConn(5 * time.Second) {
			t.Errorf("listener %s saw no connection", ln.Addr())
		}
	})
	t.Run("unregistered-container-to-127.0.0.2", func(t *testing.T) {
		ln := listen(t, "127.0.0.2:0", "")
		res := runContainer(t, ctrOpts{Name: "unregistered", NoHook: true, Args: []string{"/probe", "connect", ln.Addr()}})
		if strings.TrimSpace(res.Stdout) != "ok" || res.ExitCode != 0 {
			t.Errorf("a container without the hook must not be filtered; got %v", res)
		}
		if !ln.WaitConn(5 * time.Second) {
			t.Errorf("listener %s saw no connection", ln.Addr())
		}
	})
}

func TestRawSocketDenied(t *testing.T) {
	requireE2E(t)
	// Control: without ocigate the bundle's capabilities allow raw sockets.
	ctl := runContainer(t, ctrOpts{Name: "raw-control", NoHook: true, Args: []string{"/probe", "raw"}})
	if strings.TrimSpace(ctl.Stdout) != "ok" {
		t.Fatalf("control container could not open a raw socket, the test proves nothing: %v", ctl)
	}
	res := runContainer(t, ctrOpts{Name: "raw", Args: []string{"/probe", "raw"}})
	if strings.TrimSpace(res.Stdout) != "error: operation not permitted" || res.ExitCode != 1 {
		t.Errorf("want the raw socket denied with EPERM; got %v", res)
	}
	waitEvent(t, res.ID, map[string]any{
		"process_kprobe.function_name": "security_socket_create",
		"process_kprobe.action":        "KPROBE_ACTION_OVERRIDE",
		"ocigate.container_id":         res.ID,
		"ocigate.enforced":             true,
	})
}

// A packet socket kills its caller on every backend: a Sigkill selector
// anywhere but at exec refuses and kills (the fallback's sys_enter_socket
// tracepoint, the LSM and fmod_ret programs' signal), unlike exec, where
// LSM and fmod_ret only refuse (execRefusal).
func TestPacketSocketKilled(t *testing.T) {
	requireE2E(t)
	res := runContainer(t, ctrOpts{Name: "packet", Args: []string{"/probe", "packet"}})
	if res.ExitCode != 128+9 || strings.Contains(res.Stdout, "ok") {
		t.Errorf("want the probe SIGKILLed (exit 137) before it prints; got %v", res)
	}
	waitEvent(t, res.ID, map[string]any{
		"process_kprobe.action": "KPROBE_ACTION_SIGKILL",
		"ocigate.container_id":  res.ID,
		"ocigate.enforced":      true,
	})
}

// A process that moves itself into a new child cgroup of its container
// stays subject to the container's policy.
func TestSubCgroupDenied(t *testing.T) {
	requireE2E(t)
	v2, err := testenv.CgroupV2Root()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cgroup v2 root: %s", v2)
	script := "mkdir /sys/fs/cgroup/sub && echo $$ > /sys/fs/cgroup/sub/cgroup.procs && " +
		"grep '^0::' /proc/self/cgroup && exec /probe connect " + deniedAddr
	res := runContainer(t, ctrOpts{
		Name:            "subcgroup",
		Args:            []string{"/bin/sh", "-c", script},
		CgroupNamespace: true,
		// In its own cgroup namespace the container sees its cgroup as the
		// root of a writable cgroup2 mount.
		Mounts: []specs.Mount{{
			Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup2",
			Options: []string{"nosuid", "noexec", "nodev", "rw"},
		}},
	})
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	if len(lines) != 2 || lines[0] != "0::/sub" {
		t.Fatalf("the container did not move itself into /sub: %v", res)
	}
	if lines[1] != "error: operation not permitted" || res.ExitCode != 1 {
		t.Errorf("want the connect from the sub-cgroup denied with EPERM; got %v", res)
	}
	waitEvent(t, res.ID, deniedConnect(res.ID, "127.0.0.2", 4444))
}
