package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocigate/ocigate/internal/sysread"
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
	var spec specs.Spec
	if err := readBundle(bundle, &spec, func() string { return spec.Version }); err != nil {
		return nil, err
	}
	return &spec, nil
}

// bundleView is the part of config.json that LoadContainer uses.
// Decoding only these fields keeps the hook's first (cold) decode cheap:
// encoding/json builds its decoders for every type of specs.Spec on
// first use, which costs a freshly started hook most of a millisecond.
type bundleView struct {
	Version     string            `json:"ociVersion"`
	Hostname    string            `json:"hostname,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Process     *struct {
		Args []string `json:"args,omitempty"`
	} `json:"process,omitempty"`
	Linux *struct {
		CgroupsPath string `json:"cgroupsPath,omitempty"`
	} `json:"linux,omitempty"`
}

// readBundleView reads <bundle>/config.json as ReadBundleConfig does,
// with the same checks, into a bundleView.
func readBundleView(bundle string) (*bundleView, error) {
	var v bundleView
	if err := readBundle(bundle, &v, func() string { return v.Version }); err != nil {
		return nil, err
	}
	return &v, nil
}

// readBundle reads <bundle>/config.json, with ReadBundleConfig's checks,
// into v; version returns the decoded ociVersion.
func readBundle(bundle string, v any, version func() string) error {
	if bundle == "" {
		return errors.New("reading bundle config: bundle path is empty")
	}
	path := filepath.Join(bundle, configName)

	// sysread.ReadRegular's open does not hang on a FIFO, and it checks
	// the type on the open descriptor: no window between check and read.
	data, err := sysread.ReadRegular(path, MaxConfigSize)
	var notRegular *sysread.NotRegularError
	var tooLarge *sysread.TooLargeError
	if errors.As(err, &notRegular) || errors.As(err, &tooLarge) {
		return fmt.Errorf("bundle config %w", err)
	}
	if err != nil {
		return fmt.Errorf("reading bundle config: %w", err)
	}
	if err := decodeConfig(path, data, v); err != nil {
		return err
	}
	if version() == "" {
		return fmt.Errorf(`bundle config %s: field "ociVersion" is missing or empty`, path)
	}
	return nil
}

// decodeConfig decodes the config.json contents read from path into v.
func decodeConfig(path string, data []byte, v any) error {
	trimmed := bytes.TrimLeft(data, jsonSpace)
	if len(trimmed) == 0 {
		return fmt.Errorf("bundle config %s is empty", path)
	}
	if trimmed[0] != '{' {
		return fmt.Errorf("bundle config %s is not a JSON object (starts with %q)", path, trimmed[0])
	}
	if bv, ok := v.(*bundleView); ok {
		if fast, ok := fastBundleView(trimmed); ok {
			*bv = *fast
			return nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding bundle config %s: %w", path, err)
	}
	if rest := bytes.TrimLeft(trimmed[dec.InputOffset():], jsonSpace); len(rest) > 0 {
		return fmt.Errorf("bundle config %s has trailing data after the JSON object (%d bytes, starting %q)",
			path, len(rest), preview(rest))
	}
	return nil
}
