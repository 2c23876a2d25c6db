package oci

import (
	"errors"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ocigate/ocigate/internal/errwrap"
)

// Annotations read by the hook.
const (
	// AnnotationFailurePolicy selects what the hook does when it cannot
	// apply policy: "open" lets the container start, "closed" (the
	// default) fails the hook.
	AnnotationFailurePolicy = "ocigate.io/failure-policy"
	// AnnotationProfile names the policy profile for the container.
	AnnotationProfile = "ocigate.io/profile"
)

// Failure policy values.
const (
	failurePolicyOpen   = "open"
	failurePolicyClosed = "closed"
)

// Container is what the hook learns about a container.
type Container struct {
	ID          string
	Bundle      string
	Pid         int
	Status      string
	Annotations map[string]string // spec annotations overlaid by state annotations (state wins)
	CgroupsPath string            // spec.Linux.CgroupsPath ("" if none)
	Hostname    string
	Args        []string // spec.Process.Args if present
}

// LoadContainer reads the hook state from r (see ReadState) and the bundle's
// config.json (see ReadConfigFile), and merges them into a Container.
//
// If the state is invalid it returns nil and the error. If only the bundle
// config cannot be read, it returns the Container built from the state alone
// (annotations from the state, no spec fields) together with the config
// error wrapped with the bundle path, so the caller can still consult the
// failure policy and decide. Use errors.Is(err, fs.ErrNotExist) to detect a
// missing config.json.
func LoadContainer(r io.Reader) (*Container, error) {
	st, err := ReadState(r)
	if err != nil {
		return nil, err
	}
	c := &Container{
		ID:          st.ID,
		Bundle:      st.Bundle,
		Pid:         st.Pid,
		Status:      st.Status,
		Annotations: make(map[string]string, len(st.Annotations)),
	}
	spec, cfgErr := readBundleView(st.Bundle)
	if cfgErr == nil {
		maps.Copy(c.Annotations, spec.Annotations)
		if spec.Linux != nil {
			c.CgroupsPath = spec.Linux.CgroupsPath
		}
		c.Hostname = spec.Hostname
		if spec.Process != nil {
			c.Args = slices.Clone(spec.Process.Args)
		}
	}
	// State annotations are applied last so they win over the spec's.
	maps.Copy(c.Annotations, st.Annotations)
	if cfgErr != nil {
		return c, errwrap.Wrap("container "+strconv.Quote(c.ID)+": bundle "+c.Bundle, cfgErr)
	}
	return c, nil
}

// FailOpen reports the container's failure policy from the
// AnnotationFailurePolicy annotation: "open" → true, "closed" or absent →
// false. Any other value, including an empty one, is an error naming the
// annotation and the value; callers should then fail closed.
func (c *Container) FailOpen() (open bool, err error) {
	if c == nil {
		return false, errors.New("failure policy: container is nil")
	}
	v, ok := c.Annotations[AnnotationFailurePolicy]
	if !ok {
		return false, nil
	}
	switch v {
	case failurePolicyOpen:
		return true, nil
	case failurePolicyClosed:
		return false, nil
	}
	return false, errors.New("annotation " + strconv.Quote(AnnotationFailurePolicy) + " has invalid value " +
		strconv.Quote(v) + " (want " + strconv.Quote(failurePolicyOpen) + " or " + strconv.Quote(failurePolicyClosed) + ")")
}

// RuntimeFromAnnotations names the runtime that made a container from
// the annotations runtimes set — podman's io.container.manager, CRI-O's
// and containerd's CRI prefixes — and returns the annotation it read; ""
// when none says. A container's spec can set any of them: the name is a
// claim unless something else confirms it.
func RuntimeFromAnnotations(annotations map[string]string) (name, key string) {
	if annotations["io.container.manager"] == "libpod" {
		return "podman", "io.container.manager"
	}
	for _, r := range []struct{ prefix, name string }{{"io.kubernetes.cri-o.", "cri-o"}, {"io.kubernetes.cri.", "containerd"}} {
		var keys []string
		for k := range annotations {
			if strings.HasPrefix(k, r.prefix) {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			return r.name, slices.Min(keys)
		}
	}
	return "", ""
}
