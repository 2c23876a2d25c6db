// Package plainjson reads JSON without reflection, for short-lived
// processes (the hook): encoding/json builds its decoders by reflection
// on first use and scans each document twice, which costs a fresh
// process a good part of its run, and linking it (with fmt and
// reflect) costs every start more.
//
// A Scanner reads one document front to back; its readers decode a
// value into the shapes the callers need — objects into sets of
// members (Fields), strings, ints, bools, maps of strings, arrays of
// strings — with encoding/json's decoding semantics for those shapes,
// so that a caller decoding a struct member by member gets exactly what
// json.Unmarshal into the equivalent struct gets, and fails where it
// fails (the callers' differential fuzz tests hold them to it):
//
//   - the whole of JSON's syntax: every escape, surrogate pairs (lone
//     or invalid ones, and invalid UTF-8, read as U+FFFD), raw control
//     bytes refused, nesting up to MaxDepth, nothing but whitespace
//     after the value (End);
//   - member names matched as encoding/json matches struct fields: the
//     exact name, else a name equal under Unicode case folding;
//   - repeated members: the last wins for strings, ints and bools;
//     objects merge into an existing map or struct; arrays replace
//     (reusing the slice as encoding/json does);
//   - null leaves a string, int or bool unchanged (the *Into readers;
//     Str, Int and Bool read it as the zero value), sets a map, slice
//     or pointer to nil, and is "" as an element of an array or map of
//     strings;
//   - an int is an integer literal within int's range: "1.0", "1e2"
//     and overflow are errors, as is any value of the wrong type.
//
// A method that fails returns false, and Err says what was wrong and
// at which offset; the Scanner then stays failed.
package plainjson

import "strconv"

// MaxDepth is the deepest nesting of arrays and objects a Scanner
// reads: encoding/json's limit.
const MaxDepth = 10000

// Error is why a Scanner failed: a syntax error or a value that its
// reader does not take, Offset bytes into the document.
type Error struct {
	Offset int
	Msg    string
}

// Error says what was wrong and where.
func (e *Error) Error() string { return e.Msg + " at offset " + strconv.Itoa(e.Offset) }

// Scanner reads a JSON document.
type Scanner struct {
	b     []byte
	i     int
	depth int
	err   *Error
	path  []int  // offsets of the names of the members being read
	key   int    // offset of the last member name read
	buf   []byte // a string's unescaped bytes
}

// New scans b.
func New(b []byte) *Scanner { return &Scanner{b: b} }

// Err returns why a method failed; nil if none has.
func (s *Scanner) Err() error {
	if s.err == nil {
		return nil
	}
	return s.err
}

// Offset returns how many bytes of the document have been read.
func (s *Scanner) Offset() int { return s.i }

// fail records the first error, at offset off; it returns false.
func (s *Scanner) fail(off int, msg string) bool {
	if s.err == nil {
		s.err = &Error{Offset: off, Msg: msg}
	}
	return false
}

// syntax fails on the byte at s.i (or the end of the document), which
// is invalid in the context described by where.
func (s *Scanner) syntax(where string) bool {
	if s.i >= len(s.b) {
		return s.eof()
	}
	return s.fail(s.i, "invalid character "+quoteChar(s.b[s.i])+" "+where)
}

// eof fails at the end of the document.
func (s *Scanner) eof() bool {
	s.i = len(s.b)
	return s.fail(s.i, "unexpected end of JSON input")
}

// quoteChar quotes c for an error message.
func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c >= 0x20 && c < 0x7f:
		return "'" + string(rune(c)) + "'"
	}
	const hex = "0123456789abcdef"
	return `'\x` + string(hex[c>>4]) + string(hex[c&15]) + "'"
}

// member names the member being read, for an error message: `member
// "a.b": `, or "" at the top level.
func (s *Scanner) member() string {
	if len(s.path) == 0 {
		return ""
	}
	var name []byte
	for k, off := range s.path {
		key, _ := (&Scanner{b: s.b, i: off}).str()
		if k > 0 {
			name = append(name, '.')
		}
		name = append(name, key...)
	}
	return "member " + strconv.Quote(string(name)) + ": "
}

// next consumes one byte; it returns true.
func (s *Scanner) next() bool {
	s.i++
	return true
}

// mismatch fails on a value at s.i that is not what the reader wants.
func (s *Scanner) mismatch(want string) bool {
	var got string
	switch c := s.b[s.i]; {
	case c == '"':
		got = "a string"
	case c == '{':
		got = "an object"
	case c == '[':
		got = "an array"
	case c == 't' || c == 'f':
		got = "a boolean"
	case c == 'n':
		got = "null"
	case c == '-' || c >= '0' && c <= '9':
		got = "a number"
	default:
		return s.syntax("looking for beginning of value")
	}
	return s.fail(s.i, s.member()+"want "+want+", got "+got)
}

// ws skips insignificant whitespace.
func (s *Scanner) ws() {
	b, i := s.b, s.i
	for i < len(b) {
		if c := b[i]; c > ' ' || c != ' ' && c != '\n' && c != '\t' && c != '\r' {
			break
		}
		i++
	}
	s.i = i
}

// peek skips whitespace and returns the next byte; false at the end of
// the document or after an error.
func (s *Scanner) peek() (byte, bool) {
	if s.err != nil {
		return 0, false
	}
	s.ws()
	if s.i >= len(s.b) {
		return 0, s.eof()
	}
	return s.b[s.i], true
}

// Eat consumes c after whitespace; anything else there is an error.
func (s *Scanner) Eat(c byte) bool {
	next, ok := s.peek()
	if !ok {
		return false
	}
	if next != c {
		return s.syntax("where " + quoteChar(c) + " was expected")
	}
	s.i++
	return true
}

// End reports whether only whitespace is left; anything else is an
// error.
func (s *Scanner) End() bool {
	if s.err != nil {
		return false
	}
	s.ws()
	if s.i < len(s.b) {
		return s.syntax("after top-level value")
	}
	return true
}

// lit consumes the literal word (true, false or null), whose first
// byte is at s.i.
func (s *Scanner) lit(word string) bool {
	for j := 1; j < len(word); j++ {
		if s.i+j >= len(s.b) {
			return s.eof()
		}
		if s.b[s.i+j] != word[j] {
			s.i += j
			return s.syntax("in literal " + word + " (expecting " + quoteChar(word[j]) + ")")
		}
	}
	s.i += len(word)
	return true
}

// Null consumes a null if one is next; false if something else is (or
// after an error).
func (s *Scanner) Null() bool {
	c, ok := s.peek()
	return ok && c == 'n' && s.lit("null")
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

// number consumes a number starting at s.i; integer reports that it
// has neither fraction nor exponent.
func (s *Scanner) number() (integer, ok bool) {
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if s.digits() == 0 {
		return false, s.syntax("in numeric literal")
	}
	integer = true
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		integer = false
		if s.digits() == 0 {
			return false, s.syntax("after decimal point in numeric literal")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		integer = false
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false, s.syntax("in exponent of numeric literal")
		}
	}
	return integer, true
}

// enter goes one level deeper, consuming the opening bracket at s.i;
// false beyond MaxDepth.
func (s *Scanner) enter() bool {
	if s.depth++; s.depth > MaxDepth {
		return s.fail(s.i, "nesting deeper than "+strconv.Itoa(MaxDepth)+" levels")
	}
	s.i++
	return true
}

// leave comes back from a level.
func (s *Scanner) leave() { s.depth-- }

// Skip consumes any value.
func (s *Scanner) Skip() bool {
	c, ok := s.peek()
	if !ok {
		return false
	}
	switch {
	case c == '{':
		return s.object(func([]byte) bool { return s.Skip() })
	case c == '[':
		return s.Array(s.Skip)
	case c == '"':
		return s.skipStr()
	case c == '-' || c >= '0' && c <= '9':
		_, ok := s.number()
		return ok
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	}
	return s.syntax("looking for beginning of value")
}
