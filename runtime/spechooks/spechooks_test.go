package spechooks

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocigate/ocigate/runtime/hooksd"
)

var opts = hooksd.Options{HookPath: "/usr/local/bin/ocigate-hook", Socket: "/run/x.sock"}

func decode(t *testing.T, b []byte) (map[string]json.RawMessage, *specs.Spec) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatalf("result is not JSON: %v\n%s", err, b)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("result is not a spec: %v\n%s", err, b)
	}
	return raw, &s
}

func TestHooks(t *testing.T) {
	h, err := Hooks(hooksd.Options{HookPath: "/bin/ocigate-hook", Extra: []string{"--fail-open"}, Timeout: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.CreateRuntime) != 1 || len(h.Poststop) != 1 || len(h.Prestart) != 0 {
		t.Fatalf("hooks %+v", h)
	}
	if got := h.CreateRuntime[0].Args; !reflect.DeepEqual(got, []string{"ocigate-hook", "--fail-open", "createRuntime"}) {
		t.Errorf("createRuntime args %q", got)
	}
	if got := h.Poststop[0]; got.Path != "/bin/ocigate-hook" || got.Timeout == nil || *got.Timeout != 4 ||
		!reflect.DeepEqual(got.Args, []string{"ocigate-hook", "--fail-open", "poststop"}) {
		t.Errorf("poststop %+v", got)
	}
	if _, err := Hooks(hooksd.Options{HookPath: "ocigate-hook"}); err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("relative hook path: %v", err)
	}
}

func TestAdd(t *testing.T) {
	const in = `{"ociVersion":"1.0.2","process":{"args":["sh"]},"x-vendor":{"keep":[1,2]},` +
		`"hooks":{"prestart":[{"path":"/usr/bin/netns"}],"createRuntime":[{"path":"/bin/other","args":["other"]}]}}`
	out, changed, err := Add([]byte(in), opts)
	if err != nil || !changed {
		t.Fatalf("Add: changed %v, %v", changed, err)
	}
	raw, s := decode(t, out)
	if string(raw["x-vendor"]) != `{"keep":[1,2]}` {
		t.Errorf("unknown member not kept: %s", raw["x-vendor"])
	}
	if s.Version != "1.0.2" || !reflect.DeepEqual(s.Process.Args, []string{"sh"}) {
		t.Errorf("spec fields changed: %+v", s)
	}
	if len(s.Hooks.Prestart) != 1 || s.Hooks.Prestart[0].Path != "/usr/bin/netns" {
		t.Errorf("prestart changed: %+v", s.Hooks.Prestart)
	}
	if len(s.Hooks.CreateRuntime) != 2 || s.Hooks.CreateRuntime[0].Path != "/bin/other" ||
		!reflect.DeepEqual(s.Hooks.CreateRuntime[1].Args, []string{"ocigate-hook", "--socket", "/run/x.sock", "createRuntime"}) {
		t.Errorf("createRuntime %+v", s.Hooks.CreateRuntime)
	}
	if len(s.Hooks.Poststop) != 1 || s.Hooks.Poststop[0].Path != opts.HookPath {
		t.Errorf("poststop %+v", s.Hooks.Poststop)
	}

	// Idempotent: the second pass changes nothing, byte for byte.
	again, changed, err := Add(out, opts)
	if err != nil || changed || string(again) != string(out) {
		t.Fatalf("second Add: changed %v, err %v\n%s\n%s", changed, err, out, again)
	}
}

func TestAddOnlyMissingStage(t *testing.T) {
	in := `{"ociVersion":"1.0.2","hooks":{"poststop":[{"path":"/usr/local/bin/ocigate-hook","args":["ocigate-hook","poststop"]}]}}`
	out, changed, err := Add([]byte(in), opts)
	if err != nil || !changed {
		t.Fatalf("changed %v, %v", changed, err)
	}
	_, s := decode(t, out)
	if len(s.Hooks.Poststop) != 1 || len(s.Hooks.CreateRuntime) != 1 {
		t.Fatalf("hooks %+v", s.Hooks)
	}
}

func TestAddWithoutHooks(t *testing.T) {
	for _, in := range []string{`{"ociVersion":"1.0.2"}`, `{"ociVersion":"1.0.2","hooks":null}`, ` {"ociVersion":"1.0.2","hooks":{"poststop":null}} `} {
		out, changed, err := Add([]byte(in), opts)
		if err != nil || !changed {
			t.Fatalf("%s: changed %v, %v", in, changed, err)
		}
		if _, s := decode(t, out); len(s.Hooks.CreateRuntime) != 1 || len(s.Hooks.Poststop) != 1 {
			t.Errorf("%s: hooks %+v", in, s.Hooks)
		}
	}
}

func TestAddRejects(t *testing.T) {
	for in, want := range map[string]string{
		``:                               "config.json",
		`null`:                           "null",
		`[1]`:                            "cannot unmarshal array",
		`{"ociVersion":"1"} {}`:          "trailing data",
		`{"ociVersion":"1"}}`:            "trailing data",
		`{"hooks":[]}`:                   "hooks",
		`{"hooks":{"createRuntime":{}}}`: "hooks.createRuntime is not a list",
		`{"hooks":{"createRuntime":[{"path":3}]}}`: "hooks.createRuntime[0]",
	} {
		if _, _, err := Add([]byte(in), opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", in, err, want)
		}
	}
}

func TestAddNoPoststop(t *testing.T) {
	o := hooksd.Options{HookPath: "/usr/bin/ocigate-hook", NoPoststop: true}
	out, changed, err := Add([]byte(`{"ociVersion":"1.0.2"}`), o)
	if err != nil || !changed {
		t.Fatalf("Add: %v changed=%v", err, changed)
	}
	var s specs.Spec
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatal(err)
	}
	if s.Hooks == nil || len(s.Hooks.CreateRuntime) != 1 || len(s.Hooks.Poststop) != 0 {
		t.Fatalf("hooks %+v, want createRuntime only", s.Hooks)
	}
}
