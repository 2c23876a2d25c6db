package apiserver

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api"
)

// rawExchange sends body as one frame and returns the raw answer.
func rawExchange(t *testing.T, path, body string) string {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(frame(body)); err != nil {
		t.Fatal(err)
	}
	var raw json.RawMessage
	if err := api.ReadMessage(c, &raw); err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// The agent answers each request in its version: version 1 (no field)
// without "protocol", which a hook before versions would refuse; a
// version it does not speak with an error that names both.
func TestServerAnswersInTheRequestsVersion(t *testing.T) {
	h := newFakeHandler(func(*api.Request) (*api.Response, error) {
		return &api.Response{FailurePolicy: api.FailOpen}, nil
	})
	path, _, _ := serve(t, h)
	tests := []struct{ name, req, want string }{
		{"version 1", `{"op":"status"}`, `{"ok":true,"failure_policy":"open"}`},
		{"version 2", `{"protocol":2,"op":"status","later":{"x":1}}`, `{"protocol":2,"ok":true,"failure_policy":"open"}`},
		{"too new", `{"protocol":3,"op":"status"}`,
			`{"protocol":2,"ok":false,"error":"the client speaks protocol version 3; this agent speaks 1 to 2"}`},
		{"too old", `{"protocol":-4,"op":"status"}`,
			`{"ok":false,"error":"the client speaks protocol version -4; this agent speaks 1 to 2"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rawExchange(t, path, tt.req); got != tt.want {
				t.Fatalf("answer\n got  %s\n want %s", got, tt.want)
			}
		})
	}
	if n := len(h.requests()); n != 2 {
		t.Fatalf("the handler saw %d requests, want 2 (versions not spoken are refused before)", n)
	}
	if !strings.Contains(rawExchange(t, path, `{"protocol":2,"op":"reboot"}`), `"protocol":2`) {
		t.Fatal("a refusal in version 2 lacks its version")
	}
}
