package plainjson

import (
	"unicode"
	"unicode/utf8"
)

// Object reads an object; member reads each member's value. null reads
// as an object without members.
func (s *Scanner) Object(member func(key string) bool) bool {
	if s.Null() {
		return true
	}
	return s.object(func(k []byte) bool { return member(string(k)) })
}

// object reads the object at s.i (after whitespace); member reads each
// member's value, given the member's name (valid until the next read).
func (s *Scanner) object(member func(key []byte) bool) bool {
	c, ok := s.peek()
	if !ok {
		return false
	}
	if c != '{' {
		return s.mismatch("an object")
	}
	if !s.enter() {
		return false
	}
	defer s.leave()
	if c, ok := s.peek(); !ok || c == '}' {
		return ok && s.next()
	}
	for {
		if c, ok := s.peek(); !ok || c != '"' {
			return ok && s.syntax("looking for beginning of object key string")
		}
		s.key = s.i
		k, ok := s.str()
		if !ok {
			return false
		}
		if c, ok := s.peek(); !ok || c != ':' {
			return ok && s.syntax("after object key")
		}
		s.i++
		if !member(k) {
			return s.refused()
		}
		if more, ok := s.separator('}', "after object key:value pair"); !more {
			return ok
		}
	}
}

// separator reads what follows an item of an object or array: a comma
// (more: another item follows) or close (the end, ok). Anything else is
// a syntax error, where says after what.
func (s *Scanner) separator(close byte, where string) (more, ok bool) {
	c, ok := s.peek()
	switch {
	case !ok:
		return false, false
	case c == ',':
		s.i++
		return true, true
	case c == close:
		s.i++
		return false, true
	}
	return false, s.syntax(where)
}

// refused fails, when a caller's reader refused a value without saying
// why.
func (s *Scanner) refused() bool {
	if s.err != nil {
		return false
	}
	return s.fail(s.i, s.member()+"value refused")
}

// Array reads an array; elem reads each element. null reads as an
// empty array.
func (s *Scanner) Array(elem func() bool) bool {
	c, ok := s.peek()
	switch {
	case !ok:
		return false
	case c == 'n':
		return s.lit("null")
	case c != '[':
		return s.mismatch("an array")
	case !s.enter():
		return false
	}
	defer s.leave()
	if c, ok := s.peek(); !ok || c == ']' {
		return ok && s.next()
	}
	for {
		if !elem() {
			return s.refused()
		}
		if more, ok := s.separator(']', "after array element"); !more {
			return ok
		}
	}
}

// Fields reads an object into the members of a struct-like value:
// read maps each wanted member's name to its reader (StrInto, IntInto,
// …, or Fields for a nested object). A member is matched as
// encoding/json matches a struct field: by its exact name, else by a
// name equal under Unicode case folding (no two wanted names may be
// equal so); a repeated member is read again; other members are
// skipped. null reads as an object without members (which leaves a
// struct unchanged, as in encoding/json).
func (s *Scanner) Fields(read map[string]func() bool) bool {
	if s.Null() {
		return true
	}
	return s.object(func(k []byte) bool {
		f, ok := read[string(k)]
		if !ok {
			for n, g := range read {
				if foldEqual(k, n) {
					f, ok = g, true
					break
				}
			}
		}
		if !ok {
			return s.Skip()
		}
		s.path = append(s.path, s.key)
		ok = f()
		s.path = s.path[:len(s.path)-1]
		return ok
	})
}

// foldEqual reports whether key and name fold to the same name, as
// encoding/json's foldName folds them: ASCII letters to upper case,
// any other rune to the smallest rune of its case-folding orbit, and
// invalid UTF-8 to U+FFFD.
func foldEqual(key []byte, name string) bool {
	i := 0
	for ; i < len(key) && i < len(name); i++ {
		kc, nc := key[i], name[i]
		if kc >= utf8.RuneSelf || nc >= utf8.RuneSelf {
			break
		}
		if upper(kc) != upper(nc) {
			return false
		}
	}
	if i == len(key) && i == len(name) {
		return true
	}
	var kb, nb [64]byte
	return string(appendFolded(kb[:0], key[i:])) == string(appendFolded(nb[:0], []byte(name[i:])))
}

// upper is c in upper case, for an ASCII letter c.
func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// appendFolded appends in folded as encoding/json's foldName folds it.
func appendFolded(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			out = append(out, upper(c))
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
		i += n
	}
	return out
}
