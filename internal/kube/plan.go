package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// Pod is what the plan needs of one pod of the node.
type Pod struct {
	Namespace, Name, UID string
	Labels               map[string]string
}

// SandboxUIDAnnotation is the annotation containerd's CRI plugin sets on
// every container to its pod's UID; the generated profiles match it, so
// the agent must trust its key (the chart passes --trusted-annotations):
// a pod's own annotations reach a container's spec only where
// containerd's pod_annotations list them, and its io.kubernetes.cri.*
// keys are containerd's.
const SandboxUIDAnnotation = "io.kubernetes.cri.sandbox-uid"

// BaseProfilePolicy is the policy every generated profile starts with:
// the built-in default's, so a pod that a TracingPolicy selects keeps
// the reverse-shell protection every other container has.
const BaseProfilePolicy = "reverse-shell"

// Plan is the profiles file for one node and what it holds.
type Plan struct {
	// File is the YAML the agent loads: every accepted policy and
	// profile, then the generated profiles; nil when there is none.
	File []byte
	// Profiles maps each generated profile to the pods it binds
	// (NAMESPACE/NAME).
	Profiles map[string][]string
	// Applied maps each pod (NAMESPACE/NAME) to the policies that apply
	// to it.
	Applied map[string][]string
}

// Build makes the node's plan from the accepted objects and the node's
// pods. Pods in exempt namespaces get no cluster policy (they keep the
// node's default profile).
func Build(objs []*Object, pods []Pod, exempt map[string]bool) (*Plan, error) {
	objs = slices.Clone(objs)
	sortObjects(objs)
	p := &Plan{Profiles: map[string][]string{}, Applied: map[string][]string{}}
	groups := map[string][]Pod{}
	for _, pod := range pods {
		if exempt[pod.Namespace] || pod.UID == "" {
			continue
		}
		names := applicable(objs, pod)
		if len(names) == 0 {
			continue
		}
		p.Applied[pod.Namespace+"/"+pod.Name] = names
		key := strings.Join(names, "\n")
		groups[key] = append(groups[key], pod)
	}
	var docs []map[string]any
	for _, o := range objs {
		docs = append(docs, o.Doc)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, doc := profileFor(strings.Split(k, "\n"), groups[k])
		docs = append(docs, doc)
		for _, pod := range groups[k] {
			p.Profiles[name] = append(p.Profiles[name], pod.Namespace+"/"+pod.Name)
		}
	}
	if len(docs) == 0 {
		return p, nil // no file: the agent refuses one without documents
	}
	var b strings.Builder
	b.WriteString("# Written by ocigate-kube from the API server's policies and this node's pods; do not edit.\n")
	for _, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("encode %v: %w", d["metadata"], err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	p.File = []byte(b.String())
	return p, nil
}

// applicable names the TracingPolicies that select a pod, in order.
func applicable(objs []*Object, pod Pod) []string {
	var names []string
	set := labels.Set(pod.Labels)
	for _, o := range objs {
		switch o.Kind {
		case KindTracingPolicy:
		case KindTracingPolicyNamespaced:
			if o.Namespace != pod.Namespace {
				continue
			}
		default:
			continue
		}
		if o.Pods.Matches(set) {
			names = append(names, o.PolicyName())
		}
	}
	return names
}

// profileFor is the generated profile of one set of policies: named by
// their hash, bound to its pods by sandbox UID.
func profileFor(policies []string, pods []Pod) (string, map[string]any) {
	sum := sha256.Sum256([]byte(strings.Join(policies, "\n")))
	name := "k8s-" + hex.EncodeToString(sum[:])[:12]
	uids := make([]string, len(pods))
	for i, pod := range pods {
		uids[i] = regexp.QuoteMeta(pod.UID)
	}
	sort.Strings(uids)
	refs := []any{map[string]any{"name": BaseProfilePolicy}}
	for _, n := range policies {
		refs = append(refs, map[string]any{"name": n})
	}
	return name, map[string]any{
		"apiVersion": "ocigate.io/v1alpha1",
		"kind":       KindWorkloadProfile,
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"match": map[string]any{"annotations": []any{map[string]any{
				"key": SandboxUIDAnnotation, "regex": "^(" + strings.Join(uids, "|") + ")$"}}},
			"mode":          "enforce",
			"failurePolicy": "closed",
			"policies":      refs,
		},
	}
}
