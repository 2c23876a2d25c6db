package agentconfig

import (
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultFile is the configuration file the Debian package installs and
// its unit passes to run --config.
const DefaultFile = "/etc/ocigate/agentd.yaml"

// Load returns the Config of `run --config path` with flags: Default,
// then the file's keys (run's flag names: `events-file: /var/log/x`),
// then flags (name → value as given on the command line), which win.
// path "" reads no file. The result is validated.
func Load(path string, flags map[string]string) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.AddFlags(fs)
	if path != "" {
		if err := applyFile(fs, path); err != nil {
			return Config{}, err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(flags)) {
		if err := fs.Set(name, flags[name]); err != nil {
			return Config{}, fmt.Errorf("--%s: %w", name, err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// applyFile sets the flags of fs that the YAML file at path names.
func applyFile(fs *flag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		if key == "config" || fs.Lookup(key) == nil {
			return fmt.Errorf("config %s: unknown key %q (the keys are run's flag names)", path, key)
		}
		if err := fs.Set(key, yamlValue(doc[key])); err != nil {
			return fmt.Errorf("config %s: %s: %w", path, key, err)
		}
	}
	return nil
}

// yamlValue returns a YAML value as a flag's text: a list comma-joined,
// null as "".
func yamlValue(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = yamlValue(e)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}
