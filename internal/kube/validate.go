package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/ocigate/ocigate/profiles"
)

// Validator checks each object alone against the built-in profiles, as
// the agent would load it, and remembers the answer per generation.
type Validator struct {
	dir  string
	seen map[string]verdict
}

type verdict struct {
	generation int64
	err        error
}

// NewValidator validates in a scratch directory under dir.
func NewValidator(dir string) (*Validator, error) {
	d, err := os.MkdirTemp(dir, "validate-")
	if err != nil {
		return nil, fmt.Errorf("validation directory: %w", err)
	}
	return &Validator{dir: d, seen: map[string]verdict{}}, nil
}

// Check returns why the agent would refuse o, or nil. A
// TracingPolicy is checked in a profile of its own that lists it after
// the base policy, as the generated profiles do; a WorkloadProfile may
// reference any accepted policy in accepted.
func (v *Validator) Check(o *Object, accepted []*Object) error {
	if vd, ok := v.seen[o.Key()]; ok && vd.generation == o.Generation && o.Generation != 0 {
		return vd.err
	}
	err := v.check(o, accepted)
	v.seen[o.Key()] = verdict{generation: o.Generation, err: err}
	return err
}

func (v *Validator) check(o *Object, accepted []*Object) error {
	docs := []map[string]any{o.Doc}
	if o.Kind == KindWorkloadProfile {
		for _, a := range accepted {
			if a.Kind != KindWorkloadProfile {
				docs = append(docs, a.Doc)
			}
		}
	} else {
		_, prof := profileFor([]string{o.PolicyName()}, []Pod{{UID: "x"}}, "c")
		docs = append(docs, prof)
	}
	var b strings.Builder
	for _, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	file := filepath.Join(v.dir, strings.ReplaceAll(o.Key(), "/", "_")+".yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	defer os.Remove(file)
	if _, err := profiles.NewCatalogFiles(true, file); err != nil {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), file+":", "line "))
	}
	return nil
}

// Forget drops what is remembered of objects that are gone.
func (v *Validator) Forget(keep map[string]bool) {
	for k := range v.seen {
		if !keep[k] {
			delete(v.seen, k)
		}
	}
}

// Close removes the scratch directory.
func (v *Validator) Close() error { return os.RemoveAll(v.dir) }
