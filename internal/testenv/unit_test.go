package testenv

import (
	"encoding/json"
	"testing"
)

// Unit tests of the pure helpers; they need neither root nor OCIGATE_E2E.

func TestHooksDJSON(t *testing.T) {
	var doc struct {
		Version string `json:"version"`
		Hook    struct {
			Path string   `json:"path"`
			Args []string `json:"args"`
		} `json:"hook"`
		When   map[string]bool `json:"when"`
		Stages []string        `json:"stages"`
	}
	if err := json.Unmarshal(HooksDJSON("/bin/h", []string{"h", "x"}), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != "1.0.0" || doc.Hook.Path != "/bin/h" || len(doc.Hook.Args) != 2 ||
		!doc.When["always"] || len(doc.Stages) != 2 || doc.Stages[0] != "createRuntime" || doc.Stages[1] != "poststop" {
		t.Errorf("unexpected hooks.d document %+v", doc)
	}
}

func TestBundleSpec(t *testing.T) {
	if _, err := (Bundle{}).Spec(); err == nil {
		t.Error("bundle without args accepted")
	}
	if _, err := (Bundle{Args: []string{"x"}, Rootfs: "/"}).Spec(); err == nil {
		t.Error("rootfs / accepted")
	}
	s, err := Bundle{Args: []string{"x"}, HostNetwork: true, Poststop: []Hook{{Path: "/h", Timeout: 3}}}.Spec()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == "network" {
			t.Error("HostNetwork bundle has a network namespace")
		}
	}
	for _, m := range s.Mounts {
		if m.Type == "sysfs" {
			t.Error("HostNetwork bundle mounts sysfs")
		}
	}
	if s.Hooks == nil || len(s.Hooks.Poststop) != 1 || *s.Hooks.Poststop[0].Timeout != 3 || s.Hooks.CreateRuntime != nil {
		t.Errorf("hooks = %+v", s.Hooks)
	}
	if s.Version != "1.0.2" {
		t.Errorf("ociVersion %q", s.Version)
	}
}
