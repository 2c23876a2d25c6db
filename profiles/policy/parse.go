package policy

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Limits on what the loader accepts.
const (
	MaxFileSize    = 1 << 20 // bytes per file
	MaxDocuments   = 64      // YAML documents per file
	MaxListLen     = 10000   // items in any list
	MaxAddrListLen = 100000  // values of one SAddr/DAddr/NotSAddr/NotDAddr match
	maxErrors      = 1000    // errors reported per file before giving up
	maxMsgLen      = 512     // bytes of an error message, quoted values included
)

// Document is one YAML document of a policy file: exactly one of Policy
// and Profile is set.
type Document struct {
	Policy  *TracingPolicy
	Profile *WorkloadProfile
}

// ParseFile reads and parses one file; see Parse.
func ParseFile(path string) ([]Document, error) {
	data, e := readFile(path)
	if e != nil {
		return nil, Errors{e}
	}
	return Parse(path, data)
}

// Parse parses and validates every YAML document in data; name is the file
// name used in positions and errors. On any problem it returns no documents
// and an Errors listing every problem found. Names must be unique within
// data; references from profiles to policies are only checked by LoadDir.
func Parse(name string, data []byte) ([]Document, error) {
	r := parse(name, data)
	errs := append(r.errs, crossCheck([]*result{r}, false)...)
	if len(errs) > 0 {
		return nil, errs.err()
	}
	return r.docs, nil
}

func readFile(path string) ([]byte, *Error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	return data, nil
}

// result is what parsing one file yields, including what the checks
// across documents and files need.
type result struct {
	docs     []Document
	errs     Errors
	names    []site // policy and profile names, inline policies included
	refs     []site // profile references to policies by name
	defaults []site // profiles with default: true
	notes    []Note // what loads but differs from Tetragon, or is not carried out
}

// site is a name (or flag) and where it was written.
type site struct {
	kind  string // "TracingPolicy" or "WorkloadProfile"
	name  string
	pos   Pos
	field string
}

// parser holds the state of parsing one file.
type parser struct {
	file string
	res  *result
	full bool // maxErrors reached
}

func (p *parser) errorf(line int, field, format string, args ...any) {
	if len(p.res.errs) >= maxErrors {
		if !p.full {
			p.full = true
			p.res.errs = append(p.res.errs, &Error{File: p.file, Line: line,
				Msg: fmt.Sprintf("too many errors (%d), giving up", maxErrors)})
		}
		return
	}
	msg := fmt.Sprintf(format, args...)
	if len(msg) > maxMsgLen {
		msg = strings.ToValidUTF8(msg[:maxMsgLen], "") + "..."
	}
	p.res.errs = append(p.res.errs, &Error{File: p.file, Line: line, Field: field, Msg: msg})
}

func (p *parser) pos(n *yaml.Node) Pos { return Pos{File: p.file, Line: n.Line} }

func parse(name string, data []byte) *result {
	p := &parser{file: name, res: &result{}}
	if len(data) > MaxFileSize {
		p.errorf(1, "", "file is larger than %d bytes", MaxFileSize)
		return p.res
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	seen, nonEmpty := 0, 0
	for !p.full {
		var doc yaml.Node
		err := decode(dec, &doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			p.yamlError(err)
			break
		}
		if seen++; seen > MaxDocuments {
			p.errorf(doc.Line, "", "more than %d YAML documents in one file", MaxDocuments)
			break
		}
		if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" && doc.Content[0].Kind == yaml.ScalarNode {
			continue // an empty document, e.g. after a trailing "---"
		}
		nonEmpty++
		p.document(doc.Content[0])
	}
	if nonEmpty == 0 && len(p.res.errs) == 0 {
		p.errorf(1, "", "no YAML document in file")
	}
	return p.res
}

// decode runs the YAML decoder, turning a panic inside it into an error.
func decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: internal error: %v", r)
		}
	}()
	return dec.Decode(n)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) yamlError(err error) {
	msg := err.Error()
	line := 1
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		if l, err := strconv.Atoi(m[1]); err == nil {
			line, msg = l, m[2]
		}
	}
	p.errorf(line, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// document dispatches one document on its apiVersion and kind.
func (p *parser) document(root *yaml.Node) {
	if !p.plainTree(root, nil) {
		return
	}
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "", "a document must be a mapping with apiVersion, kind, metadata and spec, not %s", kindName(root))
		return
	}
	f, _ := p.mapping(root, "", []string{"apiVersion", "kind", "metadata", "spec"}, nil)
	kind, okKind := p.str(f.get("kind"), "kind")
	api, okAPI := p.str(f.get("apiVersion"), "apiVersion")
	if f.get("kind") == nil {
		p.errorf(root.Line, "kind", "required (TracingPolicy, TracingPolicyNamespaced or WorkloadProfile)")
	}
	if f.get("apiVersion") == nil {
		p.errorf(root.Line, "apiVersion", "required (cilium.io/v1alpha1 or ocigate.io/v1alpha1)")
	}
	if !okKind || !okAPI {
		return
	}
	switch kind {
	case "TracingPolicy", "TracingPolicyNamespaced":
		if api != "cilium.io/v1alpha1" {
			p.errorf(f.get("apiVersion").Line, "apiVersion", "%q is not supported for kind %s (supported: cilium.io/v1alpha1)", api, kind)
			return
		}
		tp := p.tracingPolicy(f, "")
		tp.Namespaced = kind == "TracingPolicyNamespaced"
		p.res.docs = append(p.res.docs, Document{Policy: tp})
	case "WorkloadProfile":
		if api != "ocigate.io/v1alpha1" {
			p.errorf(f.get("apiVersion").Line, "apiVersion", "%q is not supported for kind %s (supported: ocigate.io/v1alpha1)", api, kind)
			return
		}
		wp := p.workloadProfile(f)
		p.res.docs = append(p.res.docs, Document{Profile: wp})
	default:
		p.errorf(f.get("kind").Line, "kind", "%q is not supported (supported: TracingPolicy, TracingPolicyNamespaced of cilium.io/v1alpha1; WorkloadProfile of ocigate.io/v1alpha1)", kind)
	}
}

// plainTree reports anchors, aliases and tags other than the core ones:
// a policy is plain data. Aliases are refused outright, so no document can
// expand into more than its own text (no "billion laughs").
func (p *parser) plainTree(n *yaml.Node, at *step) bool {
	ok := true
	if n.Anchor != "" {
		p.errorf(n.Line, at.String(), "YAML anchors (&%s) are not supported", n.Anchor)
		ok = false
	}
	switch n.Kind {
	case yaml.AliasNode:
		p.errorf(n.Line, at.String(), "YAML aliases (*%s) are not supported", n.Value)
		return false
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str", "!!int", "!!bool", "!!null", "!!float":
		default:
			p.errorf(n.Line, at.String(), "YAML tag %s is not supported", n.Tag)
			ok = false
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			sub := at
			if k.Kind == yaml.ScalarNode {
				sub = &step{parent: at, key: k.Value}
			}
			ok = p.plainTree(k, at) && ok
			ok = p.plainTree(n.Content[i+1], sub) && ok
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			ok = p.plainTree(c, &step{parent: at, index: i, isIndex: true}) && ok
		}
	}
	return ok
}

// step is one step of a field path, built into a string only for errors
// (documents may nest thousands of levels deep).
type step struct {
	parent  *step
	key     string
	index   int
	isIndex bool
}

// String renders the path, shortened to its last 64 steps.
func (s *step) String() string {
	var steps []*step
	for ; s != nil && len(steps) < 64; s = s.parent {
		steps = append(steps, s)
	}
	var b []byte
	if s != nil {
		b = append(b, "..."...)
	}
	for i := len(steps) - 1; i >= 0; i-- {
		switch st := steps[i]; {
		case st.isIndex:
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(st.index), 10)
			b = append(b, ']')
		case len(b) > 0:
			b = append(append(b, '.'), st.key...)
		default:
			b = append(b, st.key...)
		}
	}
	return string(b)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// fields is a checked mapping: known keys only, each at most once.
type fields struct {
	n    *yaml.Node
	at   int // line of the key holding the mapping, else of the mapping
	keys map[string]*yaml.Node
	vals map[string]*yaml.Node
}

// get returns the value of key, or nil when it is absent or null.
func (f fields) get(key string) *yaml.Node {
	v := f.vals[key]
	if v == nil || v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
		return nil
	}
	return v
}

// line is the line of key, or of the mapping when key is absent.
func (f fields) line(key string) int {
	if k := f.keys[key]; k != nil {
		return k.Line
	}
	return f.at
}

// under returns f with missing keys reported at line at: the line of the
// key whose value the mapping is.
func (f fields) under(at int) fields {
	if at > 0 {
		f.at = at
	}
	return f
}

// mapping checks that n is a mapping whose keys are strings in known, each
// given once. Keys in unsupported are fields of Tetragon that ocigate does
// not implement; the value is the reason given. Bad keys are reported and
// left out; the result is false only when n is not a mapping at all.
func (p *parser) mapping(n *yaml.Node, path string, known []string, unsupported map[string]string) (fields, bool) {
	f := fields{n: n, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	if n == nil {
		return f, false
	}
	f.at = n.Line
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, path, "must be a mapping, not %s", kindName(n))
		return f, false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			p.errorf(k.Line, path, "keys must be strings, not %s", kindName(k))
			continue
		}
		field := join(path, k.Value)
		if prev := f.keys[k.Value]; prev != nil {
			p.errorf(k.Line, field, "duplicate field (first at line %d)", prev.Line)
			continue
		}
		if reason, isUnsupported := unsupported[k.Value]; isUnsupported {
			p.errorf(k.Line, field, "not supported by ocigate%s", reason)
			continue
		}
		if !slices.Contains(known, k.Value) {
			p.errorf(k.Line, field, "unknown field (known: %s)", strings.Join(known, ", "))
			continue
		}
		f.keys[k.Value], f.vals[k.Value] = k, v
	}
	return f, true
}

// seq returns the items of a sequence of at most limit items. A nil node
// (absent or null) is an empty list.
func (p *parser) seq(n *yaml.Node, path string, limit int) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n.Line, path, "must be a list, not %s", kindName(n))
		return nil
	}
	if len(n.Content) > limit {
		p.errorf(n.Line, path, "%d items, at most %d allowed", len(n.Content), limit)
		return nil
	}
	return n.Content
}

// str returns a string scalar. A nil node yields "", false silently.
func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(n.Line, path, "must be a string, not %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	if n == nil {
		return false, false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		p.errorf(n.Line, path, "must be true or false, not %s", kindName(n))
		return false, false
	}
	return b, true
}

// integer returns an integer scalar in [lo, hi].
func (p *parser) integer(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	if n == nil {
		return 0, false
	}
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		p.errorf(n.Line, path, "must be an integer, not %s", kindName(n))
		return 0, false
	}
	if err := n.Decode(&v); err != nil || v < lo || v > hi {
		p.errorf(n.Line, path, "%s is out of range [%d, %d]", n.Value, lo, hi)
		return 0, false
	}
	return v, true
}

// strList returns a list of strings.
func (p *parser) strList(n *yaml.Node, path string) []string {
	var out []string
	for i, c := range p.seq(n, path, MaxListLen) {
		if s, ok := p.str(c, index(path, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

// stringMap returns a mapping of strings to strings (labels, annotations).
func (p *parser) stringMap(n *yaml.Node, path string) map[string]string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n.Line, path, "must be a mapping, not %s", kindName(n))
		return nil
	}
	if len(n.Content)/2 > MaxListLen {
		p.errorf(n.Line, path, "%d entries, at most %d allowed", len(n.Content)/2, MaxListLen)
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, ok := p.str(n.Content[i], path)
		if !ok {
			continue
		}
		field := join(path, k)
		if _, dup := out[k]; dup {
			p.errorf(n.Content[i].Line, field, "duplicate key")
			continue
		}
		if v, ok := p.str(n.Content[i+1], field); ok {
			out[k] = v
		}
	}
	return out
}

// kindName describes a node for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int":
			return "the integer " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}
