package describe

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
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
	if err != nil || !reflect.DeepEqual(got, Info{Image: "localhost/shop/web:2", Digests: []string{"sha256:1234"}, Name: "web-1", Source: "podman"}) {
		t.Fatalf("Describe = %+v, %v", got, err)
	}
	if _, err := d.Describe(context.Background(), filepath.Join(store, "gone", "userdata")); err == nil {
		t.Fatal("a podman bundle without a record described")
	}
}

func TestDescribeOther(t *testing.T) {
	var d Describer
	got, err := d.Describe(context.Background(), "/tmp/some/bundle")
	if err != nil || !reflect.DeepEqual(got, Info{}) {
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

// fakeContainerd answers Containers.Get for web in namespace default and
// a CRI container in k8s.io, and Images.Get for their image.
func fakeContainerd(t *testing.T) *containerd.Client {
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	str := func(b []byte, num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
	}
	sub := func(b []byte, num protowire.Number, m []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), m)
	}
	label := func(b []byte, k, v string) []byte { return sub(b, 2, str(str(nil, 1, k), 2, v)) }
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Protocols: &protos, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		ns := r.Header.Get("containerd-namespace")
		var m []byte
		switch {
		case r.URL.Path == "/containerd.services.images.v1.Images/Get":
			m = sub(nil, 1, sub(str(nil, 1, "localhost/ocigate-e2e/busybox:1"), 3, str(nil, 2, digestB)))
		case r.URL.Path == "/containerd.services.containers.v1.Containers/Get" && ns == "default":
			m = sub(nil, 1, str(str(nil, 1, "web"), 3, "localhost/ocigate-e2e/busybox:1"))
		case r.URL.Path == "/containerd.services.containers.v1.Containers/Get" && ns == "k8s.io":
			ctr := label(label(label(str(nil, 1, "pod-c"), "io.kubernetes.pod.namespace", "shop"), "io.kubernetes.pod.name", "web-0"),
				"io.cri-containerd.kind", "container")
			m = sub(nil, 1, str(ctr, 3, "localhost/ocigate-e2e/busybox:1"))
		default:
			w.Header().Set("Grpc-Status", "5")
			return
		}
		fr := make([]byte, 5, 5+len(m))
		binary.BigEndian.PutUint32(fr[1:], uint32(len(m)))
		w.Write(append(fr, m...))
		w.Header().Set("Grpc-Status", "0")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := containerd.New(sock)
	t.Cleanup(c.Close)
	return c
}

var digestB = "sha256:" + strings.Repeat("b", 64)

// containerd's record gives the image and the digest its name points
// at; a CRI container's labels give its pod.
func TestDescribeContainerd(t *testing.T) {
	d := Describer{Containerd: fakeContainerd(t)}
	got, err := d.Describe(context.Background(), "/x/state/io.containerd.runtime.v2.task/default/web")
	want := Info{Image: "localhost/ocigate-e2e/busybox:1", Digests: []string{digestB}, Source: "containerd"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Describe = %+v, %v", got, err)
	}
	got, err = d.Describe(context.Background(), "/x/state/io.containerd.runtime.v2.task/k8s.io/pod-c")
	want = Info{Image: "localhost/ocigate-e2e/busybox:1", Digests: []string{digestB}, Pod: "web-0", Namespace: "shop", Source: "containerd"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Describe = %+v, %v", got, err)
	}
	if _, err := d.Describe(context.Background(), "/x/state/io.containerd.runtime.v2.task/other/web"); !errors.Is(err, containerd.ErrNotFound) {
		t.Fatalf("unknown container: %v", err)
	}
}

// A bundle of namespace moby is Docker's: read from its data root.
func TestDescribeDocker(t *testing.T) {
	root := t.TempDir()
	id := strings.Repeat("c", 64)
	dir := filepath.Join(root, "containers", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"ID":"` + id + `","Image":"` + digestB + `","Name":"/dk","Config":{"Image":"localhost/dk/busybox:1"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.v2.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := Describer{DockerRoot: root}
	got, err := d.Describe(context.Background(), "/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/"+id)
	want := Info{Image: "localhost/dk/busybox:1", Digests: []string{digestB}, Name: "dk", Source: "docker"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Describe = %+v, %v", got, err)
	}
	if got, err := d.Describe(context.Background(), "/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/gone"); err == nil || got.Source != "docker" {
		t.Fatalf("unknown docker container: %+v, %v", got, err)
	}
}
