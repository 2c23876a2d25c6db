package oci

import (
	"bytes"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The hook decodes its state and the bundle's config.json first with a
// scanner of its own that accepts only a plain subset of JSON, and
// hands anything else to encoding/json. A freshly started hook spent
// ~130 us of its ~2 ms round trip in encoding/json (building its
// decoders by reflection, scanning each document twice); this scanner
// takes a few microseconds.
//
// What the scanner accepts it decodes exactly as encoding/json does
// (FuzzFastDecodeMatchesEncodingJSON): well-formed JSON whose strings are
// printable ASCII without escapes, whose wanted members appear once,
// spelled as their tags, with the types the struct wants (not null).
// Anything else — an escape, a non-ASCII byte, a member spelled in
// another case (encoding/json matches case-insensitively), a repeated
// member, a null, a wrong type, a syntax error, deep nesting — makes it
// give up, and encoding/json decodes the document from the start, with
// its own results and error messages.

// maxFastDepth bounds the scanner's nesting; deeper documents go to
// encoding/json.
const maxFastDepth = 100

// scanner reads the plain subset of JSON from b. Its methods return
// false when the input leaves the subset.
type scanner struct {
	b     []byte
	i     int
	depth int
}

// ws skips insignificant whitespace.
func (s *scanner) ws() {
	for s.i < len(s.b) && strings.IndexByte(jsonSpace, s.b[s.i]) >= 0 {
		s.i++
	}
}

// eat consumes c after whitespace.
func (s *scanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (s *scanner) str() (string, bool) {
	if !s.eat('"') {
		return "", false
	}
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := string(s.b[s.i:j])
			s.i = j + 1
			return v, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", false
		}
	}
	return "", false
}

// digits consumes a run of decimal digits and returns how many.
func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// number consumes a JSON number.
func (s *scanner) number() bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	start := s.i
	if n := s.digits(); n == 0 || (n > 1 && s.b[start] == '0') {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

// integer reads a JSON number that is an integer of at most 18 digits
// (an int here whatever its sign): no fraction, no exponent.
func (s *scanner) integer() (int, bool) {
	s.ws()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start := s.i
	n := s.digits()
	if n == 0 || n > 18 || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return 0, false
	}
	v := 0
	for _, c := range s.b[start:s.i] {
		v = v*10 + int(c-'0')
	}
	if neg {
		v = -v
	}
	return v, true
}

// literal consumes true, false or null.
func (s *scanner) literal() bool {
	s.ws()
	for _, w := range [...][]byte{[]byte("true"), []byte("false"), []byte("null")} {
		if bytes.HasPrefix(s.b[s.i:], w) {
			s.i += len(w)
			return true
		}
	}
	return false
}

// enter and leave bound the nesting.
func (s *scanner) enter() bool { s.depth++; return s.depth <= maxFastDepth }
func (s *scanner) leave()      { s.depth-- }

// object reads an object; member reads each member's value.
func (s *scanner) object(member func(key string) bool) bool {
	if !s.eat('{') || !s.enter() {
		return false
	}
	defer s.leave()
	if s.eat('}') {
		return true
	}
	for {
		k, ok := s.str()
		if !ok || !s.eat(':') || !member(k) {
			return false
		}
		if !s.eat(',') {
			return s.eat('}')
		}
	}
}

// array reads an array; elem reads each element.
func (s *scanner) array(elem func() bool) bool {
	if !s.eat('[') || !s.enter() {
		return false
	}
	defer s.leave()
	if s.eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !s.eat(',') {
			return s.eat(']')
		}
	}
}

// skip consumes any value of the subset.
func (s *scanner) skip() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(func(string) bool { return s.skip() })
	case c == '[':
		return s.array(s.skip)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return s.literal()
}

// end reports whether only whitespace is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// stringMap reads an object of strings (the last of a repeated key
// wins, as in encoding/json).
func (s *scanner) stringMap() (map[string]string, bool) {
	m := map[string]string{}
	ok := s.object(func(k string) bool {
		v, ok := s.str()
		m[k] = v
		return ok
	})
	return m, ok
}

// strings reads an array of strings.
func (s *scanner) strings() ([]string, bool) {
	out := []string{}
	ok := s.array(func() bool {
		v, ok := s.str()
		out = append(out, v)
		return ok
	})
	return out, ok
}

// fields dispatches an object's members to the readers of the wanted
// names: each wanted member at most once, spelled exactly; a member that
// matches a wanted name only case-insensitively leaves the subset; the
// rest are skipped.
func (s *scanner) fields(read map[string]func() bool) bool {
	seen := make(map[string]bool, len(read))
	return s.object(func(k string) bool {
		if f, ok := read[k]; ok {
			if seen[k] {
				return false
			}
			seen[k] = true
			return f()
		}
		for name := range read {
			if strings.EqualFold(k, name) {
				return false
			}
		}
		return s.skip()
	})
}

// str and friends as field readers that store into a destination.
func (s *scanner) strInto(dst *string) func() bool {
	return func() (ok bool) { *dst, ok = s.str(); return ok }
}

func (s *scanner) mapInto(dst *map[string]string) func() bool {
	return func() (ok bool) { *dst, ok = s.stringMap(); return ok }
}

// fastState decodes a state document of the subset; ok false: it is not.
func fastState(b []byte) (st *specs.State, ok bool) {
	st = &specs.State{}
	s := &scanner{b: b}
	var status string
	ok = s.fields(map[string]func() bool{
		"ociVersion":  s.strInto(&st.Version),
		"id":          s.strInto(&st.ID),
		"status":      s.strInto(&status),
		"pid":         func() (ok bool) { st.Pid, ok = s.integer(); return ok },
		"bundle":      s.strInto(&st.Bundle),
		"annotations": s.mapInto(&st.Annotations),
	})
	st.Status = specs.ContainerState(status)
	return st, ok && s.end()
}

// fastBundleView decodes a config.json of the subset; ok false: it is
// not.
func fastBundleView(b []byte) (*bundleView, bool) {
	v := &bundleView{}
	s := &scanner{b: b}
	ok := s.fields(map[string]func() bool{
		"ociVersion":  s.strInto(&v.Version),
		"hostname":    s.strInto(&v.Hostname),
		"annotations": s.mapInto(&v.Annotations),
		"process": func() bool {
			v.Process = &struct {
				Args []string `json:"args,omitempty"`
			}{}
			return s.fields(map[string]func() bool{
				"args": func() (ok bool) { v.Process.Args, ok = s.strings(); return ok },
			})
		},
		"linux": func() bool {
			v.Linux = &struct {
				CgroupsPath string `json:"cgroupsPath,omitempty"`
			}{}
			return s.fields(map[string]func() bool{"cgroupsPath": s.strInto(&v.Linux.CgroupsPath)})
		},
	})
	return v, ok && s.end()
}
