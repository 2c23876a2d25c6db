package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/seeds"
)

func TestCatalogUserFiles(t *testing.T) {
	c, err := NewCatalog(true, seeds.Dir(t), "testdata/workloads", "testdata/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range c.Profiles() {
		names = append(names, p.Name)
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
	if want := []string{"strict", "ci-runner", "ci-shell-executor", "egress-allowlist", "reverse-shell", "web"}; !reflect.DeepEqual(names, want) {
		t.Errorf("profiles %q, want %q", names, want)
	}
	wantNotes := []string{
		"profiles directory testdata/nonexistent does not exist: no profiles from it",
		`testdata/workloads/egress-allowlist.yaml:2: TracingPolicy "egress-allowlist" replaces the built-in one`,
		`testdata/workloads/egress-allowlist.yaml:28: WorkloadProfile "egress-allowlist" replaces the built-in one`,
		`testdata/workloads/strict.yaml:2: profile "strict" is the default instead of the built-in "reverse-shell"`,
	}
	if !reflect.DeepEqual(c.Notes(), wantNotes) {
		t.Errorf("notes\n got  %q\n want %q", c.Notes(), wantNotes)
	}
	if d := c.Default(); d == nil || d.Name != "strict" || d.Mode != ModeMonitor || !d.FailOpen {
		t.Errorf("default %+v", d)
	}
	web, ok := c.Get("web")
	if !ok {
		t.Fatal("no web")
	}
	// Groups at connect: reverse-shell 0, detect-reverse-shell-all-protocols 1,
	// detect-encrypted-reverse-shell 2; detect-bind-shell has none there.
	var got []string
	for _, s := range web.Points[PointConnect] {
		got = append(got, fmt.Sprintf("%d %s %s", s.Group, s.Policy, s.Call))
	}
	want := []string{"0 reverse-shell tcp_connect", "1 reverse-shell security_socket_connect",
		"2 detect-reverse-shell-all-protocols security_socket_connect", "3 detect-encrypted-reverse-shell tcp_connect"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("connect\n got  %q\n want %q", got, want)
	}
	if web.Points[PointListen][0].Group != 0 || web.Points[PointSockCreate][2].Policy != "detect-bind-shell" ||
		web.Points[PointSockCreate][2].Group != 1 {
		t.Errorf("listen %+v sock_create %+v", web.Points[PointListen], web.Points[PointSockCreate])
	}
	if !c.TrackSockets("web") || c.TrackSockets("strict") || c.TrackSockets("nope") {
		t.Error("TrackSockets")
	}
	eg, _ := c.Get("egress-allowlist")
	if n := len(eg.Points[PointSendmsg]); n != 1 || len(eg.Points[PointSendmsg][0].Daddr.Prefixes) != 3 {
		t.Errorf("egress-allowlist sendmsg %+v", eg.Points[PointSendmsg])
	}
	if _, ok := c.Get("nope"); ok {
		t.Error("Get(nope)")
	}
}

func TestCatalogErrors(t *testing.T) {
	_, err := NewCatalog(true, "testdata/bad")
	want := strings.Join([]string{
		`testdata/bad/a.yaml:16: spec.kprobes[0].selectors[0].matchArgs[1]: DAddr: a selector holds one destination address match and DAddr at line 13 sets it already`,
		`testdata/bad/a.yaml:28: spec.policies[0].name: TracingPolicy "broken" (testdata/bad/a.yaml:1) does not compile`,
		`testdata/bad/a.yaml:29: spec.policies[1].name: unknown TracingPolicy "missing" (no loaded file, built-ins included, has this metadata.name)`,
		`testdata/bad/b.yaml:1: metadata.name: duplicate WorkloadProfile name "one" (also at testdata/bad/a.yaml:20)`,
		`testdata/bad/b.yaml:12: spec.default: profile "two" is a second default profile (the first is "one" at testdata/bad/a.yaml:20)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
	// Without the built-ins, reverse-shell is unknown too.
	_, err = NewCatalogFiles(false, "testdata/bad/b.yaml")
	want = `testdata/bad/b.yaml:10: spec.policies[0].name: unknown TracingPolicy "reverse-shell" (no loaded file, built-ins included, has this metadata.name)` + "\n" +
		`testdata/bad/b.yaml:20: spec.policies[0].name: unknown TracingPolicy "reverse-shell" (no loaded file, built-ins included, has this metadata.name)`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

func TestCatalogDuplicatePolicies(t *testing.T) {
	dir := t.TempDir()
	pol := func(name string) string {
		return strings.Replace(header, "name: t", "name: "+name, 1) + sockArgs + "    - matchActions:\n      - action: Post\n"
	}
	for f, src := range map[string]string{"a.yaml": pol("p"), "b.yml": pol("p"), "c.txt": "not yaml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := NewCatalog(false, dir)
	want := filepath.Join(dir, "b.yml") + `:1: metadata.name: duplicate TracingPolicy name "p" (also at ` + filepath.Join(dir, "a.yaml") + `:1)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestCatalogNoDefault(t *testing.T) {
	c, err := NewCatalogFiles(false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Default() != nil || len(c.Profiles()) != 0 {
		t.Errorf("empty catalog: %+v", c.Profiles())
	}
	if _, err := Select(c, WorkloadInfo{Image: "nginx"}); err == nil ||
		err.Error() != `no profile matches image "docker.io/library/nginx:latest" and there is no default profile` {
		t.Errorf("Select: %v", err)
	}
}
