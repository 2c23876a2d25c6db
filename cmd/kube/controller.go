package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/atomicfile"
	"github.com/ocigate/ocigate/internal/kube"
)

// The resources watched.
var (
	gvrTracingPolicy = schema.GroupVersionResource{Group: "cilium.io", Version: "v1alpha1", Resource: "tracingpolicies"}
	gvrNamespaced    = schema.GroupVersionResource{Group: "cilium.io", Version: "v1alpha1", Resource: "tracingpoliciesnamespaced"}
	gvrProfile       = schema.GroupVersionResource{Group: "ocigate.io", Version: "v1alpha1", Resource: "workloadprofiles"}
)

// controller keeps the profiles file and the policies' status in step
// with the API server.
type controller struct {
	o        options
	log      *zap.Logger
	dc       dynamic.Interface
	pods     cache.SharedIndexInformer
	crs      map[schema.GroupVersionResource]cache.SharedIndexInformer
	starters []func(<-chan struct{})
	kick     chan struct{}
	podKick  chan struct{} // the pod table changed: podLoop sends it
	valid    *kube.Validator
	good     map[string]*kube.Object // last accepted version of each object
	reported map[string]string       // last status written per object
	written  []byte
	started  bool          // the first sync read what the file held
	sentPods []api.PodMeta // podLoop's own
	sentAt   time.Time
}

func newController(o options, cs kubernetes.Interface, dc dynamic.Interface, log *zap.Logger) (*controller, error) {
	if err := os.MkdirAll(filepath.Dir(o.file), 0o755); err != nil {
		return nil, fmt.Errorf("profiles directory: %w", err)
	}
	v, err := kube.NewValidator(os.TempDir())
	if err != nil {
		return nil, err
	}
	c := &controller{o: o, log: log, dc: dc, kick: make(chan struct{}, 1), podKick: make(chan struct{}, 1), valid: v,
		good: map[string]*kube.Object{}, reported: map[string]string{},
		crs: map[schema.GroupVersionResource]cache.SharedIndexInformer{}}
	// Only this node's pods: API traffic and memory grow with the pods
	// of one node, not of the cluster.
	pf := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
		lo.FieldSelector = "spec.nodeName=" + o.node
	}))
	c.pods = pf.Core().V1().Pods().Informer()
	_ = c.pods.SetTransform(slimPod)
	df := dynamicinformer.NewDynamicSharedInformerFactory(dc, 0)
	for _, gvr := range []schema.GroupVersionResource{gvrTracingPolicy, gvrNamespaced, gvrProfile} {
		c.crs[gvr] = df.ForResource(gvr).Informer()
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.poke() },
		UpdateFunc: func(any, any) { c.poke() },
		DeleteFunc: func(any) { c.poke() },
	}
	podH := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.poke(); kick(c.podKick) },
		UpdateFunc: func(any, any) { c.poke(); kick(c.podKick) },
		DeleteFunc: func(any) { c.poke(); kick(c.podKick) },
	}
	if _, err := c.pods.AddEventHandler(podH); err != nil {
		return nil, fmt.Errorf("pod informer: %w", err)
	}
	for _, inf := range c.crs {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("policy informer: %w", err)
		}
	}
	c.starters = []func(<-chan struct{}){pf.Start, df.Start}
	return c, nil
}

// slimPod keeps what the plan reads of a pod: metadata without managed
// fields and annotations, the node and its containers' names.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	spec := corev1.PodSpec{NodeName: p.Spec.NodeName}
	for _, c := range p.Spec.InitContainers {
		spec.InitContainers = append(spec.InitContainers, corev1.Container{Name: c.Name})
	}
	for _, c := range p.Spec.Containers {
		spec.Containers = append(spec.Containers, corev1.Container{Name: c.Name})
	}
	for _, c := range p.Spec.EphemeralContainers {
		spec.EphemeralContainers = append(spec.EphemeralContainers,
			corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: c.Name}})
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID,
		Labels: p.Labels, OwnerReferences: p.OwnerReferences, ResourceVersion: p.ResourceVersion}, Spec: spec}, nil
}

func (c *controller) poke() { kick(c.kick) }

// kick wakes the loop that waits on ch, unless it is already woken.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *controller) close() { _ = c.valid.Close() }

func (c *controller) run(ctx context.Context) error {
	for _, s := range c.starters {
		s(ctx.Done())
	}
	synced := []cache.InformerSynced{c.pods.HasSynced}
	for _, inf := range c.crs {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("informers did not sync: %w", ctx.Err())
	}
	c.log.Info("watching", zap.String("node", c.o.node), zap.String("file", c.o.file))
	go c.podLoop(ctx)
	tick := time.NewTicker(resendPods)
	defer tick.Stop()
	for {
		if err := c.sync(ctx); err != nil {
			c.log.Error("sync failed; trying again", zap.Error(err))
			time.AfterFunc(2*time.Second, c.poke)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-c.kick:
			time.Sleep(50 * time.Millisecond) // gather a burst of changes
		}
	}
}

// sync validates the objects, writes the file when it changed, waits
// for the agent to load it and writes the statuses.
func (c *controller) sync(ctx context.Context) error {
	verdicts := map[string]string{}
	accepted := c.accept(c.objects(), verdicts)
	plan, err := kube.Build(accepted, c.nodePods(), exemptSet(c.o.exempt))
	if err != nil {
		return err
	}
	if !c.started {
		c.started = true
		// What ocigate-kube finds on disk at its start (no file: nothing)
		// is what the agent loaded: the same again would bring no reload
		// to confirm, and sync would wait the whole confirm timeout.
		onDisk, err := os.ReadFile(c.o.file)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("profiles file: %w", err)
		}
		c.written = onDisk
	}
	if !bytes.Equal(plan.File, c.written) {
		before, _ := c.reloads(ctx)
		if err := writeProfiles(c.o.file, plan.File); err != nil {
			return err
		}
		c.written = plan.File
		c.log.Info("profiles file written", zap.Int("objects", len(accepted)), zap.Any("profiles", plan.Profiles))
		if err := c.confirm(ctx, plan, before); err != nil {
			for k, v := range verdicts {
				if v == "" {
					verdicts[k] = "not loaded by the agent: " + err.Error()
				}
			}
		}
	}
	c.report(ctx, verdicts)
	return nil
}

// accept reads every object, refusing the bad ones (their last good
// version, if any, stays) and records each one's verdict ("" loaded).
func (c *controller) accept(items []*unstructured.Unstructured, verdicts map[string]string) []*kube.Object {
	var objs, profiles []*kube.Object
	seen := map[string]bool{}
	for _, u := range items {
		key := objectKey(u)
		seen[key] = true
		o, err := kube.FromMap(u.Object)
		if err == nil && o.Kind != kube.KindWorkloadProfile {
			err = c.valid.Check(o, nil)
		}
		if o != nil && o.Kind == kube.KindWorkloadProfile && err == nil {
			profiles = append(profiles, o)
			continue
		}
		c.settle(key, o, err, verdicts, &objs)
	}
	for _, p := range profiles {
		c.settle(p.Key(), p, c.valid.Check(p, objs), verdicts, &objs)
	}
	for k := range c.good {
		if !seen[k] {
			delete(c.good, k)
			delete(c.reported, k)
		}
	}
	c.valid.Forget(seen)
	return objs
}

// objects lists the policy and profile objects the informers hold.
func (c *controller) objects() []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, inf := range c.crs {
		for _, item := range inf.GetStore().List() {
			if u, ok := item.(*unstructured.Unstructured); ok {
				out = append(out, u)
			}
		}
	}
	return out
}

// settle records one object's verdict and appends what is enforced of
// it: the new version when accepted, else the last accepted one.
func (c *controller) settle(key string, o *kube.Object, err error, verdicts map[string]string, objs *[]*kube.Object) {
	if err == nil {
		c.good[key] = o
		verdicts[key] = ""
	} else {
		verdicts[key] = "refused: " + err.Error()
		if c.good[key] != nil {
			verdicts[key] += " (the version accepted before stays in force)"
		}
	}
	if g := c.good[key]; g != nil {
		*objs = append(*objs, g)
	}
}

// objectKey is kube.Object.Key for an object that may not parse.
func objectKey(u *unstructured.Unstructured) string {
	if u.GetNamespace() != "" {
		return u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
	}
	return u.GetKind() + "/" + u.GetName()
}

func (c *controller) nodePods() []kube.Pod {
	var out []kube.Pod
	for _, item := range c.pods.GetStore().List() {
		p, ok := item.(*corev1.Pod)
		if !ok || p.Spec.NodeName != c.o.node {
			continue
		}
		out = append(out, kube.Pod{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), Labels: p.Labels, Containers: containerNames(p)})
	}
	return out
}

// reloads asks the agent how many profile reloads it has done and
// failed so far.
func (c *controller) reloads(ctx context.Context) (reloadCount, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := api.Call(cctx, c.o.socket, &api.Request{Op: api.OpStatus, Status: &api.StatusOptions{Summary: true}})
	if err != nil {
		return reloadCount{}, err
	}
	if resp.Status == nil {
		return reloadCount{}, fmt.Errorf("agent answered without a status")
	}
	return reloadCount{known: true, ok: resp.Status.Counters["profile_reloads"],
		failed: resp.Status.Counters["profile_reload_errors"], profiles: resp.Status.Profiles}, nil
}

// reloadCount is the agent's reload counters and its profiles.
type reloadCount struct {
	known      bool
	ok, failed uint64
	profiles   []string
}

// confirm waits until the agent has reloaded since before (when before
// is known: an agent that was not up loads the file as it starts) and
// lists every generated profile.
func (c *controller) confirm(ctx context.Context, plan *kube.Plan, before reloadCount) error {
	deadline := time.Now().Add(c.o.confirm)
	var last error
	for time.Now().Before(deadline) {
		now, err := c.reloads(ctx)
		switch {
		case err != nil:
			last = err
		case before.known && now.failed > before.failed && now.ok == before.ok:
			return fmt.Errorf("the agent refused the profiles file (see its log)")
		case before.known && now.ok == before.ok:
			last = fmt.Errorf("the agent has not reloaded the profiles file yet")
		default:
			missing := 0
			for name := range plan.Profiles {
				if !slices.Contains(now.profiles, name) {
					missing++
				}
			}
			if missing == 0 {
				return nil
			}
			last = fmt.Errorf("%d generated profiles not loaded (see the agent's log)", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

// report writes status.nodes[NODE] of each object whose verdict changed.
func (c *controller) report(ctx context.Context, verdicts map[string]string) {
	for _, inf := range c.crs {
		for _, item := range inf.GetStore().List() {
			u, ok := item.(*unstructured.Unstructured)
			if !ok {
				continue
			}
			key := objectKey(u)
			v, ok := verdicts[key]
			if last, done := c.reported[key]; !ok || (done && last == v) {
				continue
			}
			if err := c.patchStatus(ctx, u, v); err != nil {
				c.log.Warn("status not written", zap.String("object", key), zap.Error(err))
				continue
			}
			c.reported[key] = v
		}
	}
}

func (c *controller) patchStatus(ctx context.Context, u *unstructured.Unstructured, verdict string) error {
	state, msg := "loaded", ""
	if verdict != "" {
		state, msg = "failed", verdict
	}
	node := map[string]any{"state": state, "observedGeneration": u.GetGeneration(), "time": time.Now().UTC().Format(time.RFC3339)}
	if msg != "" {
		node["message"] = msg
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"nodes": map[string]any{c.o.node: node}}})
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	gvr := map[string]schema.GroupVersionResource{kube.KindTracingPolicy: gvrTracingPolicy,
		kube.KindTracingPolicyNamespaced: gvrNamespaced, kube.KindWorkloadProfile: gvrProfile}[u.GetKind()]
	_, err = c.dc.Resource(gvr).Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patch status: %w", err)
	}
	return nil
}

// writeProfiles replaces the profiles file with data, or removes it
// when data is empty.
func writeProfiles(path string, data []byte) error {
	if len(data) == 0 {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	}
	return atomicfile.Write(path, data, 0o644)
}

// containerNames are a pod's containers' names: init, regular and
// ephemeral ones, what a containerSelector chooses among.
func containerNames(p *corev1.Pod) []string {
	var out []string
	for _, c := range p.Spec.InitContainers {
		out = append(out, c.Name)
	}
	for _, c := range p.Spec.Containers {
		out = append(out, c.Name)
	}
	for _, c := range p.Spec.EphemeralContainers {
		out = append(out, c.Name)
	}
	return out
}
