package plainjson

import "unicode/utf8"

// str reads the string at s.i, unquoted as encoding/json unquotes it.
// The bytes are a part of the document, or of s.buf when the string
// has escapes or non-ASCII bytes: valid until the next str.
func (s *Scanner) str() ([]byte, bool) {
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			s.buf = append(s.buf[:0], s.b[start:j]...)
			s.i = j
			return s.strSlow()
		}
	}
	return nil, s.eof()
}

// strSlow goes on with str at s.i, appending to s.buf: escapes are
// replaced, and so are invalid UTF-8 and invalid surrogates (by
// U+FFFD).
func (s *Scanner) strSlow() ([]byte, bool) {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.buf, true
		case c == '\\':
			if !s.escape() {
				return nil, false
			}
		case c < 0x20:
			return nil, s.syntax("in string literal")
		case c < utf8.RuneSelf:
			s.buf = append(s.buf, c)
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			s.buf = utf8.AppendRune(s.buf, r)
			s.i += n
		}
	}
	return nil, s.eof()
}

// escape appends the character of the escape at s.i to s.buf.
func (s *Scanner) escape() bool {
	if s.i+1 >= len(s.b) {
		return s.eof()
	}
	s.i++
	c := s.b[s.i]
	switch c {
	case '"', '\\', '/':
	case 'b':
		c = '\b'
	case 'f':
		c = '\f'
	case 'n':
		c = '\n'
	case 'r':
		c = '\r'
	case 't':
		c = '\t'
	case 'u':
		return s.unicodeEscape()
	default:
		return s.syntax("in string escape code")
	}
	s.buf = append(s.buf, c)
	s.i++
	return true
}

// unicodeEscape appends the character of the \u escape whose 'u' is at
// s.i, with the escape after it when the two are a surrogate pair.
func (s *Scanner) unicodeEscape() bool {
	s.i++
	r, ok := s.hex4()
	if !ok {
		return false
	}
	if r >= 0xd800 && r < 0xe000 {
		// A surrogate: encoding/json combines it with a following
		// \uXXXX when the two make a pair, and reads U+FFFD (leaving
		// what follows alone) otherwise.
		if r2, ok := getu4(s.b[s.i:]); ok && r < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000 {
			s.i += 6
			r = 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00)
		} else {
			r = utf8.RuneError
		}
	}
	s.buf = utf8.AppendRune(s.buf, r)
	return true
}

// hex4 consumes the four hex digits of a \u escape at s.i.
func (s *Scanner) hex4() (rune, bool) {
	var r rune
	for k := 0; k < 4; k++ {
		if s.i >= len(s.b) {
			return 0, s.eof()
		}
		d := hexDigit(s.b[s.i])
		if d < 0 {
			return 0, s.syntax(`in \u hexadecimal character escape`)
		}
		r = r<<4 | d
		s.i++
	}
	return r, true
}

// getu4 decodes a \uXXXX escape at the start of b.
func getu4(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range b[2:6] {
		d := hexDigit(c)
		if d < 0 {
			return 0, false
		}
		r = r<<4 | d
	}
	return r, true
}

// hexDigit is the value of the hex digit c; -1 if c is none.
func hexDigit(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// skipStr consumes the string at s.i, checking its syntax only.
func (s *Scanner) skipStr() bool {
	b := s.b
	for i := s.i + 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			s.i = i + 1
			return true
		case c == '\\':
			s.i = i
			if !s.skipEscape() {
				return false
			}
			i = s.i - 1
		case c < 0x20:
			s.i = i
			return s.syntax("in string literal")
		}
	}
	return s.eof()
}

// skipEscape consumes the escape at s.i, checking its syntax.
func (s *Scanner) skipEscape() bool {
	if s.i+1 >= len(s.b) {
		return s.eof()
	}
	s.i++
	switch s.b[s.i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i++
		return true
	case 'u':
		s.i++
		_, ok := s.hex4()
		return ok
	}
	return s.syntax("in string escape code")
}
