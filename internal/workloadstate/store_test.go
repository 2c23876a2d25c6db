package workloadstate

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ocigate/ocigate/cgroupfilter"
)

func workload(id string, cg uint64, at time.Time) *cgroupfilter.Workload {
	return &cgroupfilter.Workload{ContainerID: id, Runtime: "runc", Annotations: map[string]string{"a": "b"},
		Identity: cgroupfilter.Identity{CgroupID: cg, CgroupPath: "/x/" + id}, Profile: "p", Mode: "enforce",
		RegisteredAt: at.UTC()}
}

func TestPutLoadRemove(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a, b := workload("a", 11, now.Add(time.Second)), workload("b", 12, now)
	for _, w := range []*cgroupfilter.Workload{a, b} {
		if err := s.Put(w); err != nil {
			t.Fatal(err)
		}
	}
	// Re-registering a cgroup replaces its record.
	a2 := workload("a2", 11, now.Add(2*time.Second))
	if err := s.Put(a2); err != nil {
		t.Fatal(err)
	}
	got, errs := s.Load()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if !reflect.DeepEqual(got, []*cgroupfilter.Workload{b, a2}) {
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
	if err := s.Put(&cgroupfilter.Workload{ContainerID: "zero"}); err == nil {
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
	if err := s.Put(workload("ok", 5, time.Now())); err != nil {
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
