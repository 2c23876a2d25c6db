package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDropGone(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	reg := func(id string, pid int, bundle string) {
		r := h.registration(id, pid, "/pods/"+id)
		r.Bundle = bundle
		if _, err := a.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	reg("web", 100, "/run/containerd/io.containerd.runtime.v2.task/default/web")
	reg("other-ns", 101, "/run/containerd/io.containerd.runtime.v2.task/k8s.io/other-ns")
	reg("podman", 102, "/var/lib/containers/storage/overlay-containers/podman/userdata")

	exit := func(id string, pid int) ContainerGone {
		return ContainerGone{Runtime: "containerd", Namespace: "default", ContainerID: id, Pid: pid, Topic: "/tasks/exit"}
	}
	for name, ev := range map[string]ContainerGone{
		"another task's pid":   exit("web", 555),
		"another namespace":    exit("other-ns", 101),
		"not containerd's":     exit("podman", 102),
		"unknown container":    exit("nope", 1),
		"delete, init running": {Runtime: "containerd", Namespace: "default", ContainerID: "web", Topic: "/containers/delete"},
	} {
		if a.DropGone(ev) {
			t.Errorf("%s: dropped", name)
		}
	}
	if a.Registry().Len() != 3 {
		t.Fatalf("registry has %d workloads", a.Registry().Len())
	}
	if !a.DropGone(exit("web", 100)) {
		t.Fatal("init's exit did not unregister")
	}
	if _, ok := a.Registry().Get("web"); ok {
		t.Fatal("web still registered")
	}
	// A delete event without a pid: the init has left (its /proc entry is gone).
	if err := os.RemoveAll(filepath.Join(h.proc, "101")); err != nil {
		t.Fatal(err)
	}
	if !a.DropGone(ContainerGone{Runtime: "containerd", Namespace: "k8s.io", ContainerID: "other-ns", Topic: "/containers/delete"}) {
		t.Fatal("delete of a container whose init is gone did not unregister")
	}
	if n := a.Status().Counters["runtime_event_unregistrations"]; n != 2 {
		t.Fatalf("runtime_event_unregistrations = %d", n)
	}
}
