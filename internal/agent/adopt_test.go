package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ocigate/ocigate/runtime/describe"
	"github.com/ocigate/ocigate/runtime/running"
)

// namespaces gives pid namespace files, as Resolve reads them.
func (h *fakeHost) namespaces(pid int) {
	h.t.Helper()
	dir := filepath.Join(h.proc, strconv.Itoa(pid), "ns")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	for _, n := range []string{"mnt", "pid", "net", "uts", "ipc", "cgroup", "user", "time"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
}

// running places a running container's init in a cgroup.
func (h *fakeHost) running(id string, pid int, path string) running.Container {
	h.cgroup(path)
	h.process(pid, path)
	h.namespaces(pid)
	return running.Container{ID: id, Runtime: "runc", Pid: pid, Bundle: "/bundles/" + id}
}

func TestAdopt(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	d := &fakeDescriber{}
	a, err := New(Config{Enforcer: enf, Resolver: h.resolver(), Catalog: imageCatalog(t), Describer: d})
	if err != nil {
		t.Fatal(err)
	}
	// Registered by its hook meanwhile: left as it is.
	hooked := h.registration("hooked", 300, "/pods/hooked")
	if _, err := a.Register(hooked); err != nil {
		t.Fatal(err)
	}
	shop := h.running("shop", 100, "/pods/shop")
	shop.Runtime, shop.Info = "containerd", describe.Info{Image: "localhost/shop/web:1", Source: "containerd"}
	plain := h.running("plain", 101, "/pods/plain")
	plain.Annotations = map[string]string{"ocigate.io/profile": "audit"}
	gone := running.Container{ID: "gone", Runtime: "runc", Pid: 102}
	again := h.running("hooked", 300, "/pods/hooked")

	res := a.Adopt([]running.Container{shop, plain, gone, again})
	if res != (AdoptResult{Adopted: 2, AlreadyRegistered: 1, Failed: 1}) {
		t.Fatalf("Adopt = %+v", res)
	}
	w, ok := a.Registry().Get("shop")
	if !ok || !w.Adopted || w.Profile != "shop" || w.Image != "localhost/shop/web:1" || w.ImageSource != "containerd" || w.Runtime != "containerd" {
		t.Fatalf("shop: %+v", w)
	}
	if _, set := enf.mapEntries()[w.CgroupID]; !set {
		t.Fatal("adopted workload has no map entry")
	}
	w, ok = a.Registry().Get("plain")
	if !ok || !w.Adopted || w.Profile != "audit" {
		t.Fatalf("plain: %+v", w)
	}
	// The runtime's listing said nothing of plain's image, nor of the
	// digests of shop's: both asked by bundle.
	if len(d.bundles) != 2 || d.bundles[0] != "/bundles/shop" || d.bundles[1] != "/bundles/plain" {
		t.Fatalf("describer asked about %q", d.bundles)
	}
	if w, _ := a.Registry().Get("hooked"); w.Adopted {
		t.Fatal("the hook's registration was replaced by an adoption")
	}
	if n := a.Status().Counters["workloads_adopted"]; n != 2 {
		t.Fatalf("workloads_adopted = %d", n)
	}

	// Events of an adopted workload say so.
	sw, _ := a.Registry().Get("shop")
	ev := a.convert(connectRaw(sw.CgroupID), time.Now())
	if !ev.Ocigate.Adopted || ev.Ocigate.ContainerID != "shop" || ev.ProcessKprobe.Process.Pod.Container.Image.Name != "localhost/shop/web:1" {
		t.Fatalf("event of an adopted workload: %+v %+v", ev.Ocigate, ev.ProcessKprobe.Process.Pod)
	}
	hw, _ := a.Registry().Get("hooked")
	if ev := a.convert(connectRaw(hw.CgroupID), time.Now()); ev.Ocigate.Adopted {
		t.Fatal("event of a hook-registered workload says adopted")
	}
}
