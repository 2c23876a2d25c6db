package describe

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/ocigate/ocigate/runtime/containerd"
)

func TestDescribePodman(t *testing.T) {
	store := filepath.Join(t.TempDir(), "overlay-containers")
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	records := `[{"id":"abc","names":["web-1"],"image":"1234","metadata":"{\"image-name\":\"localhost/shop/web:2\",\"name\":\"web-1\"}"}]`
	if err := os.WriteFile(filepath.Join(store, "containers.json"), []byte(records), 0o600); err != nil {
		t.Fatal(err)
	}
	var d Describer
	got, err := d.Describe(context.Background(), filepath.Join(store, "abc", "userdata"))
	if err != nil || got != (Info{Image: "localhost/shop/web:2", Name: "web-1", Source: "podman"}) {
		t.Fatalf("Describe = %+v, %v", got, err)
	}
	if _, err := d.Describe(context.Background(), filepath.Join(store, "gone", "userdata")); err == nil {
		t.Fatal("a podman bundle without a record described")
	}
}

func TestDescribeOther(t *testing.T) {
	var d Describer
	got, err := d.Describe(context.Background(), "/tmp/some/bundle")
	if err != nil || got != (Info{}) {
		t.Fatalf("Describe = %+v, %v", got, err)
	}
	_, err = d.Describe(context.Background(), "/run/containerd/io.containerd.runtime.v2.task/default/web")
	if !errors.Is(err, ErrNoContainerd) {
		t.Fatalf("containerd bundle without a client: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "none.sock")
	d.Containerd = containerd.New(sock)
	if _, err := d.Describe(context.Background(), "/run/containerd/io.containerd.runtime.v2.task/default/web"); err == nil ||
		!strings.Contains(err.Error(), sock) {
		t.Fatalf("unreachable containerd: %v", err)
	}
}

// A fake containerd that knows one container, web in namespace default.
func TestDescribeContainerd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		if r.URL.Path != "/containerd.services.containers.v1.Containers/Get" || r.Header.Get("containerd-namespace") != "default" {
			w.Header().Set("Grpc-Status", "5")
			return
		}
		var ctr []byte
		ctr = protowire.AppendTag(ctr, 1, protowire.BytesType)
		ctr = protowire.AppendString(ctr, "web")
		ctr = protowire.AppendTag(ctr, 3, protowire.BytesType)
		ctr = protowire.AppendString(ctr, "localhost/ocigate-e2e/busybox:1")
		var m []byte
		m = protowire.AppendTag(m, 1, protowire.BytesType)
		m = protowire.AppendBytes(m, ctr)
		fr := make([]byte, 5, 5+len(m))
		binary.BigEndian.PutUint32(fr[1:], uint32(len(m)))
		w.Write(append(fr, m...))
		w.Header().Set("Grpc-Status", "0")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	d := Describer{Containerd: containerd.New(sock)}
	defer d.Containerd.Close()
	got, err := d.Describe(context.Background(), "/x/state/io.containerd.runtime.v2.task/default/web")
	if err != nil || got != (Info{Image: "localhost/ocigate-e2e/busybox:1", Source: "containerd"}) {
		t.Fatalf("Describe = %+v, %v", got, err)
	}
	if _, err := d.Describe(context.Background(), "/x/state/io.containerd.runtime.v2.task/k8s.io/web"); !errors.Is(err, containerd.ErrNotFound) {
		t.Fatalf("unknown container: %v", err)
	}
}
