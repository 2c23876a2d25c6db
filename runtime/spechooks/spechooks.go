// Package spechooks puts ocigate's hook into runtime specs (config.json):
// the createRuntime and poststop entries that register and unregister a
// container, for runtimes that take hooks from the spec itself (runc,
// containerd's base_runtime_spec, the Docker runtime wrapper).
package spechooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocigate/ocigate/runtime/hooksd"
)

// Hooks returns ocigate's hooks as spec entries, one per stage.
func Hooks(o hooksd.Options) (*specs.Hooks, error) {
	if !filepath.IsAbs(o.HookPath) {
		return nil, fmt.Errorf("hook path %q is not absolute", o.HookPath)
	}
	h := &specs.Hooks{}
	for _, stage := range o.Stages() {
		e := specs.Hook{Path: o.HookPath, Args: o.Args(stage)}
		if o.Timeout > 0 {
			t := o.Timeout
			e.Timeout = &t
		}
		switch stage {
		case "createRuntime":
			h.CreateRuntime = append(h.CreateRuntime, e)
		case "poststop":
			h.Poststop = append(h.Poststop, e)
		}
	}
	return h, nil
}

// isOcigate reports whether h is ocigate's hook for stage: the same
// executable, and the stage as the last argument (the hook's own syntax).
func isOcigate(h specs.Hook, o hooksd.Options, stage string) bool {
	return filepath.Clean(h.Path) == filepath.Clean(o.HookPath) && len(h.Args) > 0 && h.Args[len(h.Args)-1] == stage
}

// Add returns config (a config.json document) with ocigate's hooks
// appended to the stages that lack them, and whether it changed anything.
// Every other member, including ones the runtime-spec types do not know,
// is kept as it was; the result is compact JSON with sorted keys. A stage
// that already has ocigate's hook is left alone, so Add is idempotent.
func Add(config []byte, o hooksd.Options) ([]byte, bool, error) {
	want, err := Hooks(o)
	if err != nil {
		return nil, false, err
	}
	var doc map[string]json.RawMessage
	if err := decodeObject(config, &doc); err != nil {
		return nil, false, fmt.Errorf("config.json: %w", err)
	}
	if doc == nil {
		return nil, false, fmt.Errorf("config.json: top level is null, want an object")
	}
	hooks := map[string]json.RawMessage{}
	if raw, ok := doc["hooks"]; ok && !isNull(raw) {
		if err := decodeObject(raw, &hooks); err != nil {
			return nil, false, fmt.Errorf("config.json: hooks: %w", err)
		}
		if hooks == nil {
			hooks = map[string]json.RawMessage{}
		}
	}
	changed := false
	entries := map[string]specs.Hook{"createRuntime": want.CreateRuntime[0]}
	if len(want.Poststop) > 0 {
		entries["poststop"] = want.Poststop[0]
	}
	for stage, entry := range entries {
		var list []json.RawMessage
		if raw, ok := hooks[stage]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, false, fmt.Errorf("config.json: hooks.%s is not a list: %w", stage, err)
			}
		}
		present := false
		for i, item := range list {
			var h specs.Hook
			if err := json.Unmarshal(item, &h); err != nil {
				return nil, false, fmt.Errorf("config.json: hooks.%s[%d]: %w", stage, i, err)
			}
			if isOcigate(h, o, stage) {
				present = true
				break
			}
		}
		if present {
			continue
		}
		b, err := json.Marshal(entry)
		if err != nil {
			return nil, false, fmt.Errorf("encode %s hook: %w", stage, err)
		}
		list = append(list, b)
		if hooks[stage], err = json.Marshal(list); err != nil {
			return nil, false, fmt.Errorf("encode hooks.%s: %w", stage, err)
		}
		changed = true
	}
	if !changed {
		return config, false, nil
	}
	if doc["hooks"], err = json.Marshal(hooks); err != nil {
		return nil, false, fmt.Errorf("encode hooks: %w", err)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, false, fmt.Errorf("encode config.json: %w", err)
	}
	return out, true, nil
}

// decodeObject decodes one JSON object (or null) with nothing after it.
func decodeObject(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		return fmt.Errorf("%d bytes of trailing data after the JSON value", len(rest))
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
