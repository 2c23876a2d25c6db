package main

import (
	"strings"
	"testing"
)

func TestParseExpect(t *testing.T) {
	e, err := parseExpect("lsm,exec=fmod_ret")
	if err != nil {
		t.Fatal(err)
	}
	if e.For("connect") != "lsm" || e.For("exec") != "fmod_ret" {
		t.Errorf("got %s", e)
	}
	for _, bad := range []string{"", "bogus", "lsm,fallback", "lsm,nopoint=lsm", "connect=lsm", "lsm,exec=bogus"} {
		if _, err := parseExpect(bad); err == nil {
			t.Errorf("parseExpect(%q) succeeded", bad)
		}
	}
}

func TestCmdlineParam(t *testing.T) {
	cl := "console=ttyS0 quiet lsm=lockdown,capability ocigate.expect=lsm,exec=fallback\n"
	if got := cmdlineParam(cl, "ocigate.expect"); got != "lsm,exec=fallback" {
		t.Errorf("got %q", got)
	}
	if got := cmdlineParam(cl, "ocigate.enforcer"); got != "" {
		t.Errorf("got %q", got)
	}
}

func TestKernelAtLeast(t *testing.T) {
	for rel, want := range map[string]bool{
		"6.1.0-57-cloud-amd64": false, "6.3.0": true, "6.12.118+deb12-cloud-amd64": true,
		"5.15.0": false, "7.0.1": true, "6.18.44-fc-v1252": true, "garbage": false,
	} {
		if got := kernelAtLeast(rel, 6, 3); got != want {
			t.Errorf("kernelAtLeast(%q, 6, 3) = %v, want %v", rel, got, want)
		}
	}
}

func TestShortReason(t *testing.T) {
	if got := shortReason("verifier: too large\n0: (b7) r0 = 0"); got != "verifier: too large" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("x", 200)
	if got := shortReason(long); len(got) != 160 || !strings.HasSuffix(got, "...") {
		t.Errorf("got %d characters: %q", len(got), got)
	}
}
