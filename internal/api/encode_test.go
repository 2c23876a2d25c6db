package api

import (
	"bytes"
	"encoding/json"
	"testing"
)

// The requests of the hook are encoded by hand (wire.Request.AppendJSON)
// to the bytes encoding/json gives this package's Request, the message
// the agent decodes; the others are encoding/json's.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	reg := sampleRegister().Register
	reg.RuntimeAnnotation, reg.Profile = "io.container.manager", "ci-runner"
	unreg := &Unregistration{ContainerID: "c1"}
	for name, tt := range map[string]struct {
		r    *Request
		hook bool
	}{
		"register":               {&Request{Protocol: ProtocolVersion, Op: OpRegister, Register: reg}, true},
		"register, as version 1": {(&Request{Op: OpRegister, Register: reg}).As(1), true},
		"unregister":             {&Request{Protocol: ProtocolVersion, Op: OpUnregister, Unregister: unreg}, true},
		"both":                   {&Request{Op: OpRegister, Register: reg, Unregister: unreg}, true},
		"none":                   {&Request{Op: OpStatus}, true},
		"status":                 {&Request{Op: OpStatus, Status: &StatusOptions{Summary: true}}, false},
		"subscribe":              {&Request{Op: OpSubscribe, Subscribe: &Subscription{}}, false},
		"pods":                   {&Request{Op: OpPods, Pods: &PodTable{}}, false},
		"register and pods":      {&Request{Op: OpRegister, Register: reg, Pods: &PodTable{}}, false},
		"full request":           {fullRequest(), false},
	} {
		if _, hook := tt.r.wire(); hook != tt.hook {
			t.Errorf("%s: encoded by hand %v, want %v", name, hook, tt.hook)
		}
		want, err := json.Marshal(tt.r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encode(tt.r)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: encode = %s (%v)\nencoding/json = %s", name, got, err, want)
		}
	}
}
