package containerd

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// The fake containerd: answers per method with protobuf messages built
// here with the field numbers of containerd's protos.

func msg(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func str(num protowire.Number, s string) []byte { return appendString(nil, num, s) }

func sub(num protowire.Number, m []byte) []byte {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func varint(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

type fakeContainerd struct {
	t        *testing.T
	byMethod map[string]func(ns string, req []byte) ([][]byte, int)
}

func (f *fakeContainerd) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if len(body) < 5 {
		f.t.Errorf("%s: request of %d bytes", r.URL.Path, len(body))
		return
	}
	h := f.byMethod[r.URL.Path]
	w.Header().Set("Content-Type", "application/grpc")
	w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
	if h == nil {
		w.Header().Set("Grpc-Status", "12")
		return
	}
	msgs, status := h(r.Header.Get(namespaceHeader), body[5:])
	for _, m := range msgs {
		fr := make([]byte, 5+len(m))
		binary.BigEndian.PutUint32(fr[1:], uint32(len(m)))
		copy(fr[5:], m)
		w.Write(fr)
	}
	w.Header().Set("Grpc-Status", string(rune('0'+status)))
	if status != 0 {
		w.Header().Set("Grpc-Message", "not found")
	}
}

func (f *fakeContainerd) start() *Client {
	sock := filepath.Join(f.t.TempDir(), "containerd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		f.t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: f, Protocols: &protos}
	go srv.Serve(ln)
	f.t.Cleanup(func() { srv.Close() })
	c := New(sock)
	f.t.Cleanup(c.Close)
	return c
}

func TestRunningTasks(t *testing.T) {
	f := &fakeContainerd{t: t, byMethod: map[string]func(string, []byte) ([][]byte, int){
		"/containerd.services.namespaces.v1.Namespaces/List": func(string, []byte) ([][]byte, int) {
			return [][]byte{msg(sub(1, str(1, "default")), sub(1, msg(str(1, "k8s.io"), sub(2, msg(str(1, "k"), str(2, "v"))))))}, 0
		},
		"/containerd.services.tasks.v1.Tasks/List": func(ns string, _ []byte) ([][]byte, int) {
			switch ns {
			case "default": // containerd 1.6: the task's id, no container_id
				return [][]byte{msg(
					sub(1, msg(str(2, "web"), varint(3, 100), varint(4, 2))),
					sub(1, msg(str(2, "stopped"), varint(3, 0), varint(4, 3))),
					sub(1, msg(str(2, "created"), varint(3, 101), varint(4, 1))),
				)}, 0
			case "k8s.io": // 2.x: container_id set
				return [][]byte{msg(sub(1, msg(str(1, "pod-c"), str(2, "pod-c"), varint(3, 200), varint(4, 2), varint(9, 0))))}, 0
			}
			t.Errorf("tasks of unexpected namespace %q", ns)
			return nil, 5
		},
	}}
	c := f.start()
	got, err := c.AllRunningTasks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Task{{"default", "web", 100}, {"k8s.io", "pod-c", 200}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("AllRunningTasks = %+v, want %+v", got, want)
	}
}

func TestContainer(t *testing.T) {
	f := &fakeContainerd{t: t, byMethod: map[string]func(string, []byte) ([][]byte, int){
		"/containerd.services.containers.v1.Containers/Get": func(ns string, req []byte) ([][]byte, int) {
			var id string
			fields(req, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				if num == 1 {
					id = string(v)
				}
				return nil
			})
			if ns != "default" || id != "web" {
				return nil, 5
			}
			return [][]byte{sub(1, msg(str(1, "web"), sub(2, msg(str(1, "app"), str(2, "shop"))),
				str(3, "docker.io/library/nginx:1.25"), sub(4, msg(str(1, "io.containerd.runc.v2"))),
				sub(5, msg(str(1, "types.containerd.io/opencontainers/runtime-spec/1/Spec"),
					str(2, `{"ociVersion":"1.0.2","annotations":{"ocigate.io/profile":"web"}}`))),
				str(6, "overlayfs"), varint(99, 7)))}, 0
		},
	}}
	c := f.start()
	got, err := c.Container(context.Background(), "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	want := Container{ID: "web", Image: "docker.io/library/nginx:1.25", Runtime: "io.containerd.runc.v2", Labels: map[string]string{"app": "shop"},
		Annotations: map[string]string{"ocigate.io/profile": "web"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Container = %+v, want %+v", got, want)
	}
	if _, err := c.Container(context.Background(), "other", "web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing container: %v", err)
	}
}

func TestSubscribe(t *testing.T) {
	anyOf := func(typeURL string, m []byte) []byte { return msg(str(1, typeURL), sub(2, m)) }
	envelope := func(ns, topic string, ev []byte) []byte {
		return msg(sub(1, varint(1, 1700000000)), str(2, ns), str(3, topic), sub(4, ev))
	}
	var filters []string
	f := &fakeContainerd{t: t, byMethod: map[string]func(string, []byte) ([][]byte, int){
		"/containerd.services.events.v1.Events/Subscribe": func(_ string, req []byte) ([][]byte, int) {
			fields(req, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				filters = append(filters, string(v))
				return nil
			})
			return [][]byte{
				envelope("default", TopicTaskExit, anyOf("containerd.events.TaskExit",
					msg(str(1, "web"), str(2, "web"), varint(3, 100), varint(4, 137)))),
				envelope("default", TopicTaskExit, anyOf("containerd.events.TaskExit",
					msg(str(1, "web"), str(2, "exec-1"), varint(3, 150), varint(4, 0)))),
				envelope("k8s.io", TopicTaskDelete, anyOf("containerd.events.TaskDelete",
					msg(str(1, "pod-c"), varint(2, 200), varint(3, 0), str(5, "pod-c")))),
				envelope("default", TopicContainerDelete, anyOf("containerd.events.ContainerDelete", str(1, "web"))),
			}, 0
		},
	}}
	c := f.start()
	evs, err := c.Subscribe(context.Background(), TopicTaskExit, TopicContainerDelete)
	if err != nil {
		t.Fatal(err)
	}
	defer evs.Close()
	var got []Event
	for {
		e, err := evs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	want := []Event{
		{"default", TopicTaskExit, "web", "web", 100},
		{"default", TopicTaskExit, "web", "exec-1", 150},
		{"k8s.io", TopicTaskDelete, "pod-c", "pod-c", 200},
		{"default", TopicContainerDelete, "web", "", 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n%+v\nwant\n%+v", got, want)
	}
	if want := []string{`topic=="/tasks/exit"`, `topic=="/containers/delete"`}; !reflect.DeepEqual(filters, want) {
		t.Fatalf("filters %q, want %q", filters, want)
	}
}

func TestMalformed(t *testing.T) {
	if _, err := decodeTasks([]byte{0x0a, 0x05, 1}); err == nil {
		t.Error("truncated tasks answer accepted")
	}
	if _, err := decodeGetContainer([]byte{0xff}); err == nil {
		t.Error("garbage container answer accepted")
	}
}

func TestBundleRef(t *testing.T) {
	tests := []struct {
		bundle, ns, id string
		ok             bool
	}{
		{"/run/containerd/io.containerd.runtime.v2.task/k8s.io/abc", "k8s.io", "abc", true},
		{"/tmp/x/state/io.containerd.runtime.v2.task/default/web/", "default", "web", true},
		{"/run/containerd/io.containerd.runtime.v1.linux/moby/abc", "moby", "abc", true},
		{"/var/lib/containers/storage/overlay-containers/abc/userdata", "", "", false},
		{"/io.containerd.runtime.v2.task/abc", "", "", false},
		{"relative/io.containerd.runtime.v2.task", "", "", false},
	}
	for _, tt := range tests {
		ns, id, ok := BundleRef(tt.bundle)
		if ns != tt.ns || id != tt.id || ok != tt.ok {
			t.Errorf("BundleRef(%q) = %q, %q, %v; want %q, %q, %v", tt.bundle, ns, id, ok, tt.ns, tt.id, tt.ok)
		}
	}
}

// ImageDigest reads Images.Get's image.target.digest.
func TestImageDigest(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	f := &fakeContainerd{t: t, byMethod: map[string]func(string, []byte) ([][]byte, int){
		"/containerd.services.images.v1.Images/Get": func(ns string, req []byte) ([][]byte, int) {
			var name string
			fields(req, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				if num == 1 {
					name = string(v)
				}
				return nil
			})
			if ns != "default" || name != "docker.io/library/nginx:1.25" {
				return nil, 5
			}
			return [][]byte{sub(1, msg(str(1, name), sub(2, msg(str(1, "k"), str(2, "v"))),
				sub(3, msg(str(1, "application/vnd.oci.image.index.v1+json"), str(2, digest), varint(3, 1234)))))}, 0
		},
	}}
	c := f.start()
	got, err := c.ImageDigest(context.Background(), "default", "docker.io/library/nginx:1.25")
	if err != nil || got != digest {
		t.Fatalf("ImageDigest = %q, %v", got, err)
	}
	if _, err := c.ImageDigest(context.Background(), "default", "nope"); err == nil {
		t.Fatal("missing image: no error")
	}
}
