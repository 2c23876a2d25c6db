package api

import (
	"reflect"
	"testing"
	"time"
)

// An agent's acceptance of a registration is read without encoding/json.
func TestPlainVerdictTakesAcceptance(t *testing.T) {
	w := &Workload{ContainerID: "c1", Runtime: "runc", Bundle: "/run/b", Pid: 42, Profile: "reverse-shell",
		ProfileReason: "the default profile", Mode: "enforce", Annotations: map[string]string{"io.container.manager": "libpod"},
		RegisteredAt: time.Unix(1, 0).UTC()}
	w.CgroupID, w.CgroupPath, w.Namespaces.Net = 7, "/ocigate-demo/c1", 4026531840
	resp := &Response{Protocol: ProtocolVersion, OK: true, Workload: w}
	body, err := encode(resp)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := plainVerdict(body)
	if !ok || !v.OK || v.Protocol != ProtocolVersion {
		t.Fatalf("acceptance %s: plain %v, %+v", body, ok, v)
	}
}

// Whatever plainVerdict accepts, encoding/json decodes to the same
// verdict (ReadMessage's rules).
func FuzzPlainVerdictMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"protocol":2,"ok":true,"workload":{"container_id":"c1","annotations":{"a":"b"}}}`,
		`{"ok":false,"error":"agent refused","failure_policy":"open"}`, `{"OK":true}`, `{"ok":null}`, `{"ok":true,"ok":false}`,
		`{"protocol":2.0,"ok":true}`, `{"error":"a \"b\""}`, `{"ok":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := plainVerdict(b)
		if !ok {
			return
		}
		var want verdict
		if err := decodeBody(b, &want); err != nil {
			t.Fatalf("plain verdict accepted %q, encoding/json: %v", b, err)
		}
		if !reflect.DeepEqual(*v, want) {
			t.Fatalf("%q: plain %+v, encoding/json %+v", b, *v, want)
		}
	})
}
