// Package pkg tests the Debian package on this machine: dpkg -i, the
// unit, the agent started as the unit starts it, a podman container
// through the installed hooks.d entry, and dpkg --purge restoring every
// file it touched. It installs into /usr/bin, /etc and the default
// socket, pin and hooks.d paths, so `make e2e` runs it alone, after
// test/e2e. It runs only with OCIGATE_E2E=1, as root.
package pkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/testenv"
)

// Paths the package and its scripts touch: their state before must be
// their state after the purge.
var watched = []string{"/etc", "/usr/share/containers", "/usr/lib/systemd/system", "/usr/bin/ocigate-agentd",
	"/usr/bin/ocigate-hook", "/usr/bin/ocigate-runc", "/usr/share/doc/ocigate", "/usr/share/bash-completion/completions/ocigate-agentd",
	"/var/lib/ocigate", "/var/log/ocigate", "/run/ocigate", "/sys/fs/bpf/ocigate"}

// Installed paths.
const (
	unitPath  = "/lib/systemd/system/ocigate-agentd.service"
	hooksDir  = "/usr/share/containers/oci/hooks.d"
	agentd    = "/usr/bin/ocigate-agentd"
	socket    = "/run/ocigate/agentd.sock"
	pinDir    = "/sys/fs/bpf/ocigate"
	eventsLog = "/var/log/ocigate/events.jsonl"
)

// requireRoot skips unless OCIGATE_E2E=1, and needs root and the tools.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getenv("OCIGATE_E2E") != "1" {
		t.Skip("the package test installs into the host: set OCIGATE_E2E=1 (root)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("OCIGATE_E2E=1 needs root")
	}
	testenv.NeedTools(t, "dpkg", "systemd-analyze", testenv.PodmanPath, testenv.RuncPath, "make", "git")
}

// TestDebianPackage installs the package, runs the agent as its unit
// does and a podman container through the installed hook, and purges it.
func TestDebianPackage(t *testing.T) {
	requireRoot(t)
	checkClean(t)
	deb := buildPackage(t)
	before := snapshot(t, watched)
	t.Cleanup(func() { purge(t, before) })

	out := run(t, "dpkg", "-i", deb)
	for _, want := range []string{"create " + filepath.Join(hooksDir, "ocigate-createRuntime.json"), "/etc/containerd/config.toml"} {
		if !strings.Contains(out, want) {
			t.Errorf("dpkg -i: postinst did not say %q:\n%s", want, out)
		}
	}
	if out := run(t, "dpkg", "-i", deb); !strings.Contains(out, "install podman: nothing to change") {
		t.Errorf("a second dpkg -i changed the runtimes again:\n%s", out)
	}
	run(t, "systemd-analyze", "verify", unitPath)
	if out := run(t, agentd, "check"); !strings.Contains(out, "podman") || !strings.Contains(out, "wired") {
		t.Errorf("check does not list podman wired:\n%s", out)
	}

	a := startAsUnit(t)
	reverseShellRefused(t)
	a.stop(t)
}

// checkClean fails unless nothing of ocigate is installed here.
func checkClean(t *testing.T) {
	t.Helper()
	if err := exec.Command("dpkg", "-s", "ocigate").Run(); err == nil {
		t.Fatal("the ocigate package is installed already: this test installs and purges it; dpkg --purge ocigate first")
	}
	for _, p := range []string{socket, pinDir, filepath.Join(hooksDir, "ocigate-createRuntime.json")} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists: another ocigate runs on this host", p)
		}
	}
}

// purge stops what the test started, purges the package, and checks
// that every watched path is as it was.
func purge(t *testing.T, before map[string]string) {
	t.Helper()
	if out, err := exec.Command("dpkg", "--purge", "ocigate").CombinedOutput(); err != nil {
		t.Errorf("dpkg --purge: %v\n%s", err, out)
	} else {
		t.Logf("dpkg --purge:\n%s", out)
	}
	after := snapshot(t, watched)
	for _, d := range diffSnapshots(before, after) {
		t.Errorf("after the purge: %s", d)
	}
	if t.Failed() {
		// Leave the host as found even so: the pins and the hooks.d files.
		_ = os.RemoveAll(pinDir)
	}
}

// buildPackage runs make package at the module root and returns the
// .deb.
func buildPackage(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "package")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(root, "dist", "ocigate_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("make package made %v, want one .deb", debs)
	}
	return debs[0]
}

// run runs a command, fails the test when it fails, and returns its
// combined output.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	t.Logf("%s %s:\n%s", name, strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
