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
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxRecords bounds containers.json.
const MaxRecords = 64 << 20

// Meta is what podman recorded of a container.
type Meta struct {
	ID      string
	Name    string
	Image   string // the reference it was created from, e.g. docker.io/library/nginx:latest
	ImageID string
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
	return m, true, err
}

// Lookup finds container id in a containers.json file.
func Lookup(file, id string) (Meta, error) {
	f, err := os.Open(file)
	if err != nil {
		return Meta{}, fmt.Errorf("podman container %s: %w", id, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxRecords+1))
	if err != nil {
		return Meta{}, fmt.Errorf("podman container %s: %s: %w", id, file, err)
	}
	if len(data) > MaxRecords {
		return Meta{}, fmt.Errorf("podman container %s: %s exceeds %d bytes", id, file, MaxRecords)
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
