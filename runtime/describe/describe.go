// Package describe finds what a container's runtime knows of it, which
// the container's own spec cannot forge: the image it was created from
// (with the digests of its content), its name and, for Kubernetes, its
// pod. The bundle path says which runtime made the container: containerd
// (STATE/io.containerd.runtime.v2.task/NAMESPACE/ID: asked over its API),
// Docker (the same in namespace moby: read from dockerd's data root) or
// podman (GRAPHROOT/DRIVER-containers/ID/userdata: read from
// containers/storage's records). Other bundles have nothing to add.
package describe

import (
	"context"
	"errors"
	"fmt"

	"github.com/ocigate/ocigate/runtime/containerd"
	"github.com/ocigate/ocigate/runtime/docker"
	"github.com/ocigate/ocigate/runtime/podman"
)

// Info is what a runtime says of a container.
type Info struct {
	Image string // image reference ("" when created from a plain rootfs)
	// Digests are the digests of the image's content the runtime gives:
	// its ID, its manifest digests.
	Digests []string
	Name    string // the runtime's container name
	// Pod and Namespace are the Kubernetes pod and namespace of the
	// runtime's sandbox (containerd's CRI labels), "" otherwise.
	Pod, Namespace string
	Source         string // "containerd", "docker" or "podman"; "" when no runtime knew the bundle
}

// Describer looks containers up by bundle.
type Describer struct {
	// Containerd is asked about containerd's bundles (nil: they are not
	// looked up).
	Containerd *containerd.Client
	// DockerRoot is dockerd's data root, read for bundles of containerd's
	// namespace moby ("": docker.DefaultDataRoot).
	DockerRoot string
}

// CRI's container labels (set by the kubelet through containerd's CRI
// plugin, over any label of the image or the pod), and the containerd
// namespace and kind label of CRI's containers.
const (
	labelPodNamespace = "io.kubernetes.pod.namespace"
	labelPodName      = "io.kubernetes.pod.name"
	labelCRIKind      = "io.cri-containerd.kind"
	criNamespace      = "k8s.io"
)

// ErrNoContainerd is the error for a containerd bundle when there is no
// containerd to ask.
var ErrNoContainerd = errors.New("no containerd socket configured")

// Describe returns what the runtime that made bundle knows of its
// container. A bundle of no known runtime yields Info{} and no error.
func (d *Describer) Describe(ctx context.Context, bundle string) (Info, error) {
	if ns, id, ok := containerd.BundleRef(bundle); ok && ns == docker.Namespace {
		root := d.DockerRoot
		if root == "" {
			root = docker.DefaultDataRoot
		}
		m, err := docker.Lookup(root, id)
		if err != nil {
			return Info{Source: "docker"}, err
		}
		return Info{Image: m.Image, Digests: m.Digests, Name: m.Name, Source: "docker"}, nil
	} else if ok {
		return d.containerd(ctx, bundle, ns, id)
	}
	m, ok, err := podman.FromBundle(bundle)
	if ok {
		if err != nil {
			return Info{Source: "podman"}, err
		}
		return Info{Image: m.Image, Digests: m.Digests, Name: m.Name, Source: "podman"}, nil
	}
	return Info{}, nil
}

// containerd asks containerd about its container ns/id: the image and
// the digest its name points at, and for CRI's containers the pod.
func (d *Describer) containerd(ctx context.Context, bundle, ns, id string) (Info, error) {
	if d.Containerd == nil {
		return Info{Source: "containerd"}, fmt.Errorf("bundle %s: %w", bundle, ErrNoContainerd)
	}
	c, err := d.Containerd.Container(ctx, ns, id)
	if err != nil {
		return Info{Source: "containerd"}, err
	}
	info := Info{Image: c.Image, Name: c.Labels["nerdctl/name"], Source: "containerd"}
	if ns == criNamespace && c.Labels[labelCRIKind] == "container" {
		info.Pod, info.Namespace = c.Labels[labelPodName], c.Labels[labelPodNamespace]
	}
	if c.Image == "" {
		return info, nil
	}
	digest, err := d.Containerd.ImageDigest(ctx, ns, c.Image)
	if err != nil {
		// The name is still the runtime's; only a digest-pinned pattern
		// cannot match it.
		return info, fmt.Errorf("%w (the image name is known, its digest is not)", err)
	}
	info.Digests = []string{digest}
	return info, nil
}
