package profiles

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ocigate/ocigate/profiles/policy"
)

// FuzzCompile checks that compiling whatever the parser accepts never
// panics and that a compiled policy's selectors validate.
func FuzzCompile(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(compatDir, "*.yaml"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := policy.Parse("f.yaml", data)
		if err != nil {
			return
		}
		for _, d := range docs {
			if d.Policy == nil {
				continue
			}
			c, err := CompilePolicy(d.Policy)
			if err != nil {
				continue
			}
			for pt, sels := range c.Points {
				for i := range sels {
					if err := sels[i].validate(); err != nil {
						t.Fatalf("%s selector %d: %v", Point(pt), i, err)
					}
				}
			}
		}
	})
}
