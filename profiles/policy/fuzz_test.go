package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/seeds"
)

// FuzzParse checks that Parse never panics, that what it accepts is named,
// and that every error it reports has a file and a line.
func FuzzParse(f *testing.F) {
	for _, name := range seeds.Names() {
		data, err := fs.ReadFile(seeds.FS(), name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(profile("web", "  match:\n    images: [\"docker.io/library/nginx:*\"]\n"+
		"    annotations: [{key: team, regex: \"^web-\"}]\n    runtimes: [podman]\n  mode: enforce\n"+
		"  policies:\n  - name: p\n  - inline:\n      metadata: {name: i}\n      spec: {kprobes: [{call: tcp_close}]}\n")))
	f.Add([]byte(head + connect + "---\n" + profile("d", "  default: true\n  mode: monitor\n  policies: [{name: p}]\n")))
	f.Add([]byte(matchPolicy("security_socket_connect", 1, "NotSAddr", `["::ffff:10.0.0.0/104", 10.0.0.1/8, "fe80::/10"]`)))
	f.Add([]byte(matchPolicy("security_socket_connect", 0, "DPort", `["1000-2000", 443, "1:2"]`)))
	f.Add([]byte(matchPolicy("sk_alloc", 1, "Equal", `[AF_INET, 10]`)))
	f.Add([]byte(head + connect +
		"  - call: tcp_sendmsg\n    args: [{index: 0, type: sock}, {index: 2, type: int}]\n    selectors:\n" +
		"    - matchNamespaces: [{namespace: Net, operator: NotIn, values: [host_ns, 4026531840]}]\n" +
		"      matchBinaries: [{operator: Postfix, values: [/sh]}]\n" +
		"      matchActions: [{action: Override, argError: -1}, {action: Signal, argSig: SIGKILL}, {action: TrackSock, argSock: 0}]\n" +
		"  options: [{name: policy-mode, value: monitor}]\n"))
	// The Tetragon-style test policies: every section of the schema.
	tetragon, _ := filepath.Glob("../testdata/tetragon/*.yaml")
	for _, name := range tetragon {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Parse("f.yaml", data)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 || docs != nil {
				t.Fatalf("error %T %v with %d documents", err, err, len(docs))
			}
			for _, e := range es {
				if e.File != "f.yaml" || e.Line < 1 || !strings.HasPrefix(e.Error(), "f.yaml:") {
					t.Fatalf("malformed error %+v", e)
				}
			}
			return
		}
		if len(docs) == 0 {
			t.Fatal("accepted with no documents")
		}
		for _, d := range docs {
			switch {
			case (d.Policy == nil) == (d.Profile == nil):
				t.Fatalf("document %+v must have exactly one of Policy and Profile", d)
			case d.Policy != nil && (d.Policy.Name == "" || d.Policy.Line < 1 || len(d.Policy.Kprobes) == 0):
				t.Fatalf("accepted policy %+v", d.Policy)
			case d.Profile != nil && (d.Profile.Name == "" || d.Profile.Line < 1 || d.Profile.Mode == "" || len(d.Profile.Policies) == 0):
				t.Fatalf("accepted profile %+v", d.Profile)
			}
			if d.Profile != nil {
				for _, r := range d.Profile.Policies {
					if r.Name == "" || r.Inline != nil && r.Inline.Name != r.Name {
						t.Fatalf("accepted reference %+v", r)
					}
				}
			}
		}
	})
}
