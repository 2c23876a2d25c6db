package running

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// runcList is runc 1.1's `list -f json` of a podman container, a plain
// one, a stopped one and a created one.
const runcList = `[
{"ociVersion":"1.0.2-dev","id":"3cb4","pid":30400,"status":"running","bundle":"/var/lib/containers/storage/overlay-containers/3cb4/userdata","rootfs":"/x","created":"2026-11-23T15:24:13.17143133Z","annotations":{"io.container.manager":"libpod"},"owner":"root"},
{"ociVersion":"1.0.2","id":"plain","pid":400,"status":"running","bundle":"/srv/bundles/plain","annotations":{"ocigate.io/profile":"web"},"owner":"root"},
{"ociVersion":"1.0.2","id":"done","pid":0,"status":"stopped","bundle":"/srv/bundles/done","owner":"root"},
{"ociVersion":"1.0.2","id":"ctd","pid":500,"status":"created","bundle":"/run/containerd/io.containerd.runtime.v2.task/default/ctd","owner":"root"}
]`

func TestParseRuncList(t *testing.T) {
	got, err := parseRuncList("/run/runc", []byte(runcList))
	if err != nil {
		t.Fatal(err)
	}
	want := []Container{
		{ID: "3cb4", Runtime: "podman", Bundle: "/var/lib/containers/storage/overlay-containers/3cb4/userdata", Pid: 30400,
			Annotations: map[string]string{"io.container.manager": "libpod"}},
		{ID: "plain", Runtime: "runc", Bundle: "/srv/bundles/plain", Pid: 400, Annotations: map[string]string{"ocigate.io/profile": "web"}},
		{ID: "ctd", Runtime: "containerd", Bundle: "/run/containerd/io.containerd.runtime.v2.task/default/ctd", Pid: 500},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseRuncList =\n%+v\nwant\n%+v", got, want)
	}
	if got, err := parseRuncList("/r", []byte("null\n")); err != nil || len(got) != 0 {
		t.Fatalf("empty list: %v, %v", got, err)
	}
	if _, err := parseRuncList("/r", []byte("oops")); err == nil || !strings.Contains(err.Error(), "--root /r") {
		t.Fatalf("garbage: %v", err)
	}
}

// A stand-in runc prints a list per root; one root fails.
func TestListRuncRoots(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "runc")
	script := `#!/bin/sh
case "$2" in
/a) echo '[{"id":"one","pid":11,"status":"running","bundle":"/b/one"},{"id":"dup","pid":12,"status":"running","bundle":"/b/dup"}]' ;;
/b) echo '[{"id":"dup","pid":13,"status":"running","bundle":"/b/dup2"}]' ;;
*) echo "open $2: permission denied" >&2; exit 1 ;;
esac
`
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	l := &Lister{RuncBinary: fake, RuncRoots: []string{"/a", "/b", "/c"}}
	got, errs := l.List(context.Background())
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	if !reflect.DeepEqual(ids, []string{"one", "dup"}) || got[1].Pid != 12 {
		t.Fatalf("List = %+v", got)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "--root /c list") || !strings.Contains(errs[0].Error(), "permission denied") {
		t.Fatalf("errors %v", errs)
	}
}
