package main

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/ocigate/ocigate/internal/kube"
	"github.com/ocigate/ocigate/internal/testenv/policyfixture"
)

func unstructuredOf(t *testing.T, src string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(src), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

const goodPolicy = `apiVersion: cilium.io/v1alpha1
kind: TracingPolicy
metadata: {name: p, generation: 1}
spec:
` + policyfixture.DenyLoopback2

// A bad new version of a policy is refused with its field named, and
// the version accepted before stays in the file; a policy that was
// never good is left out; a deleted one goes.
func TestAcceptKeepsLastGoodVersion(t *testing.T) {
	v, err := kube.NewValidator(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &controller{valid: v, good: map[string]*kube.Object{}, reported: map[string]string{}}
	verdicts := map[string]string{}
	objs := c.accept([]*unstructured.Unstructured{unstructuredOf(t, goodPolicy)}, verdicts)
	if len(objs) != 1 || verdicts["TracingPolicy/p"] != "" {
		t.Fatalf("good policy: %d objects, verdict %q", len(objs), verdicts["TracingPolicy/p"])
	}
	bad := strings.Replace(strings.Replace(goodPolicy, "Override", "Nope", 1), "generation: 1", "generation: 2", 1)
	never := strings.Replace(bad, "name: p,", "name: q,", 1)
	verdicts = map[string]string{}
	objs = c.accept([]*unstructured.Unstructured{unstructuredOf(t, bad), unstructuredOf(t, never)}, verdicts)
	if len(objs) != 1 || objs[0].Generation != 1 {
		t.Fatalf("after a bad update: %d objects, want generation 1 of p only", len(objs))
	}
	for key, want := range map[string]string{"TracingPolicy/p": "stays in force", "TracingPolicy/q": "matchActions[0].action"} {
		if !strings.Contains(verdicts[key], want) || !strings.Contains(verdicts[key], "refused") {
			t.Errorf("%s: verdict %q, want a refusal with %q", key, verdicts[key], want)
		}
	}
	if objs = c.accept(nil, map[string]string{}); len(objs) != 0 || len(c.good) != 0 {
		t.Errorf("deleted policies stay: %d objects, %d remembered", len(objs), len(c.good))
	}
}

func TestExemptSet(t *testing.T) {
	got := exemptSet(" kube-system,,ocigate ")
	if len(got) != 2 || !got["kube-system"] || !got["ocigate"] {
		t.Errorf("exemptSet: %v", got)
	}
}
