package api

import (
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api/wire"
)

// An agent's acceptance of a registration, workload and all, is read as
// a verdict (wire.ParseVerdict, without encoding/json).
func TestParseVerdictTakesAcceptance(t *testing.T) {
	w := &Workload{ContainerID: "c1", Runtime: "runc", Bundle: "/run/b", Pid: 42, Profile: "reverse-shell",
		ProfileReason: "the default profile", Mode: "enforce", Annotations: map[string]string{"io.container.manager": "libpod"},
		RegisteredAt: time.Unix(1, 0).UTC()}
	w.CgroupID, w.CgroupPath, w.Namespaces.Net = 7, "/ocigate-demo/c1", 4026531840
	resp := &Response{Protocol: ProtocolVersion, OK: true, Workload: w}
	body, err := encode(resp)
	if err != nil {
		t.Fatal(err)
	}
	v, err := wire.ParseVerdict(body)
	if err != nil || !v.OK || v.Protocol != ProtocolVersion {
		t.Fatalf("acceptance %s: %+v, %v", body, v, err)
	}
}
