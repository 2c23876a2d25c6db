package install

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A deliberately small TOML reader for line-based edits of containerd's
// config.toml: it classifies each line (table header, array-of-tables
// header, key/value, anything else) and knows which lines continue a
// multi-line array, inline table or string, so it never mistakes their
// contents for headers. It does not build values; callers refuse configs
// whose shape they cannot edit safely.

type lineKind int

const (
	lineOther      lineKind = iota // blank, comment, continuation of a multi-line value
	lineTable                      // [a.b]
	lineArrayTable                 // [[a.b]]
	lineKey                        // key = value
)

type tomlLine struct {
	text    string // without the line ending
	kind    lineKind
	key     []string // lineTable/lineArrayTable: the header; lineKey: the (dotted) key
	table   []string // lineKey: the table the key is in
	value   string   // lineKey: the value's text on this line, without a comment
	valueAt int      // lineKey: where value starts in text
	multi   bool     // lineKey: the value continues on the next lines
}

type tomlDoc struct {
	lines    []tomlLine
	eol      string // "\n" or "\r\n"
	finalEOL bool   // the last line ends with eol
}

// valueState carries an unfinished value from one line to the next.
type valueState struct {
	depth int    // open [ and {
	ml    string // inside a multi-line string: its delimiter
}

func (s valueState) open() bool { return s.depth > 0 || s.ml != "" }

func parseTOML(b []byte) (*tomlDoc, error) {
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("not UTF-8")
	}
	doc := &tomlDoc{eol: "\n"}
	if bytes.Contains(b, []byte("\r\n")) {
		doc.eol = "\r\n"
	}
	s := string(b)
	doc.finalEOL = strings.HasSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" && !doc.finalEOL {
		return doc, nil
	}
	var table []string
	var st valueState
	for i, text := range strings.Split(s, "\n") {
		text = strings.TrimSuffix(text, "\r")
		l := tomlLine{text: text}
		n := i + 1
		if st.open() {
			if _, err := scanValue(text, &st); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			doc.lines = append(doc.lines, l)
			continue
		}
		trimmed := strings.TrimLeft(text, " \t")
		switch {
		case trimmed == "" || trimmed[0] == '#':
		case strings.HasPrefix(trimmed, "[["), trimmed[0] == '[':
			l.kind, l.key = lineTable, nil
			open, closing := "[", "]"
			if strings.HasPrefix(trimmed, "[[") {
				l.kind, open, closing = lineArrayTable, "[[", "]]"
			}
			key, rest, err := parseKey(trimmed[len(open):])
			if err != nil {
				return nil, fmt.Errorf("line %d: table header: %w", n, err)
			}
			rest, ok := strings.CutPrefix(rest, closing)
			if rest = strings.TrimLeft(rest, " \t"); !ok || (rest != "" && rest[0] != '#') {
				return nil, fmt.Errorf("line %d: table header %q does not end with %s", n, trimmed, closing)
			}
			l.key, table = key, key
		default:
			key, rest, err := parseKey(trimmed)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			rest, ok := strings.CutPrefix(rest, "=")
			if !ok {
				return nil, fmt.Errorf("line %d: key %s without \"=\"", n, strings.Join(key, "."))
			}
			end, err := scanValue(rest, &st)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			l.kind, l.key, l.table = lineKey, key, table
			l.value, l.multi = strings.TrimSpace(rest[:end]), st.open()
			l.valueAt = len(text) - len(strings.TrimLeft(rest, " \t"))
			if l.value == "" {
				return nil, fmt.Errorf("line %d: key %s has no value", n, strings.Join(key, "."))
			}
		}
		doc.lines = append(doc.lines, l)
	}
	if st.open() {
		return nil, fmt.Errorf("unterminated multi-line value at the end")
	}
	return doc, nil
}

// bytes renders the document with its original line endings.
func (d *tomlDoc) bytes() []byte {
	var b strings.Builder
	for i, l := range d.lines {
		b.WriteString(l.text)
		if i < len(d.lines)-1 || d.finalEOL {
			b.WriteString(d.eol)
		}
	}
	return []byte(b.String())
}

// scanValue follows a value through s, updating st, and returns where a
// comment starts (or len(s)).
func scanValue(s string, st *valueState) (int, error) {
	i := 0
	for i < len(s) {
		if st.ml != "" {
			if st.ml == `"""` && s[i] == '\\' {
				i += 2
				continue
			}
			if strings.HasPrefix(s[i:], st.ml) {
				i += 3
				for i < len(s) && s[i] == st.ml[0] { // up to two quotes may end the content
					i++
				}
				st.ml = ""
				continue
			}
			i++
			continue
		}
		switch c := s[i]; c {
		case '#':
			return i, nil
		case '"', '\'':
			delim := strings.Repeat(string(c), 3)
			if strings.HasPrefix(s[i:], delim) {
				st.ml = delim
				i += 3
				continue
			}
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if c == '"' && s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) {
				return 0, fmt.Errorf("unterminated string")
			}
			i = j + 1
			continue
		case '[', '{':
			st.depth++
		case ']', '}':
			st.depth--
			if st.depth < 0 {
				return 0, fmt.Errorf("unbalanced %q", c)
			}
		}
		i++
	}
	return len(s), nil
}

// parseKey reads a (dotted) key: bare, "basic" and 'literal' parts.
func parseKey(s string) ([]string, string, error) {
	var parts []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", fmt.Errorf("key expected")
		}
		var part string
		switch s[0] {
		case '"':
			j := 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) {
				return nil, "", fmt.Errorf("unterminated quoted key")
			}
			p, err := strconv.Unquote(s[:j+1])
			if err != nil {
				return nil, "", fmt.Errorf("quoted key %s: %w", s[:j+1], err)
			}
			part, s = p, s[j+1:]
		case '\'':
			j := strings.IndexByte(s[1:], '\'')
			if j < 0 {
				return nil, "", fmt.Errorf("unterminated quoted key")
			}
			part, s = s[1:j+1], s[j+2:]
		default:
			j := 0
			for j < len(s) && isBareKeyChar(s[j]) {
				j++
			}
			if j == 0 {
				return nil, "", fmt.Errorf("invalid key character %q", s[0])
			}
			part, s = s[:j], s[j:]
		}
		parts = append(parts, part)
		s = strings.TrimLeft(s, " \t")
		if rest, ok := strings.CutPrefix(s, "."); ok {
			s = rest
			continue
		}
		return parts, s, nil
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// tomlString parses a one-line basic or literal string value.
func tomlString(v string) (string, bool) {
	switch {
	case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' && !strings.HasPrefix(v, "'''"):
		s := v[1 : len(v)-1]
		return s, !strings.Contains(s, "'")
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && !strings.HasPrefix(v, `"""`):
		s, err := strconv.Unquote(v)
		return s, err == nil
	}
	return "", false
}

// quoteTOML writes s as a literal string when literal is asked for and
// possible, else as a basic string.
func quoteTOML(s string, literal bool) string {
	plain := true
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\'' {
			plain = false
		}
	}
	if literal && plain {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlKey renders a key path, quoting parts that are not bare.
func tomlKey(parts []string, literal bool) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		bare := p != ""
		for j := 0; j < len(p); j++ {
			if !isBareKeyChar(p[j]) {
				bare = false
			}
		}
		if bare {
			out[i] = p
		} else {
			out[i] = quoteTOML(p, literal)
		}
	}
	return strings.Join(out, ".")
}
