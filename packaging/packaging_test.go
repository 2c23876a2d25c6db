// Package packaging holds the Debian package's files (nfpm.yaml, the
// unit, the configuration, the example profile, the maintainer scripts);
// this test checks them without building the package.
package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/internal/agentconfig"
	"github.com/ocigate/ocigate/profiles"
)

// The example profile, uncommented, is a valid profile.
func TestExampleProfileUncommented(t *testing.T) {
	b, err := os.ReadFile("profiles/example.yaml.sample")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(b), "# apiVersion:")
	if !ok {
		t.Fatal("no commented profile")
	}
	body = regexp.MustCompile(`(?m)^# ?`).ReplaceAllString("# apiVersion:"+body, "")
	path := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := profiles.NewCatalogFiles(true, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("web"); !ok {
		t.Fatal("no profile web")
	}
}

// The unit starts the agent on the packaged configuration, which loads.
func TestUnitAndConfig(t *testing.T) {
	unit, err := os.ReadFile("ocigate-agentd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "ExecStart=/usr/bin/ocigate-agentd run --config " + agentconfig.DefaultFile,
		"Restart=on-failure", "Before=containerd.service crio.service docker.service"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	if _, err := agentconfig.Load("agentd.yaml", nil); err != nil {
		t.Fatal(err)
	}
}

// Every file nfpm.yaml takes from the tree exists (bin/ and dist/ are
// built by make package).
func TestPackageSources(t *testing.T) {
	b, err := os.ReadFile("nfpm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:- src|\w+): (packaging/\S+|LICENSE|README.md|docs/\S+)$`).FindAllStringSubmatch(string(b), -1) {
		if _, err := os.Stat(filepath.Join("..", m[1])); err != nil {
			t.Errorf("nfpm.yaml: %v", err)
		}
	}
}
