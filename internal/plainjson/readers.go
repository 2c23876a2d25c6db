package plainjson

// maxInt is the largest int.
const maxInt = int(^uint(0) >> 1)

// Str reads a string; null reads as "" (StrInto leaves its destination
// unchanged instead, as encoding/json does).
func (s *Scanner) Str() (string, bool) {
	v := ""
	ok := s.StrInto(&v)()
	return v, ok
}

// StrInto is a member reader that stores a string into dst; null
// leaves dst unchanged.
func (s *Scanner) StrInto(dst *string) func() bool {
	return func() bool {
		c, ok := s.peek()
		switch {
		case !ok:
			return false
		case c == '"':
			b, ok := s.str()
			*dst = string(b)
			return ok
		case c == 'n':
			return s.lit("null")
		}
		return s.mismatch("a string")
	}
}

// Int reads an integer within int's range; null reads as 0 (IntInto
// leaves its destination unchanged instead).
func (s *Scanner) Int() (int, bool) {
	v := 0
	ok := s.IntInto(&v)()
	return v, ok
}

// IntInto is a member reader that stores an integer within int's range
// into dst; null leaves dst unchanged. A number with a fraction or an
// exponent, even "1.0", is refused, as encoding/json refuses it.
func (s *Scanner) IntInto(dst *int) func() bool {
	return func() bool {
		c, ok := s.peek()
		switch {
		case !ok:
			return false
		case c == 'n':
			return s.lit("null")
		case c != '-' && (c < '0' || c > '9'):
			return s.mismatch("an integer")
		}
		start := s.i
		integer, ok := s.number()
		if !ok {
			return false
		}
		v, inRange := parseInt(s.b[start:s.i])
		if !integer || !inRange {
			return s.fail(start, s.member()+"want an integer, got number "+string(s.b[start:s.i]))
		}
		*dst = v
		return true
	}
}

// parseInt parses an integer literal of JSON's grammar; false if it
// does not fit an int.
func parseInt(b []byte) (int, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		u = u*10 + uint64(c-'0')
	}
	switch {
	case neg && u <= uint64(maxInt)+1:
		return int(-u), true
	case !neg && u <= uint64(maxInt):
		return int(u), true
	}
	return 0, false
}

// Bool reads true or false; null reads as false (BoolInto leaves its
// destination unchanged instead).
func (s *Scanner) Bool() (bool, bool) {
	v := false
	ok := s.BoolInto(&v)()
	return v, ok
}

// BoolInto is a member reader that stores true or false into dst; null
// leaves dst unchanged.
func (s *Scanner) BoolInto(dst *bool) func() bool {
	return func() bool {
		c, ok := s.peek()
		switch {
		case !ok:
			return false
		case c == 't':
			*dst = true
			return s.lit("true")
		case c == 'f':
			*dst = false
			return s.lit("false")
		case c == 'n':
			return s.lit("null")
		}
		return s.mismatch("a boolean")
	}
}

// StringMap reads an object of strings into a new map; null reads as
// a nil map.
func (s *Scanner) StringMap() (map[string]string, bool) {
	var m map[string]string
	ok := s.MapInto(&m)()
	return m, ok
}

// MapInto is a member reader that stores an object of strings into
// dst, merged into the map dst holds (the last of a repeated key wins),
// as encoding/json does; null sets dst to nil, a null value is "".
func (s *Scanner) MapInto(dst *map[string]string) func() bool {
	return func() bool {
		if s.Null() {
			*dst = nil
			return true
		}
		if c, ok := s.peek(); !ok || c != '{' {
			return ok && s.mismatch("an object of strings")
		}
		if *dst == nil {
			*dst = map[string]string{}
		}
		m := *dst
		return s.object(func(k []byte) bool {
			key := string(k)
			v, ok := s.Str()
			m[key] = v
			return ok
		})
	}
}

// Strings reads an array of strings into a new slice; null reads as a
// nil slice.
func (s *Scanner) Strings() ([]string, bool) {
	var v []string
	ok := s.StringsInto(&v)()
	return v, ok
}

// StringsInto is a member reader that stores an array of strings into
// dst, as SliceInto does: a null element is "", unless an earlier
// decode of the same slice left a string there, which it keeps.
func (s *Scanner) StringsInto(dst *[]string) func() bool {
	return func() bool {
		return SliceInto(s, dst, "an array of strings", func(v *string) bool { return s.StrInto(v)() })
	}
}

// SliceInto reads an array into dst as encoding/json decodes one into a
// slice: null sets dst to nil; elem decodes each element into dst's own,
// in place, the slice growing when it must (what an earlier decode of
// the same slice left there stays where elem leaves it, as for a null);
// an empty array is an empty, non-nil slice. what names the array in a
// type mismatch.
func SliceInto[T any](s *Scanner, dst *[]T, what string, elem func(*T) bool) bool {
	if s.Null() {
		*dst = nil
		return true
	}
	if c, ok := s.peek(); !ok || c != '[' {
		return ok && s.mismatch(what)
	}
	v, n := *dst, 0
	ok := s.Array(func() bool {
		switch {
		case n >= cap(v):
			var zero T
			v = append(v, zero)
		case n >= len(v):
			v = v[:n+1]
		}
		n++
		return elem(&v[n-1])
	})
	if !ok {
		return false
	}
	if n == 0 {
		v = []T{}
	}
	*dst = v[:n]
	return true
}
