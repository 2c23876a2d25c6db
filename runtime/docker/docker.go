// Package docker reads what dockerd records of a container in its data
// root: the image it was created from (the reference as given, and the
// image's ID and repository digests) and its name. No docker command is
// run: dockerd keeps each container's configuration in
// DATAROOT/containers/ID/config.v2.json and its image names in
// DATAROOT/image/DRIVER/repositories.json.
package docker

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ocigate/ocigate/internal/boundedfile"
)

// DefaultDataRoot is dockerd's default --data-root.
const DefaultDataRoot = "/var/lib/docker"

// Namespace is the containerd namespace of dockerd's containers: a bundle
// STATE/io.containerd.runtime.v2.task/moby/ID is a Docker container's.
const Namespace = "moby"

// maxFile bounds the files read.
const maxFile = 16 << 20

// Meta is what dockerd recorded of a container.
type Meta struct {
	ID      string
	Name    string   // without docker's leading "/"
	Image   string   // the reference it was created from, as given (docker run IMAGE)
	ImageID string   // "sha256:…", the image config's digest
	Digests []string // ImageID, then the repository digests of the image
}

// config is the part of config.v2.json read here.
type config struct {
	ID     string `json:"ID"`
	Image  string `json:"Image"`
	Name   string `json:"Name"`
	Driver string `json:"Driver"`
	Config struct {
		Image string `json:"Image"`
	} `json:"Config"`
}

// Lookup returns dockerd's record of container id under dataRoot.
func Lookup(dataRoot, id string) (Meta, error) {
	if id == "" || strings.ContainsAny(id, "/.") {
		return Meta{}, fmt.Errorf("docker container %q: not a container ID", id)
	}
	file := filepath.Join(dataRoot, "containers", id, "config.v2.json")
	data, err := boundedfile.Read(file, maxFile)
	if err != nil {
		return Meta{}, fmt.Errorf("docker container %s: %w", id, err)
	}
	var c config
	if err := json.Unmarshal(data, &c); err != nil {
		return Meta{}, fmt.Errorf("docker container %s: decoding %s: %w", id, file, err)
	}
	if c.ID != id {
		return Meta{}, fmt.Errorf("docker container %s: %s is container %q's", id, file, c.ID)
	}
	m := Meta{ID: id, Name: strings.TrimPrefix(c.Name, "/"), Image: c.Config.Image, ImageID: c.Image}
	if m.ImageID == "" {
		return m, nil
	}
	m.Digests = []string{m.ImageID}
	if c.Driver == "" || strings.ContainsAny(c.Driver, "/.") {
		return m, nil
	}
	// Repository digests are a bonus: without them the ID binds the
	// content all the same.
	if digests, err := repoDigests(filepath.Join(dataRoot, "image", c.Driver, "repositories.json"), m.ImageID); err == nil {
		m.Digests = append(m.Digests, digests...)
	}
	return m, nil
}

// repoDigests returns the digests of the NAME@sha256:… references that
// repositories.json maps to imageID.
func repoDigests(file, imageID string) ([]string, error) {
	data, err := boundedfile.Read(file, maxFile)
	if err != nil {
		return nil, err
	}
	var repos struct {
		Repositories map[string]map[string]string `json:"Repositories"`
	}
	if err := json.Unmarshal(data, &repos); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", file, err)
	}
	var out []string
	for _, refs := range repos.Repositories {
		for ref, id := range refs {
			if _, digest, ok := strings.Cut(ref, "@"); ok && id == imageID && !slices.Contains(out, digest) {
				out = append(out, digest)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
