// Package oci reads what an OCI hook is given: the container state on
// stdin and the bundle's config.json.
//
// Everything read here comes from the container runtime and, through the
// bundle, indirectly from whoever created the container, so input is size
// bounded and validated before any field is used.
package oci

import (
	"errors"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ocigate/ocigate/internal/errwrap"
)

// MaxStateSize bounds the hook state read from stdin.
const MaxStateSize = 1 << 20

// maxIDLen bounds the length of a container ID.
const maxIDLen = 1024

// jsonSpace is the set of insignificant whitespace bytes in JSON.
const jsonSpace = " \t\r\n"

// State is the state of a container that a runtime passes to a hook on
// stdin (the runtime spec's state; its json tags are specs.State's).
// It is its own type, not specs.State, so that the hook links nothing
// of runtime-spec.
type State struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Status      string            `json:"status"`
	Pid         int               `json:"pid,omitempty"`
	Bundle      string            `json:"bundle"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ReadState reads and validates the OCI state that a runtime passes to
// a hook on stdin.
//
// It rejects input larger than MaxStateSize, empty input, invalid JSON,
// anything that is not a single JSON object (including trailing data), a
// missing or empty ociVersion, id or bundle, an id that contains '/' or NUL,
// is "." or "..", or is longer than 1024 bytes, a bundle that is not an
// absolute path, and a negative pid. A pid of 0 is accepted (poststop hooks
// may see one); hooks that need the process use RequirePid.
func ReadState(r io.Reader) (*State, error) {
	if r == nil {
		return nil, errors.New("reading state from stdin: nil reader")
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxStateSize+1))
	if err != nil {
		return nil, errwrap.Wrap("reading state from stdin", err)
	}
	if len(data) > MaxStateSize {
		return nil, errors.New("state on stdin exceeds " + strconv.Itoa(MaxStateSize) + " bytes")
	}
	st, err := decodeObject("state on stdin", data, parseState)
	if err != nil {
		return nil, err
	}
	if err := validateState(st); err != nil {
		return nil, err
	}
	return st, nil
}

// validateState checks the fields a hook relies on.
func validateState(st *State) error {
	if st.Version == "" {
		return errors.New(`state field "ociVersion" is missing or empty`)
	}
	if err := validateID(st.ID); err != nil {
		return err
	}
	if st.Bundle == "" {
		return errors.New(`state field "bundle" is missing or empty`)
	}
	if strings.IndexByte(st.Bundle, 0) >= 0 {
		return errors.New(`state field "bundle" contains a NUL byte: ` + strconv.Quote(preview([]byte(st.Bundle))))
	}
	if !filepath.IsAbs(st.Bundle) {
		return errors.New(`state field "bundle" is not an absolute path: ` + strconv.Quote(preview([]byte(st.Bundle))))
	}
	if st.Pid < 0 {
		return errors.New(`state field "pid" is negative: ` + strconv.Itoa(st.Pid))
	}
	return nil
}

// validateID checks a container ID. IDs end up in file paths and log
// lines, so path separators, NUL and the dot directories are refused.
func validateID(id string) error {
	switch {
	case id == "":
		return errors.New(`state field "id" is missing or empty`)
	case len(id) > maxIDLen:
		return errors.New(`state field "id" is ` + strconv.Itoa(len(id)) + ` bytes long, limit is ` + strconv.Itoa(maxIDLen))
	case strings.IndexByte(id, '/') >= 0:
		return errors.New(`state field "id" contains '/': ` + strconv.Quote(id))
	case strings.IndexByte(id, 0) >= 0:
		return errors.New(`state field "id" contains a NUL byte: ` + strconv.Quote(id))
	case id == "." || id == "..":
		return errors.New(`state field "id" must not be ` + strconv.Quote(id))
	}
	return nil
}

// RequirePid returns an error unless st.Pid > 0. Hooks that act on the
// container process (createRuntime, createContainer, prestart, startContainer,
// poststart) need it; poststop may legitimately see pid 0.
func RequirePid(st *State) error {
	if st == nil {
		return errors.New("state is nil, no pid")
	}
	if st.Pid <= 0 {
		return errors.New(`state field "pid" must be > 0, got ` + strconv.Itoa(st.Pid) + ` (container ` + strconv.Quote(st.ID) + `)`)
	}
	return nil
}

// preview shortens b for inclusion in an error message.
func preview(b []byte) string {
	const n = 64
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
