// Package ocispec reads a bundle's whole runtime spec, for the agent.
// It is not runtime/oci because the hook imports runtime/oci: decoding
// the whole spec takes encoding/json and runtime-spec, and importing
// them would link their package initialization (with reflect and fmt)
// into the hook, whatever it calls.
package ocispec

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocigate/ocigate/runtime/oci"
)

// ReadBundleConfig reads and decodes <bundle>/config.json.
//
// The file must exist, be a regular file (symlinks are followed), hold at
// most oci.MaxConfigSize bytes and contain a single JSON object with a
// non-empty ociVersion. Open errors are wrapped, so errors.Is(err,
// fs.ErrNotExist) reports a missing config.json.
func ReadBundleConfig(bundle string) (*specs.Spec, error) {
	path, data, err := oci.ReadConfigFile(bundle)
	if err != nil {
		return nil, err
	}
	if err := oci.CheckObject("bundle config "+path, data); err != nil {
		return nil, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("decoding bundle config %s: %w", path, err)
	}
	if spec.Version == "" {
		return nil, oci.MissingVersion(path)
	}
	return &spec, nil
}
