package main

import (
	"context"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/ocigate/ocigate/internal/api"
)

// resendPods is how often the pod table goes to the agent unchanged: a
// restarted agent starts without one.
const resendPods = 30 * time.Second

// podTable is the node's pods as the agent's events show them.
func (c *controller) podTable() []api.PodMeta {
	var out []api.PodMeta
	for _, item := range c.pods.GetStore().List() {
		p, ok := item.(*corev1.Pod)
		if !ok || p.Spec.NodeName != c.o.node {
			continue
		}
		name, kind := workloadOf(p)
		out = append(out, api.PodMeta{UID: string(p.UID), Namespace: p.Namespace, Name: p.Name,
			Labels: p.Labels, Workload: name, WorkloadKind: kind})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UID < out[j].UID })
	return out
}

// cronJobName is the name of a Job a CronJob made: the CronJob's name,
// then the scheduled time in minutes since the epoch.
var cronJobName = regexp.MustCompile(`^(.+)-[0-9]{8,10}$`)

// workloadOf names a pod's owning workload as Tetragon does: its
// controller (StatefulSet, DaemonSet, Job, ReplicationController, …);
// a ReplicaSet's pods their Deployment, a CronJob's Job's pods their
// CronJob, both known by name (the pod-template-hash suffix, the
// schedule's minutes) since the pod names only its own controller; a
// pod without one is its own.
func workloadOf(p *corev1.Pod) (string, string) {
	for _, o := range p.OwnerReferences {
		if o.Controller == nil || !*o.Controller {
			continue
		}
		if hash := p.Labels["pod-template-hash"]; o.Kind == "ReplicaSet" && hash != "" && strings.HasSuffix(o.Name, "-"+hash) {
			return strings.TrimSuffix(o.Name, "-"+hash), "Deployment"
		}
		if m := cronJobName.FindStringSubmatch(o.Name); o.Kind == "Job" && m != nil {
			return m[1], "CronJob"
		}
		return o.Name, o.Kind
	}
	return p.Name, "Pod"
}

// podLoop sends the pod table whenever a pod of the node changes, and
// every resendPods. It runs beside sync, which may wait seconds for the
// agent to reload a profiles file: a new pod's container starts, and its
// first events are written, meanwhile, and they name the pod's labels
// only if the agent has the table by then.
func (c *controller) podLoop(ctx context.Context) {
	tick := time.NewTicker(resendPods)
	defer tick.Stop()
	for {
		c.sendPods(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-c.podKick:
		}
	}
}

// sendPods gives the agent the pod table when it changed, or when it
// was last sent resendPods ago.
func (c *controller) sendPods(ctx context.Context) {
	table := c.podTable()
	if reflect.DeepEqual(table, c.sentPods) && time.Since(c.sentAt) < resendPods {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := api.Call(cctx, c.o.socket, &api.Request{Op: api.OpPods, Pods: &api.PodTable{Pods: table}}); err != nil {
		c.log.Warn("pod table not sent to the agent; events lack pod labels until it is", zap.Error(err))
		time.AfterFunc(time.Second, func() { kick(c.podKick) }) // again soon, not in resendPods
		return
	}
	c.sentPods, c.sentAt = table, time.Now()
}
