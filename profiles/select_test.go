package profiles

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/seeds"
)

var digestA = "sha256:" + strings.Repeat("a", 64)

// selectCatalog is the built-ins, the seeds and a set of profiles made
// for selection.
func selectCatalog(t *testing.T) *Catalog {
	t.Helper()
	profile := func(name, match string) string {
		return fmt.Sprintf(`---
apiVersion: ocigate.io/v1alpha1
kind: WorkloadProfile
metadata:
  name: %s
spec:
  match:
%s  mode: enforce
  policies:
  - name: detect-reverse-shell-outbound
`, name, match)
	}
	var b strings.Builder
	for _, p := range [][2]string{
		{"pinned", "    images: [\"nginx@" + digestA + "\"]\n"},
		{"nginx-any", "    images: [\"nginx:*\"]\n"},
		{"nginx-125", "    images: [\"docker.io/library/nginx:1.25\", \"nginx:1.2?\"]\n"},
		{"library", "    images: [\"docker.io/library/*\"]\n"},
		{"ghcr", "    images: [\"ghcr.io/acme/*\"]\n    runtimes: [crun, podman]\n"},
		{"team", "    annotations:\n    - key: team\n      equals: payments\n"},
		{"team-crun", "    annotations:\n    - key: team\n      regex: ^pay\n    runtimes: [crun]\n"},
		{"tie-b", "    images: [\"redis:*\"]\n"},
		{"tie-a", "    images: [\"redis:*\"]\n"},
		{"latest", "    images: [busybox]\n"},
		{"local", "    images: [\"localhost:5000/app:*\"]\n"},
		{"web-pod", "    annotations:\n    - key: pod\n      equals: p1\n    containers: [web, \"side-*\"]\n"},
	} {
		b.WriteString(profile(p[0], p[1]))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "select.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := NewCatalog(true, seeds.Dir(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSelect(t *testing.T) {
	c := selectCatalog(t)
	for _, tc := range []struct {
		image, runtime string
		annotations    map[string]string
		want, reason   string
	}{
		// The explicit annotation beats everything, even a digest, when
		// the profile it names is at least as strong.
		{"nginx@" + digestA, "runc", map[string]string{ProfileAnnotation: "team"}, "team",
			`annotation ocigate.io/profile=team (at least as strong as "pinned", which its identity selects)`},
		{"nginx", "runc", map[string]string{ProfileAnnotation: "library"}, "library",
			`annotation ocigate.io/profile=library (at least as strong as "nginx-any", which its identity selects)`},
		// A digest beats every glob, the longest literal one included.
		{"nginx@" + digestA, "runc", nil, "pinned", `image docker.io/library/nginx@` + digestA + ` matched "nginx@` + digestA + `" (docker.io/library/nginx@` + digestA + `)`},
		{"docker.io/library/nginx:1.25@" + digestA, "runc", nil, "pinned", `image docker.io/library/nginx:1.25@` + digestA + ` matched "nginx@` + digestA + `" (docker.io/library/nginx@` + digestA + `)`},
		// Among globs, the most literal characters.
		{"nginx:1.25", "runc", nil, "nginx-125", `image docker.io/library/nginx:1.25 matched "docker.io/library/nginx:1.25"`},
		{"nginx:1.26", "runc", nil, "nginx-125", `image docker.io/library/nginx:1.26 matched "nginx:1.2?" (docker.io/library/nginx:1.2?)`},
		{"nginx:1.19", "runc", nil, "nginx-any", `image docker.io/library/nginx:1.19 matched "nginx:*" (docker.io/library/nginx:*)`},
		{"nginx", "runc", nil, "nginx-any", `image docker.io/library/nginx:latest matched "nginx:*" (docker.io/library/nginx:*)`},
		{"index.docker.io/library/nginx:1.19", "runc", nil, "nginx-any", `image docker.io/library/nginx:1.19 matched "nginx:*" (docker.io/library/nginx:*)`},
		{"alpine", "runc", nil, "library", `image docker.io/library/alpine:latest matched "docker.io/library/*"`},
		{"docker.io/alpine:3", "runc", nil, "library", `image docker.io/library/alpine:3 matched "docker.io/library/*"`},
		// "busybox" means busybox:latest.
		{"busybox", "runc", nil, "latest", `image docker.io/library/busybox:latest matched "busybox" (docker.io/library/busybox:latest)`},
		{"docker.io/library/busybox:latest", "runc", nil, "latest", `image docker.io/library/busybox:latest matched "busybox" (docker.io/library/busybox:latest)`},
		{"localhost:5000/app", "runc", nil, "local", `image localhost:5000/app:latest matched "localhost:5000/app:*"`},
		// Every list given must hold.
		{"ghcr.io/acme/tool:1", "runc", nil, "reverse-shell", "default"},
		{"ghcr.io/acme/tool:1", "crun", nil, "ghcr", `image ghcr.io/acme/tool:1 matched "ghcr.io/acme/*" and runtime crun`},
		{"quay.io/x/y", "runc", map[string]string{"team": "payments"}, "team", "annotation team=payments"},
		{"quay.io/x/y", "runc", map[string]string{"team": "payroll"}, "reverse-shell", "default"},
		{"quay.io/x/y", "crun", map[string]string{"team": "payroll"}, "team-crun", "annotation team=~^pay and runtime crun"},
		// More lists given is more specific.
		{"quay.io/x/y", "crun", map[string]string{"team": "payments"}, "team-crun", "annotation team=~^pay and runtime crun"},
		// An image match beats annotations and runtimes.
		{"alpine", "crun", map[string]string{"team": "payments"}, "library", `image docker.io/library/alpine:latest matched "docker.io/library/*"`},
		// Ties go to the first name.
		{"redis:7", "runc", nil, "tie-a", `image docker.io/library/redis:7 matched "redis:*" (docker.io/library/redis:*) (tie with "tie-b", broken by name)`},
		// Containers by name, ANDed with the pod's annotation.
		{"quay.io/x/y", "runc", map[string]string{"pod": "p1", ContainerNameAnnotation: "web"}, "web-pod",
			"annotation pod=p1 and container web"},
		{"quay.io/x/y", "runc", map[string]string{"pod": "p1", ContainerNameAnnotation: "side-car"}, "web-pod",
			"annotation pod=p1 and container side-car"},
		{"quay.io/x/y", "runc", map[string]string{"pod": "p1", ContainerNameAnnotation: "db"}, "reverse-shell", "default"},
		{"quay.io/x/y", "runc", map[string]string{"pod": "p2", ContainerNameAnnotation: "web"}, "reverse-shell", "default"},
		{"quay.io/x/y", "runc", map[string]string{"pod": "p1"}, "reverse-shell", "default"},
		// No name: the default.
		{"", "runc", nil, "reverse-shell", "default"},
		{strings.Repeat("b", 64), "runc", nil, "reverse-shell", "default"},
		{"quay.io/other/thing:1", "runc", nil, "reverse-shell", "default"},
	} {
		// The operator vouches for the team annotation here: matches on
		// it are identity, not claims (TestSelectClaims).
		w := WorkloadInfo{Image: tc.image, Runtime: tc.runtime, Annotations: tc.annotations, TrustedKeys: map[string]bool{"team": true, "pod": true, ContainerNameAnnotation: true}}
		sel, err := Select(c, w)
		if err != nil {
			t.Errorf("%+v: %v", w, err)
			continue
		}
		if sel.Profile.Name != tc.want || sel.Reason != tc.reason || sel.Ignored != nil {
			t.Errorf("%+v:\n got  %s, %s (ignored %v)\n want %s, %s", w, sel.Profile.Name, sel.Reason, sel.Ignored, tc.want, tc.reason)
		}
	}
}

func TestSelectUnknownProfile(t *testing.T) {
	c := builtinCatalog(t)
	_, err := Select(c, WorkloadInfo{Image: "nginx", Annotations: map[string]string{ProfileAnnotation: "web"}})
	want := `annotation ocigate.io/profile="web": no such profile (known: reverse-shell, ci-runner, ci-shell-executor, egress-allowlist)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestSelectUserDefault(t *testing.T) {
	c, err := NewCatalog(true, seeds.Dir(t), "testdata/workloads")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ image, runtime, want, reason string }{
		{"nginx:1.25", "runc", "web", `image docker.io/library/nginx:1.25 matched "docker.io/library/nginx:*" and runtime runc`},
		{"nginx:1.25", "podman", "strict", "default"},
		{"redis", "runc", "strict", "default"},
	} {
		sel, err := Select(c, WorkloadInfo{Image: tc.image, Runtime: tc.runtime})
		if err != nil || sel.Profile.Name != tc.want || sel.Reason != tc.reason {
			t.Errorf("%s %s: got %v, %q, %v; want %s, %q", tc.image, tc.runtime, sel.Profile, sel.Reason, err, tc.want, tc.reason)
		}
	}
}

func TestNormalizeImage(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                             "docker.io/library/nginx:latest",
		"nginx:1.25":                        "docker.io/library/nginx:1.25",
		"library/nginx":                     "docker.io/library/nginx:latest",
		"bitnami/redis:7":                   "docker.io/bitnami/redis:7",
		"docker.io/nginx":                   "docker.io/library/nginx:latest",
		"index.docker.io/bitnami/redis":     "docker.io/bitnami/redis:latest",
		"localhost/app":                     "localhost/app:latest",
		"localhost:5000/app:v1":             "localhost:5000/app:v1",
		"quay.io/a/b/c:1":                   "quay.io/a/b/c:1",
		"nginx@" + digestA:                  "docker.io/library/nginx@" + digestA,
		"ghcr.io/x/y:2@" + digestA:          "ghcr.io/x/y:2@" + digestA,
		" nginx ":                           "docker.io/library/nginx:latest",
		"":                                  "",
		digestA:                             "",
		"registry.example.com:443/team/app": "registry.example.com:443/team/app:latest",
	} {
		if got := normalizeImage(in).String(); got != want {
			t.Errorf("normalizeImage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePattern(t *testing.T) {
	for _, tc := range []struct {
		in, glob string
		literal  int
	}{
		{"nginx", "docker.io/library/nginx:latest", 30},
		{"nginx:*", "docker.io/library/nginx:*", 24},
		{"docker.io/library/*", "docker.io/library/*", 18},
		{"*/nginx:*", "*/nginx:*", 7},
		{"ghcr.io/acme/[ab]pp:?", "ghcr.io/acme/[ab]pp:?", 16},
		{`quay.io/a\*b`, `quay.io/a\*b`, 11},
	} {
		p := parsePattern(tc.in)
		if p.glob != tc.glob || p.literal != tc.literal {
			t.Errorf("parsePattern(%q) = %q %d, want %q %d", tc.in, p.glob, p.literal, tc.glob, tc.literal)
		}
	}
}
