// Package podman reads what podman (libpod on containers/storage) records
// of a container beside its bundle: the image it was created from and its
// name. No podman process is run: the bundle of a podman container is
// GRAPHROOT/DRIVER-containers/ID/userdata, and containers/storage keeps
// every container's record, with libpod's metadata, in
// GRAPHROOT/DRIVER-containers/containers.json (written atomically).
package podman

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ocigate/ocigate/internal/boundedfile"
)

// MaxRecords bounds containers.json.
const MaxRecords = 64 << 20

// Meta is what podman recorded of a container.
type Meta struct {
	ID      string
	Name    string
	Image   string // the reference it was created from, e.g. docker.io/library/nginx:latest
	ImageID string
	// Digests are the image's content digests: "sha256:"+ImageID (the
	// config's digest) and the manifest digests containers/storage
	// records for it (podman images --digests).
	Digests []string
}

// BundleRef returns the containers.json file and container ID for a
// bundle of podman's layout, and false for any other bundle.
func BundleRef(bundle string) (records, id string, ok bool) {
	bundle = filepath.Clean(bundle)
	if filepath.Base(bundle) != "userdata" {
		return "", "", false
	}
	ctrDir := filepath.Dir(bundle)
	id = filepath.Base(ctrDir)
	store := filepath.Dir(ctrDir)
	if !strings.HasSuffix(filepath.Base(store), "-containers") || id == "" || id == "/" || id == "." {
		return "", "", false
	}
	return filepath.Join(store, "containers.json"), id, true
}

// record is one entry of containers.json.
type record struct {
	ID       string   `json:"id"`
	Names    []string `json:"names"`
	Image    string   `json:"image"`
	Metadata string   `json:"metadata"`
}

// libpodMetadata is the JSON libpod stores in a record's metadata.
type libpodMetadata struct {
	ImageName string `json:"image-name"`
	ImageID   string `json:"image-id"`
	Name      string `json:"name"`
}

// FromBundle returns podman's record of the container whose bundle this
// is. ok is false when the bundle is not in podman's layout; a bundle
// that is but has no readable record is an error.
func FromBundle(bundle string) (m Meta, ok bool, err error) {
	file, id, ok := BundleRef(bundle)
	if !ok {
		return Meta{}, false, nil
	}
	m, err = Lookup(file, id)
	if err != nil || m.ImageID == "" {
		return m, true, err
	}
	store := filepath.Dir(file)
	images := filepath.Join(filepath.Dir(store), strings.TrimSuffix(filepath.Base(store), "-containers")+"-images", "images.json")
	// The ID is the config's digest already; the manifest digests are a
	// bonus that a missing or odd images.json does not cost the rest.
	if m.Digests, err = ImageDigests(images, m.ImageID); err != nil {
		m.Digests = []string{"sha256:" + m.ImageID}
	}
	return m, true, nil
}

// imageRecord is one entry of images.json.
type imageRecord struct {
	ID      string   `json:"id"`
	Digest  string   `json:"digest"`
	Digests []string `json:"digests"`
}

// ImageDigests returns the content digests of image id from an
// images.json file: its ID as a digest, then its manifest digests.
func ImageDigests(file, id string) ([]string, error) {
	data, err := boundedfile.Read(file, MaxRecords)
	if err != nil {
		return nil, fmt.Errorf("podman image %s: %w", id, err)
	}
	var recs []imageRecord
	if err := json.Unmarshal(data, &recs); err != nil {
		return nil, fmt.Errorf("podman image %s: decoding %s: %w", id, file, err)
	}
	out := []string{"sha256:" + id}
	for _, r := range recs {
		if r.ID != id {
			continue
		}
		for _, d := range append([]string{r.Digest}, r.Digests...) {
			if d != "" && !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("podman image %s: not in %s", id, file)
}

// Lookup finds container id in a containers.json file.
func Lookup(file, id string) (Meta, error) {
	data, err := boundedfile.Read(file, MaxRecords)
	if err != nil {
		return Meta{}, fmt.Errorf("podman container %s: %w", id, err)
	}
	var recs []record
	if err := json.Unmarshal(data, &recs); err != nil {
		return Meta{}, fmt.Errorf("podman container %s: decoding %s: %w", id, file, err)
	}
	for _, r := range recs {
		if r.ID != id {
			continue
		}
		m := Meta{ID: r.ID, ImageID: r.Image}
		if len(r.Names) > 0 {
			m.Name = r.Names[0]
		}
		if r.Metadata != "" {
			var md libpodMetadata
			if err := json.Unmarshal([]byte(r.Metadata), &md); err != nil {
				return Meta{}, fmt.Errorf("podman container %s: %s: metadata %q: %w", id, file, r.Metadata, err)
			}
			m.Image = md.ImageName
			if md.Name != "" {
				m.Name = md.Name
			}
			if md.ImageID != "" {
				m.ImageID = md.ImageID
			}
		}
		return m, nil
	}
	return Meta{}, fmt.Errorf("podman container %s: not in %s", id, file)
}
