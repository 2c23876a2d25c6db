package agent

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/profiles"
	"github.com/ocigate/ocigate/runtime/containerd"
	"github.com/ocigate/ocigate/runtime/describe"
	"github.com/ocigate/ocigate/runtime/docker"
)

// Describer asks a container's runtime what its registration did not say
// (runtime/describe: containerd's metadata, podman's records).
type Describer interface {
	Describe(ctx context.Context, bundle string) (describe.Info, error)
}

// describeTimeout bounds the runtime lookup inside a registration: the
// hook waits 2 s for the whole of it.
const describeTimeout = 500 * time.Millisecond

// Container and pod names as containerd's CRI plugin and CRI-O set them.
var (
	nameAnnotations = []string{"io.kubernetes.cri.container-name", "io.kubernetes.container.name"}
	podAnnotations  = []string{"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"}
)

// runtimeSources are the Sources of describe.Info: what a runtime's own
// records say, which a container's spec cannot forge.
var runtimeSources = map[string]bool{"containerd": true, "docker": true, "podman": true}

// imageOf returns the image an annotation names and that annotation's key.
func imageOf(annotations map[string]string) (image, key string) {
	return firstKeyOf(annotations, profiles.ImageAnnotations)
}

func firstOf(annotations map[string]string, keys []string) string {
	v, _ := firstKeyOf(annotations, keys)
	return v
}

// firstKeyOf returns the first of keys set in annotations, and the key.
func firstKeyOf(annotations map[string]string, keys []string) (value, key string) {
	for _, k := range keys {
		if v := annotations[k]; v != "" {
			return v, k
		}
	}
	return "", ""
}

// identify fills in a workload's image, names and pod: from its runtime's
// records, which the container's spec cannot forge, else from its
// annotations (claims, unless the operator trusts the key; selection
// tells them apart by the source). A failed lookup is logged and
// counted; the workload goes on without.
func (a *Agent) identify(w *workload.Workload) { a.identifyAs(w, describe.Info{}) }

// identifyAs is identify with what a runtime already said (an adopted
// container's listing), used before asking it again.
func (a *Agent) identifyAs(w *workload.Workload, known describe.Info) {
	// The hook names runc when runc ran it, or what an annotation says:
	// a bundle in containerd's state directory says whose container it is.
	if ns, _, ok := containerd.BundleRef(w.Bundle); ok && w.RuntimeAnnotation != "" || ok && (w.Runtime == "" || w.Runtime == "runc") {
		w.Runtime, w.RuntimeAnnotation = "containerd", ""
		if ns == docker.Namespace {
			w.Runtime = "docker"
		}
	}
	info := a.describe(w, known)
	switch img, key := imageOf(w.Annotations); {
	case info.Image != "":
		w.Image, w.ImageSource, w.ImageDigests = info.Image, info.Source, info.Digests
	case img != "":
		w.Image, w.ImageSource = img, key
	}
	w.Name = firstOf(w.Annotations, nameAnnotations)
	if w.Name == "" {
		w.Name = info.Name
	}
	if info.Namespace != "" {
		w.Pod, w.PodNamespace, w.PodSource = info.Pod, info.Namespace, info.Source
		return
	}
	w.Pod = firstOf(w.Annotations, podAnnotations)
	w.PodNamespace, w.PodSource = firstKeyOf(w.Annotations, profiles.NamespaceAnnotations)
}

// describe returns what the workload's runtime says of it: known, when
// that has the image's digests, else a bounded lookup.
func (a *Agent) describe(w *workload.Workload, known describe.Info) describe.Info {
	if known.Source != "" && (known.Image == "" || len(known.Digests) > 0) || a.describer == nil || w.Bundle == "" {
		return known
	}
	ctx, cancel := context.WithTimeout(context.Background(), describeTimeout)
	defer cancel()
	start := time.Now()
	info, err := a.describer.Describe(ctx, w.Bundle)
	if err != nil {
		a.stats.RuntimeLookupErrors.Add(1)
		a.log.Warn("the container's runtime did not say all of its identity; its profile is chosen without what is missing",
			zap.String("container", w.ContainerID), zap.String("runtime", info.Source), zap.Duration("took", time.Since(start)), zap.Error(err))
	}
	if info.Image == "" && known.Image != "" {
		info.Image, info.Source = known.Image, known.Source
	}
	if info.Name == "" {
		info.Name = known.Name
	}
	return info
}
