// Package describe finds what a container's runtime knows of it and its
// registration does not say: the image it was created from and its name.
// The bundle path says which runtime made the container: containerd
// (STATE/io.containerd.runtime.v2.task/NAMESPACE/ID: asked over its API)
// or podman (GRAPHROOT/DRIVER-containers/ID/userdata: read from
// containers/storage's records). Other bundles have nothing to add.
package describe

import (
	"context"
	"errors"
	"fmt"

	"github.com/ocigate/ocigate/runtime/containerd"
	"github.com/ocigate/ocigate/runtime/podman"
)

// Info is what a runtime says of a container.
type Info struct {
	Image  string // image reference ("" when created from a plain rootfs)
	Name   string // the runtime's container name
	Source string // "containerd" or "podman"; "" when no runtime knew the bundle
}

// Describer looks containers up by bundle.
type Describer struct {
	// Containerd is asked about containerd's bundles (nil: they are not
	// looked up).
	Containerd *containerd.Client
}

// ErrNoContainerd is the error for a containerd bundle when there is no
// containerd to ask.
var ErrNoContainerd = errors.New("no containerd socket configured")

// Describe returns what the runtime that made bundle knows of its
// container. A bundle of no known runtime yields Info{} and no error.
func (d *Describer) Describe(ctx context.Context, bundle string) (Info, error) {
	if ns, id, ok := containerd.BundleRef(bundle); ok {
		if d.Containerd == nil {
			return Info{Source: "containerd"}, fmt.Errorf("bundle %s: %w", bundle, ErrNoContainerd)
		}
		c, err := d.Containerd.Container(ctx, ns, id)
		if err != nil {
			return Info{Source: "containerd"}, err
		}
		return Info{Image: c.Image, Name: c.Labels["nerdctl/name"], Source: "containerd"}, nil
	}
	m, ok, err := podman.FromBundle(bundle)
	if ok {
		if err != nil {
			return Info{Source: "podman"}, err
		}
		return Info{Image: m.Image, Name: m.Name, Source: "podman"}, nil
	}
	return Info{}, nil
}
