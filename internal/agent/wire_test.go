package agent

import (
	"reflect"
	"testing"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/workload"
)

// zeroFields names the fields of struct v (and of the structs in it)
// that are left at their zero value.
func zeroFields(v reflect.Value, prefix string) []string {
	var out []string
	for i := range v.NumField() {
		f, name := v.Field(i), prefix+v.Type().Field(i).Name
		if f.Kind() == reflect.Struct && f.Type() != reflect.TypeFor[time.Time]() {
			out = append(out, zeroFields(f, name+".")...)
		} else if f.IsZero() {
			out = append(out, name)
		}
	}
	return out
}

// Every field the API sends about a workload is filled from the record.
func TestWireWorkload(t *testing.T) {
	at := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	rec := &workload.Workload{ContainerID: "c1", Runtime: "runc", Bundle: "/run/b/c1", Pid: 4242,
		Annotations: map[string]string{"k": "v"}, Image: "alpine:3", ImageSource: "containerd",
		Name: "web", Pod: "web-0", PodNamespace: "default", Adopted: true,
		Identity: cgroupfilter.Identity{CgroupID: 77, CgroupPath: "/kubepods/c1",
			Namespaces: cgroupfilter.NamespaceIDs{Mnt: 1, Pid: 2, Net: 3, Uts: 4, Ipc: 5, Cgroup: 6, User: 7, Time: 8}},
		Profile: "default", ProfileReason: "annotation", Mode: "enforce", RegisteredAt: at}
	want := &api.Workload{ContainerID: "c1", Runtime: "runc", Bundle: "/run/b/c1", Pid: 4242,
		Annotations: map[string]string{"k": "v"}, Image: "alpine:3", ImageSource: "containerd",
		Name: "web", Pod: "web-0", PodNamespace: "default", Adopted: true,
		Identity: api.Identity{CgroupID: 77, CgroupPath: "/kubepods/c1",
			Namespaces: api.NamespaceIDs{Mnt: 1, Pid: 2, Net: 3, Uts: 4, Ipc: 5, Cgroup: 6, User: 7, Time: 8}},
		Profile: "default", ProfileReason: "annotation", Mode: "enforce", RegisteredAt: at}
	if zero := zeroFields(reflect.ValueOf(want).Elem(), ""); len(zero) > 0 {
		t.Fatalf("the test leaves wire fields %v unset: set them in rec and want", zero)
	}
	if got := wireWorkload(rec); !reflect.DeepEqual(got, want) {
		t.Fatalf("wireWorkload =\n %+v\nwant\n %+v", got, want)
	}
	if got := wireWorkloads([]*workload.Workload{rec, rec}); len(got) != 2 || !reflect.DeepEqual(got[1], want) {
		t.Fatalf("wireWorkloads = %+v", got)
	}
}
