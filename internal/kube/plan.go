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
	// Containers are the names of its containers (init and ephemeral
	// ones too): what a containerSelector chooses among.
	Containers []string
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
// node's default profile). Pods with the same policies share a
// generated profile; where a policy's containerSelector chooses among a
// pod's containers, each container name has its own.
func Build(objs []*Object, pods []Pod, exempt map[string]bool) (*Plan, error) {
	objs = slices.Clone(objs)
	sortObjects(objs)
	p := &Plan{Profiles: map[string][]string{}, Applied: map[string][]string{}}
	groups := map[group][]Pod{}
	for _, pod := range pods {
		if exempt[pod.Namespace] || pod.UID == "" {
			continue
		}
		for g, names := range groupsOf(applicable(objs, pod), pod) {
			groups[g] = append(groups[g], pod)
			key := pod.Namespace + "/" + pod.Name
			for _, n := range names {
				if !slices.Contains(p.Applied[key], n) {
					p.Applied[key] = append(p.Applied[key], n)
				}
			}
		}
	}
	var docs []map[string]any
	for _, o := range objs {
		docs = append(docs, o.Doc)
	}
	keys := make([]group, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	for _, k := range keys {
		name, doc := profileFor(strings.Split(k.policies, "\n"), groups[k], k.container)
		docs = append(docs, doc)
		for _, pod := range groups[k] {
			p.Profiles[name] = append(p.Profiles[name], k.member(pod))
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

// group is one generated profile: its policies (names, one a line) and,
// when a containerSelector chose, the container name it binds.
type group struct{ policies, container string }

func (g group) less(o group) bool {
	if g.policies != o.policies {
		return g.policies < o.policies
	}
	return g.container < o.container
}

// member names a pod, or its container, as Plan.Profiles lists it.
func (g group) member(pod Pod) string {
	if g.container == "" {
		return pod.Namespace + "/" + pod.Name
	}
	return pod.Namespace + "/" + pod.Name + "/" + g.container
}

// groupsOf splits the policies that select a pod by container: one
// group for the whole pod when none has a containerSelector, else one
// per container that some policy selects.
func groupsOf(objs []*Object, pod Pod) map[group][]string {
	out := map[group][]string{}
	if len(objs) == 0 {
		return out
	}
	if !slices.ContainsFunc(objs, func(o *Object) bool { return o.Containers != nil }) {
		names := policyNames(objs)
		out[group{policies: strings.Join(names, "\n")}] = names
		return out
	}
	for _, c := range pod.Containers {
		names := policyNames(slices.DeleteFunc(slices.Clone(objs), func(o *Object) bool { return !o.SelectsContainer(c) }))
		if len(names) > 0 {
			out[group{policies: strings.Join(names, "\n"), container: c}] = names
		}
	}
	return out
}

func policyNames(objs []*Object) []string {
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.PolicyName()
	}
	return names
}

// applicable returns the TracingPolicies that select a pod, in order.
func applicable(objs []*Object, pod Pod) []*Object {
	var out []*Object
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
			out = append(out, o)
		}
	}
	return out
}

// profileFor is the generated profile of one set of policies: named by
// their hash (and the container's name), bound to its pods by sandbox
// UID and, when container is set, to their containers of that name.
func profileFor(policies []string, pods []Pod, container string) (string, map[string]any) {
	key := strings.Join(policies, "\n")
	if container != "" {
		key += "\x00" + container
	}
	sum := sha256.Sum256([]byte(key))
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
	match := map[string]any{"annotations": []any{map[string]any{
		"key": SandboxUIDAnnotation, "regex": "^(" + strings.Join(uids, "|") + ")$"}}}
	if container != "" {
		// a DNS label: no glob character
		match["containers"] = []any{container}
	}
	return name, map[string]any{
		"apiVersion": "ocigate.io/v1alpha1",
		"kind":       KindWorkloadProfile,
		"metadata":   map[string]any{"name": name},
		"spec": map[string]any{
			"match":         match,
			"mode":          "enforce",
			"failurePolicy": "closed",
			"policies":      refs,
		},
	}
}
