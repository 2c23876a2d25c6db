package main

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/testenv"
)

// The hook starts on every container's start path, and it pays at its
// start for the code it links: the packages' initialisation and the
// pages their code and tables occupy. Measured here (interleaved runs of
// test/bench/minhook with and without them, 2000 each): reaching fmt,
// flag, context and x/sys/unix cost ~57 us of a ~1.2 ms start, and
// encoding/json and runtime-spec ~100 us more. So the code the hook
// reaches, error paths included, uses none of them (internal/errwrap,
// internal/plainjson, internal/jsonstr and plain system calls do their
// work); a package it imports may use them on paths only the agent
// takes, since what is not reached is not linked.
func TestHookReachesNoHeavyCode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hook")
	}
	bin := filepath.Join(t.TempDir(), "ocigate-hook")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	heavy := []string{"fmt.", "flag.", "context.", "reflect.", "encoding/json.", "encoding/base64.",
		"golang.org/x/sys/unix.", "github.com/opencontainers/", "net.", "sort."}
	found := map[string][]string{}
	for _, s := range syms {
		for _, p := range heavy {
			if strings.HasPrefix(s.Name, p) && len(found[p]) < 5 {
				found[p] = append(found[p], s.Name)
			}
		}
	}
	for _, p := range heavy {
		if len(found[p]) > 0 {
			t.Errorf("ocigate-hook reaches %s* (e.g. %s)", p, strings.Join(found[p], ", "))
		}
	}
	if !slices.ContainsFunc(syms, func(s elf.Symbol) bool { return strings.HasPrefix(s.Name, "github.com/ocigate/ocigate/cgroupfilter.") }) {
		t.Errorf("the symbol table lists no cgroupfilter code: is this the hook?")
	}
}

// Nor does the hook link containerd's cgroups package: cgroupfilter
// reads the host's layout itself.
func TestHookLinksNoContainerdCgroups(t *testing.T) {
	deps := testenv.Deps(t)
	if !slices.Contains(deps, "github.com/ocigate/ocigate/cgroupfilter") {
		t.Fatalf("go list -deps lists no cgroupfilter: %q", deps)
	}
	if slices.Contains(deps, "github.com/containerd/cgroups/v3") {
		t.Errorf("ocigate-hook links github.com/containerd/cgroups/v3")
	}
}
