package oci

import (
	"errors"
	"path/filepath"

	"github.com/ocigate/ocigate/internal/errwrap"
	"github.com/ocigate/ocigate/internal/sysread"
)

// MaxConfigSize bounds the bundle's config.json.
const MaxConfigSize = 16 << 20

// configName is the name of the runtime configuration inside a bundle.
const configName = "config.json"

// bundleView is the part of config.json that LoadContainer uses (its
// json tags are runtime-spec's, for the tests that compare it with
// encoding/json's decoding). The full spec is ocispec.ReadBundleConfig's:
// the agent's, not the hook's, since importing encoding/json or
// runtime-spec here would link them (their package initialization)
// into the hook.
type bundleView struct {
	Version     string            `json:"ociVersion"`
	Hostname    string            `json:"hostname,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Process     *viewProcess      `json:"process,omitempty"`
	Linux       *viewLinux        `json:"linux,omitempty"`
}

// viewProcess is the part of the spec's process that LoadContainer uses.
type viewProcess struct {
	Args []string `json:"args,omitempty"`
}

// viewLinux is the part of the spec's linux that LoadContainer uses.
type viewLinux struct {
	CgroupsPath string `json:"cgroupsPath,omitempty"`
}

// readBundleView reads <bundle>/config.json (ReadConfigFile) into a
// bundleView: a single JSON object with a non-empty ociVersion.
func readBundleView(bundle string) (*bundleView, error) {
	path, data, err := ReadConfigFile(bundle)
	if err != nil {
		return nil, err
	}
	v, err := decodeObject("bundle config "+path, data, parseBundleView)
	if err != nil {
		return nil, err
	}
	if v.Version == "" {
		return nil, MissingVersion(path)
	}
	return v, nil
}

// MissingVersion is the error of a config.json at path without an
// ociVersion.
func MissingVersion(path string) error {
	return errors.New("bundle config " + path + `: field "ociVersion" is missing or empty`)
}

// ReadConfigFile reads <bundle>/config.json and returns its path and
// contents. The file must exist, be a regular file (symlinks are
// followed) and hold at most MaxConfigSize bytes. Open errors are
// wrapped, so errors.Is(err, fs.ErrNotExist) reports a missing
// config.json.
func ReadConfigFile(bundle string) (path string, data []byte, err error) {
	if bundle == "" {
		return "", nil, errors.New("reading bundle config: bundle path is empty")
	}
	path = filepath.Join(bundle, configName)

	// sysread.ReadRegular's open does not hang on a FIFO, and it checks
	// the type on the open descriptor: no window between check and read.
	data, err = sysread.ReadRegular(path, MaxConfigSize)
	var notRegular *sysread.NotRegularError
	var tooLarge *sysread.TooLargeError
	if errors.As(err, &notRegular) || errors.As(err, &tooLarge) {
		return "", nil, errwrap.Message("bundle config "+err.Error(), err)
	}
	if err != nil {
		return "", nil, errwrap.Wrap("reading bundle config", err)
	}
	return path, data, nil
}
