package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/hostfs"
	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/internal/workloadstate"
)

// serveStatus serves status requests on a fresh socket.
func serveStatus(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agentd.sock")
	serveAgent(t, path, 0, statusAgent{})
	return path
}

// uninstall --bpf removes the pins and the records, refuses while an
// agent answers, and says when there is nothing to remove.
func TestUninstallBPF(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("pinning needs root")
	}
	if _, err := hostfs.EnsureAll(); err != nil {
		t.Fatal(err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	pinDir := filepath.Join(hostfs.BPFFS, fmt.Sprintf("ocigate-cmdtest-%d", os.Getpid()))
	if err := os.MkdirAll(filepath.Join(pinDir, "maps"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(pinDir) })
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Pin(filepath.Join(pinDir, "maps", "workloads")); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(t.TempDir(), "workloads")
	st, err := workloadstate.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(&workload.Workload{ContainerID: "c1", Identity: cgroupfilter.Identity{CgroupID: 42, CgroupPath: "/c1"}}); err != nil {
		t.Fatal(err)
	}
	args := []string{"--bpf", "--pin-dir", pinDir, "--state-dir", stateDir}

	var out bytes.Buffer
	if err := uninstallBPFCmd(append(args, "--socket", serveStatus(t)), &out); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Fatalf("with an agent answering: %v", err)
	}
	if _, err := os.Stat(filepath.Join(pinDir, "maps", "workloads")); err != nil {
		t.Fatalf("removed under a running agent: %v", err)
	}

	gone := filepath.Join(t.TempDir(), "agentd.sock")
	if err := uninstallBPFCmd(append(args, "--socket", gone), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "unpinned 1 BPF objects") || !strings.Contains(out.String(), "removed 1 workload records") {
		t.Fatalf("output %q", out.String())
	}
	for _, p := range []string{pinDir, stateDir} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	out.Reset()
	if err := uninstallBPFCmd(append(args, "--socket", gone), &out); err != nil || !strings.Contains(out.String(), "nothing pinned") {
		t.Fatalf("second run: %v, %q", err, out.String())
	}
}
