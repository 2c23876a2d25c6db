package policy

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/seeds"
)

const digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// profile returns a WorkloadProfile document with the given spec body
// (indented by two spaces).
func profile(name, spec string) string {
	return "apiVersion: ocigate.io/v1alpha1\nkind: WorkloadProfile\nmetadata:\n  name: " + name + "\nspec:\n" + spec
}

// docExample returns the YAML example of the package comment in doc.go.
func docExample(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	start := strings.Index(s, "//\tapiVersion: ocigate.io/v1alpha1")
	end := strings.Index(s, "// Each policies[] entry")
	if start < 0 || end < start {
		t.Fatal("example not found in doc.go")
	}
	var b strings.Builder
	for _, l := range strings.Split(s[start:end], "\n") {
		l = strings.TrimPrefix(strings.TrimPrefix(l, "//"), "\t")
		b.WriteString(l + "\n")
	}
	return b.String()
}

func TestDocExampleLoads(t *testing.T) {
	files := map[string]string{"profiles.yaml": docExample(t)}
	for _, name := range seeds.Names() {
		data, err := fs.ReadFile(seeds.FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(data)
	}
	pols, profs, err := LoadDir(writeFiles(t, files))
	if err != nil {
		t.Fatal(err)
	}
	if len(pols) != 7 || len(profs) != 2 {
		t.Fatalf("%d policies, %d profiles", len(pols), len(profs))
	}
	web, other := profs[0], profs[1]
	want := Match{Pos: web.Match.Pos,
		Images: []string{"docker.io/library/nginx:*", "registry.local/web@sha256:" + digest},
		Annotations: []AnnotationMatch{{Pos: web.Match.Annotations[0].Pos, Key: "team", Equals: "web"},
			{Pos: web.Match.Annotations[1].Pos, Key: "io.kubernetes.cri.container-name", Regex: "^web-"}},
		Runtimes: []string{"podman", "containerd"}, Containers: []string{"web", "side-*"}}
	if web.Name != "web" || web.Mode != "enforce" || web.FailurePolicy != "closed" || web.Default || !reflect.DeepEqual(web.Match, want) {
		t.Errorf("web %+v", web)
	}
	if len(web.Policies) != 2 || web.Policies[0].Name != "enforce-no-reverse-shell" || web.Policies[0].Inline != nil {
		t.Fatalf("policies %+v", web.Policies)
	}
	in := web.Policies[1].Inline
	if in == nil || web.Policies[1].Name != "web-egress" || in.Name != "web-egress" || in.Mode != "enforce" ||
		in.Kprobes[0].Selectors[0].Actions[0].Action != "Sigkill" {
		t.Errorf("inline %+v", web.Policies[1])
	}
	if !other.Default || other.Mode != "monitor" || other.Policies[0].Name != "detect-reverse-shell-outbound" {
		t.Errorf("default profile %+v", other)
	}
}

func TestProfileMatch(t *testing.T) {
	src := profile("m", `  match:
    images: ["docker.io/library/nginx:*", "*/python:3.*", "registry/[a-z]*:v1", "r/x@sha256:`+digest+`", "r/*@sha256:`+digest+`"]
    annotations: [{key: a, equals: ""}, {key: b, regex: "^x(y|z)$"}]
    runtimes: [runc, crun, podman, containerd, cri-o, docker]
  mode: monitor
  failurePolicy: open
  policies: [{name: p}]
`)
	docs, err := Parse("w.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	w := docs[0].Profile
	if len(w.Match.Images) != 5 || len(w.Match.Runtimes) != 6 || w.FailurePolicy != "open" || w.Match.Annotations[0].Equals != "" {
		t.Errorf("%+v", w)
	}
}

// spec.selectableBy: images, namespaces, all.
func TestProfileSelectableBy(t *testing.T) {
	src := profile("s", `  match: {runtimes: [runc]}
  mode: monitor
  policies: [{name: p}]
  selectableBy:
    images: ["registry.internal/debug/*", "r/x@sha256:`+digest+`"]
    namespaces: [debug, "ci-*"]
`)
	docs, err := Parse("s.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	sb := docs[0].Profile.SelectableBy
	if sb == nil || len(sb.Images) != 2 || !reflect.DeepEqual(sb.Namespaces, []string{"debug", "ci-*"}) || sb.All || sb.Line != 10 {
		t.Errorf("%+v", sb)
	}
	docs, err = Parse("s.yaml", []byte(profile("s", "  match: {runtimes: [runc]}\n  mode: monitor\n  policies: [{name: p}]\n  selectableBy: {all: true}\n")))
	if err != nil || docs[0].Profile.SelectableBy == nil || !docs[0].Profile.SelectableBy.All {
		t.Errorf("all: %v %+v", err, docs)
	}
}

// spec.processEvents: on unless false.
func TestProfileProcessEvents(t *testing.T) {
	ok := "  match: {runtimes: [runc]}\n  mode: enforce\n  policies: [{name: p}]\n"
	for extra, off := range map[string]bool{"": false, "  processEvents: true\n": false, "  processEvents: false\n": true} {
		docs, err := Parse("w.yaml", []byte(profile("w", ok+extra)))
		if err != nil {
			t.Fatalf("%q: %v", extra, err)
		}
		if docs[0].Profile.NoProcessEvents != off {
			t.Errorf("%q: NoProcessEvents %v, want %v", extra, docs[0].Profile.NoProcessEvents, off)
		}
	}
}

func TestProfileErrors(t *testing.T) {
	ok := "  match: {runtimes: [runc]}\n  mode: enforce\n  policies: [{name: p}]\n"
	tests := []struct {
		name, src, marker, field, msg string
	}{
		{"bad glob", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "\n    images: [\"docker.io/[nginx\"]", 1)), "[nginx",
			"spec.match.images[0]", `"docker.io/[nginx": not a valid glob: syntax error in pattern`},
		{"short digest", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "\n    images: [\"r/web@sha256:abc\"]", 1)), "abc",
			"spec.match.images[0]", "the digest must be sha256: followed by 64 lowercase hex digits"},
		{"uppercase digest", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "\n    images: [\"r/web@sha256:"+strings.ToUpper(digest)+"\"]", 1)), "sha256",
			"spec.match.images[0]", "64 lowercase hex digits"},
		{"sha512 digest", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "\n    images: [\"r/web@sha512:"+digest+digest+"\"]", 1)), "sha512",
			"spec.match.images[0]", "the digest must be sha256:"},
		{"digest without name", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "\n    images: [\"@sha256:"+digest+"\"]", 1)), "sha256",
			"spec.match.images[0]", "an image name is required before the digest"},
		{"regex does not compile", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "\n    annotations:\n    - key: team\n      regex: \"^web-(\"", 1)), "regex",
			"spec.match.annotations[0].regex", "does not compile: error parsing regexp: missing closing )"},
		{"equals and regex", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "\n    annotations: [{key: a, equals: b, regex: c}]", 1)), "annotations",
			"spec.match.annotations[0]", "equals and regex are exclusive"},
		{"neither equals nor regex", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "\n    annotations: [{key: a}]", 1)), "annotations",
			"spec.match.annotations[0]", "needs equals or regex"},
		{"unknown runtime", profile("w", strings.Replace(ok, "[runc]", "[lxc]", 1)), "lxc",
			"spec.match.runtimes[0]", `"lxc" is not a supported runtime (supported: runc, crun, podman, containerd, cri-o, docker)`},
		{"empty match", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "{}", 1)), "match",
			"spec.match", "needs at least one of images, annotations, runtimes"},
		{"bad container glob", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "{containers: [\"web[\"]}", 1)), "containers",
			"spec.match.containers[0]", `"web[" is not a container name or glob`},
		{"unknown match field", profile("w", strings.Replace(ok, "{runtimes: [runc]}", "{labels: {a: b}}", 1)), "match",
			"spec.match.labels", "unknown field (known: images, annotations, runtimes, containers)"},
		{"no match", profile("w", strings.Replace(ok, "  match: {runtimes: [runc]}\n", "", 1)), "spec:",
			"spec.match", "required (or default: true)"},
		{"default with match", profile("w", ok+"  default: true\n"), "match",
			"spec.match", "not allowed with default: true"},
		{"no mode", profile("w", strings.Replace(ok, "  mode: enforce\n", "", 1)), "spec:",
			"spec.mode", "required (monitor, enforce)"},
		{"bad mode", profile("w", strings.Replace(ok, "mode: enforce", "mode: audit", 1)), "audit",
			"spec.mode", `"audit" is not a supported mode (supported: monitor, enforce)`},
		{"bad failure policy", profile("w", ok+"  failurePolicy: half\n"), "half",
			"spec.failurePolicy", `"half" is not a supported failure policy (supported: closed, open)`},
		{"no policies", profile("w", strings.Replace(ok, "[{name: p}]", "[]", 1)), "policies",
			"spec.policies", "at least one policy is required"},
		{"name and inline", profile("w", strings.Replace(ok, "{name: p}", "{name: p, inline: {}}", 1)), "policies",
			"spec.policies[0]", "name and inline are exclusive"},
		{"empty ref", profile("w", strings.Replace(ok, "{name: p}", "{}", 1)), "policies",
			"spec.policies[0]", "needs name (a TracingPolicy's metadata.name) or inline (a TracingPolicy)"},
		{"listed twice", profile("w", strings.Replace(ok, "[{name: p}]", "\n  - name: p\n  - name: p # again", 1)), "# again",
			"spec.policies[1]", `policy "p" listed twice (first at line`},
		{"inline error path", profile("w", strings.Replace(ok, "[{name: p}]", "\n  - inline:\n      metadata: {name: i}\n      spec:\n        kprobes: [{call: nope}]", 1)), "nope",
			"spec.policies[0].inline.spec.kprobes[0]", `kprobe nope: refused: `},
		{"inline kind", profile("w", strings.Replace(ok, "[{name: p}]", "\n  - inline:\n      kind: WorkloadProfile\n      metadata: {name: i}\n      spec:\n        kprobes: [{call: tcp_connect}]", 1)), "      kind: Workload",
			"spec.policies[0].inline.kind", `"WorkloadProfile" is not supported (supported: TracingPolicy, or leave it out)`},
		{"profile unknown field", profile("w", ok+"  selector: {}\n"), "selector",
			"spec.selector", "unknown field (known: match, mode, failurePolicy, policies, default, processEvents, selectableBy)"},
		{"selectableBy empty", profile("w", ok+"  selectableBy: {}\n"), "selectableBy",
			"spec.selectableBy", "needs images, namespaces or all: true"},
		{"selectableBy bad image", profile("w", ok+"  selectableBy: {images: [\"r/x@sha256:abc\"]}\n"), "selectableBy",
			"spec.selectableBy.images[0]", "the digest must be sha256:"},
		{"selectableBy bad namespace", profile("w", ok+"  selectableBy: {namespaces: [\"a/b\"]}\n"), "selectableBy",
			"spec.selectableBy.namespaces[0]", `"a/b" is not a namespace name or glob`},
		{"selectableBy unknown field", profile("w", ok+"  selectableBy: {labels: [a]}\n"), "selectableBy",
			"spec.selectableBy.labels", "unknown field (known: images, namespaces, all)"},
		{"process events not a bool", profile("w", ok+"  processEvents: off-please\n"), "processEvents",
			"spec.processEvents", "must be true or false"},
		{"profile apiVersion", strings.Replace(profile("w", ok), "ocigate.io/v1alpha1", "ocigate.io/v1", 1), "apiVersion",
			"apiVersion", `"ocigate.io/v1" is not supported for kind WorkloadProfile (supported: ocigate.io/v1alpha1)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, tc.src, tc.marker, tc.field, tc.msg)
		})
	}
}

func TestTwoDefaults(t *testing.T) {
	def := "  default: true\n  mode: monitor\n  policies: [{name: p}]\n"
	dir := writeFiles(t, map[string]string{
		"p.yaml": head + connect,
		"a.yaml": profile("a", def),
		"b.yaml": profile("b", def),
	})
	_, _, err := LoadDir(dir)
	checkError(t, err, filepath.Join(dir, "b.yaml")+":6: spec.default: ",
		`profile "b" is a second default profile (the first is "a" at `+filepath.Join(dir, "a.yaml")+":6)")
}

func TestInlineNames(t *testing.T) {
	inline := "  default: true\n  mode: monitor\n  policies:\n  - inline:\n      metadata: {name: p}\n      spec: {kprobes: [{call: tcp_close}]}\n"
	dir := writeFiles(t, map[string]string{"p.yaml": head + connect, "w.yaml": profile("w", inline)})
	_, _, err := LoadDir(dir)
	checkError(t, err, filepath.Join(dir, "w.yaml")+":10: spec.policies[0].inline.metadata.name: ", `duplicate TracingPolicy name "p"`)

	ref := "  match: {runtimes: [runc]}\n  mode: monitor\n  policies: [{name: i}]\n"
	dir = writeFiles(t, map[string]string{"w.yaml": profile("w", strings.Replace(inline, "name: p", "name: i", 1)), "v.yaml": profile("v", ref)})
	_, _, err = LoadDir(dir)
	checkError(t, err, filepath.Join(dir, "v.yaml")+":8: spec.policies[0].name: ", `"i" is an inline policy of another profile`)
}
