// Package plainjson reads a plain subset of JSON without reflection,
// for short-lived processes (the hook) whose documents are small and
// plain: encoding/json builds its decoders by reflection on first use
// and scans each document twice, which costs a fresh process a good
// part of its run.
//
// The subset: well-formed JSON whose strings are printable ASCII
// without escapes. A caller reads the members it wants with Fields,
// which leaves the subset when a wanted member is repeated or spelled
// in another case (encoding/json matches member names
// case-insensitively); readers leave it for a null or a wrong type.
// Whatever a caller accepts this way it must decode exactly as
// encoding/json would, and hand everything else to encoding/json, so
// that results and error messages stay encoding/json's (each caller
// has a differential fuzz test).
package plainjson

import "bytes"

// MaxDepth bounds the nesting a Scanner reads; deeper documents leave
// the subset.
const MaxDepth = 100

// Scanner reads the plain subset of JSON from a document. Its methods
// return false when the input leaves the subset; the caller then
// decodes the document with encoding/json from the start.
type Scanner struct {
	b     []byte
	i     int
	depth int
}

// New scans b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

// ws skips insignificant whitespace.
func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// Eat consumes c after whitespace.
func (s *Scanner) Eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// Str reads a string of printable ASCII without escapes.
func (s *Scanner) Str() (string, bool) {
	b, ok := s.str()
	return string(b), ok
}

// str reads a string as Str does and returns its bytes, a part of the
// document: skipped strings and member names cost no copy.
func (s *Scanner) str() ([]byte, bool) {
	if !s.Eat('"') {
		return nil, false
	}
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			v := s.b[s.i:j]
			s.i = j + 1
			return v, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// digits consumes a run of decimal digits and returns how many.
func (s *Scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

// number consumes a JSON number.
func (s *Scanner) number() bool {
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

// Int reads a JSON number that is an integer of at most 18 digits
// (an int here whatever its sign): no fraction, no exponent.
func (s *Scanner) Int() (int, bool) {
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
func (s *Scanner) literal() bool {
	s.ws()
	for _, w := range [...][]byte{[]byte("true"), []byte("false"), []byte("null")} {
		if bytes.HasPrefix(s.b[s.i:], w) {
			s.i += len(w)
			return true
		}
	}
	return false
}

// enter goes one level deeper; false beyond MaxDepth.
func (s *Scanner) enter() bool { s.depth++; return s.depth <= MaxDepth }

// leave comes back from a level.
func (s *Scanner) leave() { s.depth-- }

// Object reads an object; member reads each member's value.
func (s *Scanner) Object(member func(key string) bool) bool {
	return s.object(func(k []byte) bool { return member(string(k)) })
}

// object is Object with each member's name as bytes of the document.
func (s *Scanner) object(member func(key []byte) bool) bool {
	return s.seq('{', '}', func() bool {
		k, ok := s.str()
		return ok && s.Eat(':') && member(k)
	})
}

// Array reads an array; elem reads each element.
func (s *Scanner) Array(elem func() bool) bool { return s.seq('[', ']', elem) }

// seq reads open, items separated by commas (each read by item), and
// close, one level deeper.
func (s *Scanner) seq(open, close byte, item func() bool) bool {
	if !s.Eat(open) || !s.enter() {
		return false
	}
	defer s.leave()
	if s.Eat(close) {
		return true
	}
	for {
		if !item() {
			return false
		}
		if !s.Eat(',') {
			return s.Eat(close)
		}
	}
}

// Skip consumes any value of the subset.
func (s *Scanner) Skip() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(func([]byte) bool { return s.Skip() })
	case c == '[':
		return s.Array(s.Skip)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return s.literal()
}

// End reports whether only whitespace is left.
func (s *Scanner) End() bool {
	s.ws()
	return s.i == len(s.b)
}

// StringMap reads an object of strings (the last of a repeated key
// wins, as in encoding/json).
func (s *Scanner) StringMap() (map[string]string, bool) {
	m := map[string]string{}
	ok := s.Object(func(k string) bool {
		v, ok := s.Str()
		m[k] = v
		return ok
	})
	return m, ok
}

// Strings reads an array of strings.
func (s *Scanner) Strings() ([]string, bool) {
	out := []string{}
	ok := s.Array(func() bool {
		v, ok := s.Str()
		out = append(out, v)
		return ok
	})
	return out, ok
}

// Fields dispatches an object's members to the readers of the wanted
// names: each wanted member at most once, spelled exactly; a member that
// matches a wanted name only case-insensitively leaves the subset; the
// rest are skipped.
func (s *Scanner) Fields(read map[string]func() bool) bool {
	seen := make(map[string]bool, len(read))
	return s.object(func(k []byte) bool {
		if f, ok := read[string(k)]; ok {
			if seen[string(k)] {
				return false
			}
			seen[string(k)] = true
			return f()
		}
		for name := range read {
			if len(name) == len(k) && bytes.EqualFold(k, []byte(name)) {
				return false
			}
		}
		return s.Skip()
	})
}

// StrInto is a member reader that stores a string into dst.
func (s *Scanner) StrInto(dst *string) func() bool {
	return func() (ok bool) { *dst, ok = s.Str(); return ok }
}

// MapInto is a member reader that stores an object of strings into dst.
func (s *Scanner) MapInto(dst *map[string]string) func() bool {
	return func() (ok bool) { *dst, ok = s.StringMap(); return ok }
}

// Bool reads true or false.
func (s *Scanner) Bool() (bool, bool) {
	s.ws()
	for _, v := range [...]bool{true, false} {
		w := []byte("false")
		if v {
			w = []byte("true")
		}
		if bytes.HasPrefix(s.b[s.i:], w) {
			s.i += len(w)
			return v, true
		}
	}
	return false, false
}
