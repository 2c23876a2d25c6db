package enforcer

import (
	"slices"
	"testing"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/profiles"
)

// Every program the loader attaches is in the objects, and every
// enforcement point has a plan, named as profiles names it.
func TestPlansUseTheObjectsPrograms(t *testing.T) {
	spec, err := bpf.LoadFallback()
	if err != nil {
		t.Fatal(err)
	}
	sec, err := bpf.LoadSecurity()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range trackingPrograms {
		if spec.Programs[p.name] == nil {
			t.Errorf("tracking program %s is not in the fallback object", p.name)
		}
	}
	specs := backendSpecs(spec, sec)
	for _, pp := range pointPlans {
		for _, c := range pp.candidates {
			obj := specs[c.backend]
			if obj == nil {
				t.Errorf("%s: backend %s has no object", pp.point, c.backend)
				continue
			}
			for _, p := range c.programs {
				if p.name != "" && obj.Programs[p.name] == nil {
					t.Errorf("%s: %s program %s is not in the object", pp.point, c.backend, p.name)
				}
			}
		}
	}
	var names []string
	for _, pp := range pointPlans {
		names = append(names, pp.point)
	}
	for pt := profiles.Point(0); pt < profiles.NumPoints; pt++ {
		if !slices.Contains(names, pt.String()) {
			t.Errorf("no plan for point %s (plans: %v)", pt, names)
		}
	}
}
