package agent

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/runtime/containerd"
	"github.com/ocigate/ocigate/runtime/describe"
)

// Describer asks a container's runtime what its registration did not say
// (runtime/describe: containerd's metadata, podman's records).
type Describer interface {
	Describe(ctx context.Context, bundle string) (describe.Info, error)
}

// describeTimeout bounds the runtime lookup inside a registration: the
// hook waits 2 s for the whole of it.
const describeTimeout = 500 * time.Millisecond

// imageAnnotations name the image, in the order they are trusted.
var imageAnnotations = []string{
	"ocigate.io/image",
	"io.kubernetes.cri.image-name",
	"io.kubernetes.cri-o.ImageName",
	"org.opencontainers.image.ref.name",
}

// Container and pod names as containerd's CRI plugin and CRI-O set them.
var (
	nameAnnotations         = []string{"io.kubernetes.cri.container-name", "io.kubernetes.container.name"}
	podAnnotations          = []string{"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"}
	podNamespaceAnnotations = []string{"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"}
)

// imageOf returns the image an annotation names and that annotation's key.
func imageOf(annotations map[string]string) (image, key string) {
	for _, k := range imageAnnotations {
		if v := annotations[k]; v != "" {
			return v, k
		}
	}
	return "", ""
}

func firstOf(annotations map[string]string, keys []string) string {
	for _, k := range keys {
		if v := annotations[k]; v != "" {
			return v
		}
	}
	return ""
}

// identify fills in a workload's image and names: from its annotations,
// then, for what they do not say, from its runtime. A failed lookup is
// logged and counted; the workload goes on without (its profile is then
// chosen without an image).
func (a *Agent) identify(w *workload.Workload) { a.identifyAs(w, describe.Info{}) }

// identifyAs is identify with what a runtime already said (an adopted
// container's listing), used before asking it again.
func (a *Agent) identifyAs(w *workload.Workload, known describe.Info) {
	// The hook names runc when runc ran it: a bundle in containerd's
	// state directory says whose container it is.
	if _, _, ok := containerd.BundleRef(w.Bundle); ok && (w.Runtime == "" || w.Runtime == "runc") {
		w.Runtime = "containerd"
	}
	w.Image, w.ImageSource = imageOf(w.Annotations)
	w.Name = firstOf(w.Annotations, nameAnnotations)
	w.Pod = firstOf(w.Annotations, podAnnotations)
	w.PodNamespace = firstOf(w.Annotations, podNamespaceAnnotations)
	if w.Image == "" && known.Image != "" {
		w.Image, w.ImageSource = known.Image, known.Source
	}
	if w.Name == "" {
		w.Name = known.Name
	}
	if known.Source != "" || (w.Image != "" && w.Name != "") || a.describer == nil || w.Bundle == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), describeTimeout)
	defer cancel()
	start := time.Now()
	info, err := a.describer.Describe(ctx, w.Bundle)
	if err != nil {
		a.stats.RuntimeLookupErrors.Add(1)
		a.log.Warn("the container's runtime did not say its image; the profile is chosen without it",
			zap.String("container", w.ContainerID), zap.String("runtime", info.Source), zap.Duration("took", time.Since(start)), zap.Error(err))
	}
	if w.Image == "" && info.Image != "" {
		w.Image, w.ImageSource = info.Image, info.Source
	}
	if w.Name == "" {
		w.Name = info.Name
	}
}
