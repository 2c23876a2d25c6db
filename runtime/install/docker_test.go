package install

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return m
}

func TestSetDockerRuntime(t *testing.T) {
	e := dockerRuntime{Path: "/usr/local/bin/ocigate-runc", RuntimeArgs: []string{"--ocigate-socket=/run/s.sock"}}
	want := map[string]any{"path": e.Path, "runtimeArgs": []any{"--ocigate-socket=/run/s.sock"}}
	for _, name := range []string{"daemon-nvidia.json", "daemon-oneline.json", "daemon-tabs.json"} {
		t.Run(name, func(t *testing.T) {
			in := fixture(t, name)
			out, err := setDockerRuntime(in, e)
			if err != nil {
				t.Fatal(err)
			}
			before, after := decodeJSON(t, in), decodeJSON(t, out)
			rts, _ := after["runtimes"].(map[string]any)
			if !reflect.DeepEqual(rts["ocigate"], want) {
				t.Errorf("runtimes.ocigate = %v, want %v", rts["ocigate"], want)
			}
			delete(rts, "ocigate")
			if len(rts) == 0 {
				if _, had := before["runtimes"]; !had {
					delete(after, "runtimes")
				}
			}
			if !reflect.DeepEqual(before, after) {
				t.Errorf("other settings changed:\n%v\n%v", before, after)
			}
			// The file's own layout stays: every other line is still there
			// (a one-line file is all one line, and changes).
			for _, l := range strings.Split(string(in), "\n")[:strings.Count(string(in), "\n")] {
				if l = strings.TrimRight(l, ","); l != "" && !strings.Contains(l, "runtimes") && !strings.Contains(string(out), l) {
					t.Errorf("line %q lost:\n%s", l, out)
				}
			}
			again, err := setDockerRuntime(out, e)
			if err != nil || string(again) != string(out) {
				t.Errorf("second install changed the file (%v):\n%s", err, again)
			}
		})
	}
}

func TestSetDockerRuntimeLayout(t *testing.T) {
	e := dockerRuntime{Path: "/w/ocigate-runc"}
	for _, tt := range []struct{ in, want string }{
		{"", "{\n  \"runtimes\": {\n    \"ocigate\": {\n      \"path\": \"/w/ocigate-runc\"\n    }\n  }\n}\n"},
		{"{}\n", "{\n  \"runtimes\": {\n    \"ocigate\": {\n      \"path\": \"/w/ocigate-runc\"\n    }\n  }\n}\n"},
		{`{"debug":true}`, `{"debug":true, "runtimes": {"ocigate":{"path":"/w/ocigate-runc"}}}`},
		{"{\n\t\"runtimes\": {}\n}\n", "{\n\t\"runtimes\": {\n\t\t\"ocigate\": {\n\t\t\t\"path\": \"/w/ocigate-runc\"\n\t\t}\n\t}\n}\n"},
		{"{\n  \"runtimes\": {\n    \"ocigate\": {\"path\": \"/old/ocigate-runc\"}\n  }\n}\n",
			"{\n  \"runtimes\": {\n    \"ocigate\": {\"path\":\"/w/ocigate-runc\"}\n  }\n}\n"},
		{"{\n  \"runtimes\": {\n    \"ocigate\": {\n      \"path\": \"/w/ocigate-runc\",\n      \"runtimeArgs\": []\n    }\n  }\n}\n",
			"{\n  \"runtimes\": {\n    \"ocigate\": {\n      \"path\": \"/w/ocigate-runc\"\n    }\n  }\n}\n"},
	} {
		out, err := setDockerRuntime([]byte(tt.in), e)
		if err != nil || string(out) != tt.want {
			t.Errorf("%q:\n got %q (%v)\nwant %q", tt.in, out, err, tt.want)
		}
	}
}

func TestStripDocker(t *testing.T) {
	for _, tt := range []struct{ cur, original, want string }{
		{`{"a":1, "runtimes": {"ocigate":{"path":"/x"}}}`, `{"a":1}`, `{"a":1}`},
		{`{"runtimes": {"ocigate":{"path":"/x"}}, "a":1}`, ``, `{"a":1}`},
		{`{"runtimes": {"ocigate":{"path":"/x"}}}`, `{"runtimes": {}}`, `{"runtimes": {}}`},
		{"{\n  \"runtimes\": {\n    \"nvidia\": {},\n    \"ocigate\": {}\n  }\n}", ``, "{\n  \"runtimes\": {\n    \"nvidia\": {}\n  }\n}"},
		{"{\n  \"runtimes\": {\n    \"ocigate\": {},\n    \"nvidia\": {}\n  }\n}", ``, "{\n  \"runtimes\": {\n    \"nvidia\": {}\n  }\n}"},
		{`{"runtimes": {"nvidia":{}}}`, ``, `{"runtimes": {"nvidia":{}}}`},
		{`{"runtimes": 3}`, ``, `{"runtimes": 3}`},
		{"  \n", ``, "  \n"},
	} {
		var orig []byte
		if tt.original != "" {
			orig = []byte(tt.original)
		}
		got, err := stripDocker([]byte(tt.cur), orig, "ocigate")
		if err != nil || string(got) != tt.want {
			t.Errorf("strip %s (original %s): got %q (%v), want %q", tt.cur, tt.original, got, err, tt.want)
		}
	}
	if _, err := stripDocker([]byte(`{"runtimes":{"ocigate":1,"ocigate":2}}`), nil, "ocigate"); err == nil {
		t.Errorf("duplicate member accepted")
	}
}

func TestDockerEntry(t *testing.T) {
	for _, tt := range []struct {
		o    Options
		args []string
	}{
		{Options{HookPath: "/opt/o/ocigate-hook", WrapperPath: "/opt/o/ocigate-runc"}, nil},
		{Options{HookPath: "/usr/local/bin/ocigate-hook", WrapperPath: "/opt/o/ocigate-runc", Socket: "/run/s", RuncPath: "/usr/sbin/runc"},
			[]string{"--ocigate-hook=/usr/local/bin/ocigate-hook", "--ocigate-socket=/run/s", "--ocigate-runc=/usr/sbin/runc"}},
	} {
		e, err := dockerEntry(tt.o)
		if err != nil || e.Path != tt.o.WrapperPath || !reflect.DeepEqual(e.RuntimeArgs, tt.args) {
			t.Errorf("%+v: %+v %v", tt.o, e, err)
		}
	}
	if _, err := dockerEntry(Options{HookPath: "/h", WrapperPath: "ocigate-runc"}); err == nil {
		t.Errorf("relative wrapper accepted")
	}
}

func TestParseObject(t *testing.T) {
	b := []byte(` { "a" : "x\"}" , "b":[1,{"c":"]"}], "d" : null,"e":-1.5e3 } `)
	o, err := parseObject(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range o.members {
		got = append(got, m.key+"="+string(b[m.valStart:m.valEnd]))
	}
	want := []string{`a="x\"}"`, `b=[1,{"c":"]"}]`, `d=null`, `e=-1.5e3`}
	if !reflect.DeepEqual(got, want) || b[o.close] != '}' {
		t.Errorf("members %q close %d", got, o.close)
	}
	for _, bad := range []string{`[]`, `{"a" 1}`, `{"a":1 "b":2}`, `{"a":"x`, `{1:2}`} {
		if _, err := parseObject([]byte(bad), 0); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
