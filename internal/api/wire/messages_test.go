package wire

import (
	"strings"
	"testing"

	"github.com/ocigate/ocigate/cgroupfilter"
)

func TestRegistrationValidate(t *testing.T) {
	base := Registration{ContainerID: "c1", Pid: 10, Identity: Identity{CgroupID: 9, CgroupPath: "/a/b"}}
	tests := []struct {
		name string
		mod  func(r *Registration)
		want string
	}{
		{"valid", func(*Registration) {}, ""},
		{"pid zero is allowed", func(r *Registration) { r.Pid = 0 }, ""},
		{"root cgroup", func(r *Registration) { r.Identity.CgroupPath = "/" }, ""},
		{"id of 1024 bytes", func(r *Registration) { r.ContainerID = strings.Repeat("x", 1024) }, ""},
		{"empty id", func(r *Registration) { r.ContainerID = "" }, "without container_id"},
		{"id of 1025 bytes", func(r *Registration) { r.ContainerID = strings.Repeat("x", 1025) }, "longer than 1024"},
		{"no cgroup id", func(r *Registration) { r.Identity.CgroupID = 0 }, `"c1" without cgroup_id`},
		{"no cgroup path", func(r *Registration) { r.Identity.CgroupPath = "" }, "is not absolute"},
		{"relative cgroup path", func(r *Registration) { r.Identity.CgroupPath = "a/b" }, `"a/b" is not absolute`},
		{"negative pid", func(r *Registration) { r.Pid = -3 }, "negative pid -3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base
			tt.mod(&r)
			err := r.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("got error %v, want %q", err, tt.want)
			}
		})
	}
}

// The messages of Validate are those fmt's %q and %d wrote.
func TestRegistrationValidateMessages(t *testing.T) {
	g := Registration{ContainerID: "c\"1", Pid: -3, Identity: Identity{CgroupID: 9, CgroupPath: "a\tb"}}
	if err := g.Validate(); err == nil || err.Error() != `registration of "c\"1": cgroup_path "a\tb" is not absolute` {
		t.Fatalf("got %v", err)
	}
	g.Identity.CgroupPath = "/a"
	if err := g.Validate(); err == nil || err.Error() != `registration of "c\"1": negative pid -3` {
		t.Fatalf("got %v", err)
	}
}

// Converting an identity to the wire and back loses nothing.
func TestIdentityConversion(t *testing.T) {
	id := cgroupfilter.Identity{CgroupID: 77, CgroupPath: "/kubepods/c1",
		Namespaces: cgroupfilter.NamespaceIDs{Mnt: 1, Pid: 2, Net: 3, Uts: 4, Ipc: 5, Cgroup: 6, User: 7, Time: 8}}
	want := Identity{CgroupID: 77, CgroupPath: "/kubepods/c1",
		Namespaces: NamespaceIDs{Mnt: 1, Pid: 2, Net: 3, Uts: 4, Ipc: 5, Cgroup: 6, User: 7, Time: 8}}
	if got := IdentityOf(id); got != want {
		t.Fatalf("IdentityOf = %+v", got)
	}
	if got := want.CgroupIdentity(); got != id {
		t.Fatalf("CgroupIdentity = %+v", got)
	}
}

// A registration in version 1 carries the operator's profile as the
// profile annotation and drops the runtime annotation's name; the
// registration itself is not changed.
func TestRegistrationAsVersion1(t *testing.T) {
	g := &Registration{ContainerID: "job-1", RuntimeAnnotation: "io.container.manager", Profile: "ci-runner"}
	v1 := g.As(1)
	if v1.Annotations[v1ProfileAnnotation] != "ci-runner" || v1.Profile != "" || v1.RuntimeAnnotation != "" {
		t.Errorf("version 1: %+v", v1)
	}
	if g.Profile != "ci-runner" || g.Annotations != nil || g.As(2) != g || (*Registration)(nil).As(1) != nil {
		t.Errorf("As changed the registration or version 2: %+v", g)
	}
}
