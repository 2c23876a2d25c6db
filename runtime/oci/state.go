// Package oci reads what an OCI hook is given: the container state on
// stdin and the bundle's config.json.
//
// Everything read here comes from the container runtime and, through the
// bundle, indirectly from whoever created the container, so input is size
// bounded and validated before any field is used.
package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MaxStateSize bounds the hook state read from stdin.
const MaxStateSize = 1 << 20

// maxIDLen bounds the length of a container ID.
const maxIDLen = 1024

// jsonSpace is the set of insignificant whitespace bytes in JSON.
const jsonSpace = " \t\r\n"

// ReadState reads and validates the OCI state (specs.State) that a runtime
// passes to a hook on stdin.
//
// It rejects input larger than MaxStateSize, empty input, invalid JSON,
// anything that is not a single JSON object (including trailing data), a
// missing or empty ociVersion, id or bundle, an id that contains '/' or NUL,
// is "." or "..", or is longer than 1024 bytes, a bundle that is not an
// absolute path, and a negative pid. A pid of 0 is accepted (poststop hooks
// may see one); hooks that need the process use RequirePid.
func ReadState(r io.Reader) (*specs.State, error) {
	if r == nil {
		return nil, errors.New("reading state from stdin: nil reader")
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading state from stdin: %w", err)
	}
	if len(data) > MaxStateSize {
		return nil, fmt.Errorf("state on stdin exceeds %d bytes", MaxStateSize)
	}
	st, err := decodeState(data)
	if err != nil {
		return nil, err
	}
	if err := validateState(st); err != nil {
		return nil, err
	}
	return st, nil
}

// decodeState decodes exactly one JSON object from data.
func decodeState(data []byte) (*specs.State, error) {
	trimmed := bytes.TrimLeft(data, jsonSpace)
	if len(trimmed) == 0 {
		return nil, errors.New("state on stdin is empty")
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("state on stdin is not a JSON object (starts with %q)", trimmed[0])
	}
	if st, ok := fastState(trimmed); ok {
		return st, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var st specs.State
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("decoding state on stdin: %w", err)
	}
	off := dec.InputOffset()
	if rest := bytes.TrimLeft(trimmed[off:], jsonSpace); len(rest) > 0 {
		return nil, fmt.Errorf("state on stdin has trailing data after the JSON object (%d bytes, starting %q)",
			len(rest), preview(rest))
	}
	return &st, nil
}

// validateState checks the fields a hook relies on.
func validateState(st *specs.State) error {
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
		return fmt.Errorf(`state field "bundle" contains a NUL byte: %q`, preview([]byte(st.Bundle)))
	}
	if !filepath.IsAbs(st.Bundle) {
		return fmt.Errorf(`state field "bundle" is not an absolute path: %q`, preview([]byte(st.Bundle)))
	}
	if st.Pid < 0 {
		return fmt.Errorf(`state field "pid" is negative: %d`, st.Pid)
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
		return fmt.Errorf(`state field "id" is %d bytes long, limit is %d`, len(id), maxIDLen)
	case strings.IndexByte(id, '/') >= 0:
		return fmt.Errorf(`state field "id" contains '/': %q`, id)
	case strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf(`state field "id" contains a NUL byte: %q`, id)
	case id == "." || id == "..":
		return fmt.Errorf(`state field "id" must not be %q`, id)
	}
	return nil
}

// RequirePid returns an error unless st.Pid > 0. Hooks that act on the
// container process (createRuntime, createContainer, prestart, startContainer,
// poststart) need it; poststop may legitimately see pid 0.
func RequirePid(st *specs.State) error {
	if st == nil {
		return errors.New("state is nil, no pid")
	}
	if st.Pid <= 0 {
		return fmt.Errorf(`state field "pid" must be > 0, got %d (container %q)`, st.Pid, st.ID)
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
