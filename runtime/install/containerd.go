package install

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ocigate/ocigate/runtime/spechooks"
)

// containerd defaults.
const (
	DefaultContainerdConfig = "/etc/containerd/config.toml"
	DefaultSpecFile         = "/etc/containerd/ocigate-base-spec.json"
)

// criRuncTable is the CRI runc runtime's table per config version:
// containerd 1.6/1.7 use version 2, containerd 2.x version 3 (and 4 in
// later 2.x releases, with the same CRI runtime plugin).
var criRuncTable = map[int][]string{
	2: {"plugins", "io.containerd.grpc.v1.cri", "containerd", "runtimes", "runc"},
	3: {"plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc"},
	4: {"plugins", "io.containerd.cri.v1.runtime", "containerd", "runtimes", "runc"},
}

const (
	specKey        = "base_runtime_spec"
	runtimeTypeKey = "runtime_type"
	runcV2         = "io.containerd.runc.v2"
)

func containerdPaths(o Options) (config, spec string) {
	config, spec = o.Config, o.SpecFile
	if config == "" {
		config = DefaultContainerdConfig
	}
	if spec == "" {
		spec = DefaultSpecFile
	}
	return config, spec
}

// ContainerdSpec is the base runtime spec install writes: containerd's
// default spec with ocigate's hooks, as indented JSON. `ctr run --config`
// takes the same document once root.path and process.args are filled in.
func ContainerdSpec(o Options) ([]byte, error) {
	s := defaultSpec()
	h, err := spechooks.Hooks(o.hookOptions())
	if err != nil {
		return nil, err
	}
	s.Hooks = h
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode base runtime spec: %w", err)
	}
	return append(b, '\n'), nil
}

func containerdTargets(o Options) ([]target, error) {
	config, spec := containerdPaths(o)
	if !strings.HasPrefix(spec, "/") {
		return nil, fmt.Errorf("spec file %q is not absolute", spec)
	}
	specBytes, err := ContainerdSpec(o)
	if err != nil {
		return nil, err
	}
	return []target{
		{path: spec, kind: kindOwned, mode: 0o644, content: func([]byte) ([]byte, error) { return specBytes, nil }},
		{path: config, kind: kindContainerd, mode: 0o644, entry: spec,
			content: func(cur []byte) ([]byte, error) { return setBaseRuntimeSpec(cur, spec) }},
	}, nil
}

// criConfig is a parsed config.toml with the CRI runc table located.
type criConfig struct {
	doc      *tomlDoc
	version  int
	table    []string
	header   int  // line of the runc table header, -1 if none
	end      int  // line after the table's last line
	specLine int  // line of base_runtime_spec, -1 if none
	inferred bool // no version line: an empty file, taken as version 2
}

func (c *criConfig) literal() bool { return c.version >= 3 } // containerd 2.x writes 'literal' strings

func (c *criConfig) specValue() (string, error) {
	l := c.doc.lines[c.specLine]
	v, ok := tomlString(l.value)
	if !ok || l.multi {
		return "", fmt.Errorf("line %d: %s = %s is not a one-line string", c.specLine+1, specKey, l.value)
	}
	return v, nil
}

// readCRIConfig parses a config and finds the CRI runc table. It refuses
// what a line edit cannot change safely: config version 1, the table or
// its parents defined as inline tables or dotted keys, arrays of tables
// on the way, the table twice.
func readCRIConfig(b []byte) (*criConfig, error) {
	doc, err := parseTOML(b)
	if err != nil {
		return nil, fmt.Errorf("cannot read this TOML safely: %w", err)
	}
	c := &criConfig{doc: doc, header: -1, end: -1, specLine: -1}
	empty := true
	for _, l := range doc.lines {
		if l.kind == lineKey && len(l.table) == 0 && len(l.key) == 1 && l.key[0] == "version" {
			v, err := strconv.Atoi(l.value)
			if err != nil {
				return nil, fmt.Errorf("version = %s is not a number", l.value)
			}
			c.version = v
		}
		if l.kind != lineOther {
			empty = false
		}
	}
	switch {
	case c.version == 0 && empty:
		// A new or empty file: version 2 is read by containerd 1.6 and up
		// (2.x migrates it).
		c.version, c.inferred = 2, true
	case c.version == 0 || c.version == 1:
		return nil, fmt.Errorf("config version 1 (no \"version = 2\" line) is not supported: " +
			"migrate it first (containerd config migrate, or write containerd config default)")
	}
	table, ok := criRuncTable[c.version]
	if !ok {
		return nil, fmt.Errorf("config version %d is not supported (want 2 for containerd 1.x, 3 or 4 for 2.x)", c.version)
	}
	c.table = table
	for i, l := range doc.lines {
		switch l.kind {
		case lineTable, lineArrayTable:
			if c.header >= 0 && c.end < 0 {
				c.end = i
			}
			if l.kind == lineArrayTable && isPrefix(l.key, table) {
				return nil, fmt.Errorf("line %d: [[%s]] is an array of tables on the way to the runc table", i+1, strings.Join(l.key, "."))
			}
			if l.kind == lineTable && slices.Equal(l.key, table) {
				if c.header >= 0 {
					return nil, fmt.Errorf("line %d: the runc table is defined twice", i+1)
				}
				c.header = i
			}
		case lineKey:
			abs := append(slices.Clone(l.table), l.key...)
			inTable := isPrefix(table, l.table) // in the runc table or one of its sub-tables
			switch {
			case isPrefix(abs, table):
				return nil, fmt.Errorf("line %d: %s is set as a value (inline table?) on the way to the runc table; edit it by hand", i+1, strings.Join(abs, "."))
			case !inTable && isPrefix(table, abs):
				return nil, fmt.Errorf("line %d: %s sets the runc table with a dotted key; edit it by hand", i+1, strings.Join(abs, "."))
			case slices.Equal(l.table, table) && slices.Equal(l.key, []string{specKey}):
				if c.specLine >= 0 {
					return nil, fmt.Errorf("line %d: %s is set twice", i+1, specKey)
				}
				c.specLine = i
			}
		}
	}
	if c.header >= 0 && c.end < 0 {
		c.end = len(doc.lines)
	}
	return c, nil
}

// isPrefix reports whether p is a prefix of (or equal to) s.
func isPrefix(p, s []string) bool {
	return len(p) <= len(s) && slices.Equal(p, s[:len(p)])
}

// setBaseRuntimeSpec returns the config with the runc runtime's
// base_runtime_spec set to spec.
func setBaseRuntimeSpec(cur []byte, spec string) ([]byte, error) {
	c, err := readCRIConfig(cur)
	if err != nil {
		return nil, err
	}
	doc := c.doc
	value := quoteTOML(spec, c.literal())
	switch {
	case c.specLine >= 0:
		v, err := c.specValue()
		if err != nil {
			return nil, err
		}
		if v == spec {
			return cur, nil
		}
		if v != "" {
			return nil, fmt.Errorf("line %d: runc already has %s = %q; ocigate will not replace it: "+
				"add ocigate's hooks to that file (install containerd --ctr-spec prints them) or clear the setting", c.specLine+1, specKey, v)
		}
		l := &doc.lines[c.specLine]
		literal := strings.HasPrefix(l.value, "'")
		indent := l.text[:len(l.text)-len(strings.TrimLeft(l.text, " \t"))]
		rest := l.text[l.valueAt+len(l.value):] // a trailing comment
		l.text = indent + specKey + " = " + quoteTOML(spec, literal) + rest
	case c.header >= 0:
		indent := ""
		for _, l := range doc.lines[c.header+1 : c.end] {
			if l.kind == lineKey {
				indent = l.text[:len(l.text)-len(strings.TrimLeft(l.text, " \t"))]
				break
			}
		}
		if indent == "" {
			h := doc.lines[c.header].text
			indent = h[:len(h)-len(strings.TrimLeft(h, " \t"))] + "  "
		}
		line := tomlLine{text: indent + specKey + " = " + value}
		doc.lines = slices.Insert(doc.lines, c.header+1, line)
	default:
		if c.inferred {
			doc.lines = append(doc.lines, tomlLine{text: "version = 2"})
		}
		if last := doc.lines[len(doc.lines)-1]; strings.TrimSpace(last.text) != "" {
			doc.lines = append(doc.lines, tomlLine{})
		}
		doc.lines = append(doc.lines,
			tomlLine{text: "[" + tomlKey(c.table, c.literal()) + "]"},
			tomlLine{text: "  " + runtimeTypeKey + " = " + quoteTOML(runcV2, c.literal())},
			tomlLine{text: "  " + specKey + " = " + value})
		doc.finalEOL = true
	}
	return doc.bytes(), nil
}

// stripContainerd takes ocigate's base_runtime_spec out of a config:
// the line as it was in original, or none; a runc table install added
// goes when nothing else was put in it.
func stripContainerd(cur, original []byte, spec string) ([]byte, error) {
	c, err := readCRIConfig(cur)
	if err != nil {
		return nil, err
	}
	if c.specLine < 0 {
		return cur, nil
	}
	if v, err := c.specValue(); err != nil || v != spec {
		return cur, nil
	}
	var orig *criConfig
	if original != nil {
		if o, err := readCRIConfig(original); err == nil && slices.Equal(o.table, c.table) {
			orig = o
		}
	}
	doc := c.doc
	switch {
	case orig != nil && orig.specLine >= 0:
		doc.lines[c.specLine].text = orig.doc.lines[orig.specLine].text
	case orig != nil && orig.header >= 0:
		doc.lines = slices.Delete(doc.lines, c.specLine, c.specLine+1)
	case onlyOurs(doc.lines[c.header+1 : c.end]):
		start, end := c.header, c.end
		if start > 0 && strings.TrimSpace(doc.lines[start-1].text) == "" {
			start-- // the blank line install put before it
		}
		for end > c.header+1 && strings.TrimSpace(doc.lines[end-1].text) == "" {
			end-- // blank lines before what follows are not ours
		}
		doc.lines = slices.Delete(doc.lines, start, end)
	default:
		doc.lines = slices.Delete(doc.lines, c.specLine, c.specLine+1)
	}
	if len(doc.lines) == 0 {
		doc.finalEOL = false
	}
	return doc.bytes(), nil
}

// onlyOurs reports whether body is a runc table body with just what
// install adds to a new table.
func onlyOurs(body []tomlLine) bool {
	for _, l := range body {
		switch {
		case l.kind == lineOther && strings.TrimSpace(l.text) == "":
		case l.kind == lineKey && len(l.key) == 1 && l.key[0] == specKey:
		case l.kind == lineKey && len(l.key) == 1 && l.key[0] == runtimeTypeKey:
			if v, ok := tomlString(l.value); !ok || v != runcV2 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func containerdNotes(o Options, p *Plan) {
	config, _ := containerdPaths(o)
	for _, c := range p.Changes {
		if c.Path != config || c.New == nil {
			continue
		}
		if cc, err := readCRIConfig(c.New); err == nil {
			for _, l := range cc.doc.lines {
				if l.kind != lineKey {
					continue
				}
				switch {
				case len(l.table) == 0 && slices.Equal(l.key, []string{"disabled_plugins"}) &&
					(strings.Contains(l.value, `"cri"`) || strings.Contains(l.value, `'cri'`) || strings.Contains(l.value, "grpc.v1.cri")):
					p.Notes = append(p.Notes, "the CRI plugin is disabled in "+config+" (disabled_plugins): base_runtime_spec has no effect until it is enabled")
				case slices.Equal(l.key, []string{"default_runtime_name"}) && isPrefix(l.table, cc.table):
					if v, ok := tomlString(l.value); ok && v != "runc" {
						p.Notes = append(p.Notes, fmt.Sprintf("the default CRI runtime is %q: only containers of runtime runc get ocigate's hooks", v))
					}
				}
			}
		}
	}
	p.Notes = append(p.Notes,
		"restart containerd (systemctl restart containerd) for CRI to read base_runtime_spec; it applies to new containers",
		"ctr run does not use base_runtime_spec: run it with --runc-binary PATH/ocigate-runc, or pass the spec from "+
			"`ocigate-agentd install containerd --ctr-spec` (root.path and process.args filled in) with --config")
}
