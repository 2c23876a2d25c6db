// Package kube turns what the Kubernetes API server holds — Tetragon's
// TracingPolicy and TracingPolicyNamespaced, ocigate's WorkloadProfile
// and the pods of one node — into the profiles file the node's agent
// loads: each policy as a document of its own, and one WorkloadProfile
// per set of policies that apply to some pods of the node, bound to
// those pods by their sandbox UID. It knows nothing of client-go: the
// objects come in as plain maps (cmd/kube feeds them from informers).
package kube

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// The kinds read from the API server.
const (
	KindTracingPolicy           = "TracingPolicy"
	KindTracingPolicyNamespaced = "TracingPolicyNamespaced"
	KindWorkloadProfile         = "WorkloadProfile"
)

// Object is one policy or profile from the API server.
type Object struct {
	Kind      string
	Namespace string // TracingPolicyNamespaced only
	Name      string
	// Generation is the object's metadata.generation: a new one is
	// validated again.
	Generation int64
	// Doc is the document the agent gets: apiVersion, kind,
	// metadata.name (and ocigate.io/ annotations), spec without the
	// selectors this package evaluates.
	Doc map[string]any
	// Pods selects the pods it applies to (TracingPolicy kinds).
	Pods labels.Selector
	// Containers selects the containers of those pods by their fields,
	// as Tetragon's containerSelector (the field "name"); nil: every
	// container.
	Containers labels.Selector
}

// ContainerFields are the container fields a containerSelector may
// name: Tetragon's.
var ContainerFields = []string{"name"}

// SelectsContainer reports whether the object applies to the container
// of that name (of a pod it selects).
func (o *Object) SelectsContainer(name string) bool {
	return o.Containers == nil || o.Containers.Matches(labels.Set{"name": name})
}

// Key names the object as the status and the logs do: KIND/NAME or
// KIND/NAMESPACE/NAME.
func (o *Object) Key() string {
	if o.Namespace != "" {
		return o.Kind + "/" + o.Namespace + "/" + o.Name
	}
	return o.Kind + "/" + o.Name
}

// PolicyName is the name the agent knows the policy by: its own for a
// cluster-wide one (so the seeds' events name them as on one host),
// NAMESPACE.NAME for a namespaced one.
func (o *Object) PolicyName() string {
	if o.Namespace != "" {
		return o.Namespace + "." + o.Name
	}
	return o.Name
}

// FromMap reads an object as the API server serves it (an unstructured
// object's content). An error names the field that is wrong.
func FromMap(m map[string]any) (*Object, error) {
	kind, _ := m["kind"].(string)
	meta, _ := m["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	ns, _ := meta["namespace"].(string)
	o := &Object{Kind: kind, Name: name, Pods: labels.Everything()}
	switch g := meta["generation"].(type) { // int64 from the API server, float64 from JSON
	case int64:
		o.Generation = g
	case float64:
		o.Generation = int64(g)
	}
	switch kind {
	case KindTracingPolicy:
	case KindTracingPolicyNamespaced:
		o.Namespace = ns
	case KindWorkloadProfile:
	default:
		return nil, fmt.Errorf("kind %q: want %s, %s or %s", kind, KindTracingPolicy, KindTracingPolicyNamespaced, KindWorkloadProfile)
	}
	if name == "" {
		return nil, fmt.Errorf("%s without metadata.name", kind)
	}
	spec, _ := m["spec"].(map[string]any)
	spec = maps.Clone(spec)
	if kind != KindWorkloadProfile {
		pods, containers, err := selectors(spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Key(), err)
		}
		o.Pods, o.Containers = pods, containers
	}
	md := map[string]any{"name": o.PolicyName()}
	if ann := ocigateAnnotations(meta); len(ann) > 0 {
		md["annotations"] = ann
	}
	o.Doc = map[string]any{"apiVersion": m["apiVersion"], "kind": kind, "metadata": md, "spec": spec}
	return o, nil
}

// selectors reads and removes spec.podSelector and spec.containerSelector:
// label selectors on the pod's labels and on the container's fields
// (ContainerFields); a container selector that selects every container
// is nil.
func selectors(spec map[string]any) (pods, containers labels.Selector, err error) {
	pods = labels.Everything()
	if raw, ok := spec["podSelector"]; ok && raw != nil {
		if pods, err = selector(raw); err != nil {
			return nil, nil, fmt.Errorf("spec.podSelector: %w", err)
		}
	}
	if raw, ok := spec["containerSelector"]; ok && raw != nil {
		ls, err := labelSelector(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("spec.containerSelector: %w", err)
		}
		for _, k := range selectorKeys(ls) {
			if !slices.Contains(ContainerFields, k) {
				return nil, nil, fmt.Errorf("spec.containerSelector: unknown container field %q (known: %s)", k, strings.Join(ContainerFields, ", "))
			}
		}
		if len(ls.MatchLabels) > 0 || len(ls.MatchExpressions) > 0 {
			if containers, err = metav1.LabelSelectorAsSelector(ls); err != nil {
				return nil, nil, fmt.Errorf("spec.containerSelector: %w", err)
			}
		}
	}
	delete(spec, "podSelector")
	delete(spec, "containerSelector")
	return pods, containers, nil
}

// selector converts a label selector map.
func selector(raw any) (labels.Selector, error) {
	ls, err := labelSelector(raw)
	if err != nil {
		return nil, err
	}
	return metav1.LabelSelectorAsSelector(ls)
}

// selectorKeys are the keys a label selector names.
func selectorKeys(ls *metav1.LabelSelector) []string {
	var keys []string
	for k := range ls.MatchLabels {
		keys = append(keys, k)
	}
	for _, r := range ls.MatchExpressions {
		keys = append(keys, r.Key)
	}
	sort.Strings(keys)
	return keys
}

// labelSelector converts a selector map field by field, naming the
// unknown ones.
func labelSelector(raw any) (*metav1.LabelSelector, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a label selector (matchLabels, matchExpressions), got %T", raw)
	}
	ls := &metav1.LabelSelector{}
	for k, v := range m {
		switch k {
		case "matchLabels":
			ml, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("matchLabels: want a map of strings")
			}
			ls.MatchLabels = map[string]string{}
			for lk, lv := range ml {
				s, ok := lv.(string)
				if !ok {
					return nil, fmt.Errorf("matchLabels.%s: want a string, got %T", lk, lv)
				}
				ls.MatchLabels[lk] = s
			}
		case "matchExpressions":
			exprs, err := expressions(v)
			if err != nil {
				return nil, err
			}
			ls.MatchExpressions = exprs
		default:
			return nil, fmt.Errorf("unknown field %q: want matchLabels or matchExpressions", k)
		}
	}
	return ls, nil
}

func expressions(v any) ([]metav1.LabelSelectorRequirement, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("matchExpressions: want a list")
	}
	out := make([]metav1.LabelSelectorRequirement, 0, len(list))
	for i, e := range list {
		em, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("matchExpressions[%d]: want key, operator, values", i)
		}
		r := metav1.LabelSelectorRequirement{}
		r.Key, _ = em["key"].(string)
		op, _ := em["operator"].(string)
		r.Operator = metav1.LabelSelectorOperator(op)
		vals, _ := em["values"].([]any)
		for _, x := range vals {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("matchExpressions[%d].values: want strings", i)
			}
			r.Values = append(r.Values, s)
		}
		out = append(out, r)
	}
	return out, nil
}

// ocigateAnnotations keeps the ocigate.io/ annotations (the internal
// selectors), the only ones the agent reads.
func ocigateAnnotations(meta map[string]any) map[string]any {
	ann, _ := meta["annotations"].(map[string]any)
	out := map[string]any{}
	for k, v := range ann {
		if strings.HasPrefix(k, "ocigate.io/") {
			out[k] = v
		}
	}
	return out
}

// sortObjects orders objects by key, so the file is the same for the
// same objects.
func sortObjects(objs []*Object) {
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key() < objs[j].Key() })
}
