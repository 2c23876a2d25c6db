package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MaxConfigSize bounds the bundle's config.json.
const MaxConfigSize = 16 << 20

// configName is the name of the runtime configuration inside a bundle.
const configName = "config.json"

// ReadBundleConfig reads and decodes <bundle>/config.json.
//
// The file must exist, be a regular file (symlinks are followed), hold at
// most MaxConfigSize bytes and contain a single JSON object with a non-empty
// ociVersion. Open errors are wrapped, so errors.Is(err, fs.ErrNotExist)
// reports a missing config.json.
func ReadBundleConfig(bundle string) (*specs.Spec, error) {
	if bundle == "" {
		return nil, errors.New("reading bundle config: bundle path is empty")
	}
	path := filepath.Join(bundle, configName)

	// O_NONBLOCK keeps the open from hanging if config.json is a FIFO; it
	// has no effect on regular files. The type is checked on the open fd,
	// so there is no window between the check and the read.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("reading bundle config: %w", err)
	}
	defer f.Close()

	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading bundle config: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("bundle config %s is not a regular file (mode %s)", path, fi.Mode().Type())
	}
	if fi.Size() > MaxConfigSize {
		return nil, fmt.Errorf("bundle config %s exceeds %d bytes (size %d)", path, MaxConfigSize, fi.Size())
	}

	// The size from stat is only a hint: the file may grow, or report 0.
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading bundle config %s: %w", path, err)
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("bundle config %s exceeds %d bytes", path, MaxConfigSize)
	}
	return decodeConfig(path, data)
}

// decodeConfig decodes the config.json contents read from path.
func decodeConfig(path string, data []byte) (*specs.Spec, error) {
	trimmed := bytes.TrimLeft(data, jsonSpace)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("bundle config %s is empty", path)
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("bundle config %s is not a JSON object (starts with %q)", path, trimmed[0])
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var spec specs.Spec
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("decoding bundle config %s: %w", path, err)
	}
	if rest := bytes.TrimLeft(trimmed[dec.InputOffset():], jsonSpace); len(rest) > 0 {
		return nil, fmt.Errorf("bundle config %s has trailing data after the JSON object (%d bytes, starting %q)",
			path, len(rest), preview(rest))
	}
	if spec.Version == "" {
		return nil, fmt.Errorf(`bundle config %s: field "ociVersion" is missing or empty`, path)
	}
	return &spec, nil
}
