package workloadstate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/workload"
)

func record(id string, cg uint64, at time.Time) *workload.Workload {
	return &workload.Workload{ContainerID: id, Runtime: "runc", Annotations: map[string]string{"a": "b"},
		Identity: cgroupfilter.Identity{CgroupID: cg, CgroupPath: "/x/" + id}, Profile: "p", Mode: "enforce",
		RegisteredAt: at.UTC()}
}

func TestPutLoadRemove(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a, b := record("a", 11, now.Add(time.Second)), record("b", 12, now)
	for _, w := range []*workload.Workload{a, b} {
		if err := s.Put(w); err != nil {
			t.Fatal(err)
		}
	}
	// Re-registering a cgroup replaces its record.
	a2 := record("a2", 11, now.Add(2*time.Second))
	if err := s.Put(a2); err != nil {
		t.Fatal(err)
	}
	got, errs := s.Load()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(got, []*workload.Workload{b, a2}) {
		t.Fatalf("Load = %+v", got)
	}
	if n, err := s.Count(); n != 2 || err != nil {
		t.Fatalf("Count = %d, %v", n, err)
	}
	if err := s.Remove(12); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(12); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if got, _ := s.Load(); len(got) != 1 || got[0].ContainerID != "a2" {
		t.Fatalf("after Remove: %+v", got)
	}
	if err := s.Put(&workload.Workload{ContainerID: "zero"}); err == nil {
		t.Fatal("Put without a cgroup id succeeded")
	}
}

// Damaged records and crash leftovers are removed and reported; foreign
// files are reported and kept.
func TestLoadDamaged(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(record("ok", 5, time.Now())); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"6.json":          "{not json",
		"7.json":          `{"container_id":"x","cgroup_id":8}`, // names another cgroup
		"9.json":          `{"cgroup_id":9}`,                    // no container
		".tmp-123":        "half a rec",
		"README":          "hello",
		"notanumber.json": "{}",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, errs := s.Load()
	if len(got) != 1 || got[0].ContainerID != "ok" {
		t.Fatalf("Load = %+v", got)
	}
	if len(errs) != 5 {
		t.Fatalf("errors %v, want 5", errs)
	}
	for _, gone := range []string{"6.json", "7.json", "9.json", ".tmp-123"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s not removed: %v", gone, err)
		}
	}
	for _, kept := range []string{"README", "notanumber.json", "5.json"} {
		if _, err := os.Stat(filepath.Join(dir, kept)); err != nil {
			t.Errorf("%s: %v", kept, err)
		}
	}
	n, err := RemoveAll(dir)
	if n != 1 || err == nil || !strings.Contains(err.Error(), "directory not empty") {
		t.Fatalf("RemoveAll with foreign files = %d, %v", n, err)
	}
	os.Remove(filepath.Join(dir, "README"))
	os.Remove(filepath.Join(dir, "notanumber.json"))
	if _, err := RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir left: %v", err)
	}
}

// previousRecord is a record as the version before package workload
// wrote it (cgroupfilter.Workload in JSON), every field set.
const previousRecord = `{"container_id":"c1","runtime":"runc","bundle":"/run/b/c1","pid":4242,"annotations":{"k":"v"},` +
	`"image":"docker.io/library/alpine:3","image_source":"containerd","name":"web","pod":"web-0","pod_namespace":"default","adopted":true,` +
	`"cgroup_id":77,"cgroup_path":"/kubepods/c1","namespaces":{"mnt":1,"pid":2,"net":3,"uts":4,"ipc":5,"cgroup":6,"user":7,"time":8},` +
	`"profile":"default","profile_reason":"annotation","mode":"enforce","registered_at":"2024-01-02T03:04:05.000000006Z"}` + "\n"

// A restarted agent reads what its previous version wrote, and writes
// the same bytes for the same workload.
func TestPreviousVersionRecord(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "77.json"), []byte(previousRecord), 0o600); err != nil {
		t.Fatal(err)
	}
	want := &workload.Workload{ContainerID: "c1", Runtime: "runc", Bundle: "/run/b/c1", Pid: 4242,
		Annotations: map[string]string{"k": "v"}, Image: "docker.io/library/alpine:3", ImageSource: "containerd",
		Name: "web", Pod: "web-0", PodNamespace: "default", Adopted: true,
		Identity: cgroupfilter.Identity{CgroupID: 77, CgroupPath: "/kubepods/c1",
			Namespaces: cgroupfilter.NamespaceIDs{Mnt: 1, Pid: 2, Net: 3, Uts: 4, Ipc: 5, Cgroup: 6, User: 7, Time: 8}},
		Profile: "default", ProfileReason: "annotation", Mode: "enforce",
		RegisteredAt: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)}
	got, errs := s.Load()
	if len(errs) > 0 || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("Load = %+v, %v\nwant %+v", got, errs, want)
	}
	if err := s.Remove(77); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(want); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "77.json")); err != nil || string(b) != previousRecord {
		t.Fatalf("record written (%v):\n %s\nwant\n %s", err, b, previousRecord)
	}
}
