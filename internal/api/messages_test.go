package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// A backend's error is an optional field: an agent with every point
// sends none, and a status from an older agent (no field) decodes.
func TestBackendErrorIsOptional(t *testing.T) {
	b, err := json.Marshal(Backend{Point: "connect", Backend: "fallback", Mechanism: "cgroup/connect4"})
	if err != nil || strings.Contains(string(b), "error") {
		t.Fatalf("backend that enforces: %s (%v)", b, err)
	}
	var st Status
	if err := json.Unmarshal([]byte(`{"node":"n","backends":[{"point":"exec","backend":"fallback","mechanism":"m"}]}`), &st); err != nil {
		t.Fatal(err)
	}
	if got := st.Unavailable(); got != nil || Enforcement(got) != "complete" {
		t.Fatalf("older agent's status: unavailable %v", got)
	}
	if err := json.Unmarshal([]byte(`{"backends":[{"point":"exec","backend":"none","mechanism":"unavailable","error":"no backend could attach: x"},`+
		`{"point":"relay","backend":"none","error":"y"},{"point":"connect","backend":"lsm"}]}`), &st); err != nil {
		t.Fatal(err)
	}
	if got := st.Unavailable(); !reflect.DeepEqual(got, []string{"exec", "relay"}) || st.Backends[0].Error != "no backend could attach: x" {
		t.Fatalf("unavailable %v, backends %+v", got, st.Backends)
	}
	if e := Enforcement([]string{"relay", "exec"}); e != "degraded: 2 points unavailable (exec, relay)" {
		t.Fatalf("Enforcement = %q", e)
	}
	if e := Enforcement([]string{"exec"}); e != "degraded: 1 point unavailable (exec)" {
		t.Fatalf("Enforcement = %q", e)
	}
}
