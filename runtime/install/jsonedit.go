package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Minimal edits of a JSON document that keep everything else byte for
// byte: members of an object are located by offsets, and inserted or
// removed with the document's own indentation.

// jsonMember is one "key": value of an object, as offsets into the document.
type jsonMember struct {
	key              string
	start            int // the key's opening quote
	valStart, valEnd int
}

// jsonObject is an object's braces and members.
type jsonObject struct {
	open, close int // offsets of { and }
	members     []jsonMember
}

func (o jsonObject) find(key string) (int, error) {
	found := -1
	for i, m := range o.members {
		if m.key == key {
			if found >= 0 {
				return -1, fmt.Errorf("member %q appears twice", key)
			}
			found = i
		}
	}
	return found, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the offset after the string starting at b[i] == '"'.
func stringEnd(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at offset %d", i)
}

// valueEnd returns the offset after the value starting at b[i].
func valueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("value expected at the end")
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := stringEnd(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unterminated %c at offset %d", b[i], i)
	}
	j := i
	for j < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[j])) {
		j++
	}
	return j, nil
}

// parseObject reads the object at b[at] (after white space). b must be
// valid JSON (json.Valid) for the offsets to mean anything.
func parseObject(b []byte, at int) (jsonObject, error) {
	i := skipSpace(b, at)
	if i >= len(b) || b[i] != '{' {
		return jsonObject{}, fmt.Errorf("not a JSON object")
	}
	o := jsonObject{open: i}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		o.close = i
		return o, nil
	}
	for i < len(b) {
		if b[i] != '"' {
			return jsonObject{}, fmt.Errorf("offset %d: member name expected", i)
		}
		end, err := stringEnd(b, i)
		if err != nil {
			return jsonObject{}, err
		}
		m := jsonMember{start: i}
		if err := json.Unmarshal(b[i:end], &m.key); err != nil {
			return jsonObject{}, fmt.Errorf("offset %d: member name: %w", i, err)
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return jsonObject{}, fmt.Errorf("offset %d: \":\" expected", i)
		}
		m.valStart = skipSpace(b, i+1)
		if m.valEnd, err = valueEnd(b, m.valStart); err != nil {
			return jsonObject{}, err
		}
		o.members = append(o.members, m)
		i = skipSpace(b, m.valEnd)
		switch {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			o.close = i
			return o, nil
		default:
			return jsonObject{}, fmt.Errorf("offset %d: \",\" or \"}\" expected", i)
		}
	}
	return jsonObject{}, fmt.Errorf("unterminated object")
}

// lineIndent is the white space that starts the line holding b[i].
func lineIndent(b []byte, i int) string {
	start := bytes.LastIndexByte(b[:i], '\n') + 1
	j := start
	for j < i && (b[j] == ' ' || b[j] == '\t') {
		j++
	}
	return string(b[start:j])
}

// indentUnit guesses one level of indentation from the top-level
// object's first member; two spaces if it cannot tell.
func indentUnit(b []byte, top jsonObject) string {
	if len(top.members) > 0 && bytes.Contains(b[top.open:top.members[0].start], []byte("\n")) {
		if in := lineIndent(b, top.members[0].start); in != "" {
			return in
		}
	}
	return "  "
}

func render(v any, prefix, unit string, multiline bool) (string, error) {
	var b []byte
	var err error
	if multiline {
		b, err = json.MarshalIndent(v, prefix, unit)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return "", fmt.Errorf("encode JSON: %w", err)
	}
	return string(b), nil
}

func splice(b []byte, from, to int, s string) []byte {
	out := make([]byte, 0, len(b)-(to-from)+len(s))
	out = append(out, b[:from]...)
	out = append(out, s...)
	return append(out, b[to:]...)
}

// insertMember adds "key": v as the object's last member.
func insertMember(b []byte, o jsonObject, key string, v any, unit string) ([]byte, error) {
	k, _ := json.Marshal(key)
	if len(o.members) == 0 {
		outer := lineIndent(b, o.open)
		in := outer + unit
		val, err := render(v, in, unit, true)
		if err != nil {
			return nil, err
		}
		return splice(b, o.open+1, o.close, "\n"+in+string(k)+": "+val+"\n"+outer), nil
	}
	last := o.members[len(o.members)-1]
	multiline := bytes.Contains(b[o.open:o.members[0].start], []byte("\n"))
	in := lineIndent(b, last.start)
	val, err := render(v, in, unit, multiline)
	if err != nil {
		return nil, err
	}
	sep := ", "
	if multiline {
		sep = ",\n" + in
	}
	return splice(b, last.valEnd, last.valEnd, sep+string(k)+": "+val), nil
}

// replaceValue puts v in place of member i's value.
func replaceValue(b []byte, o jsonObject, i int, v any, unit string) ([]byte, error) {
	m := o.members[i]
	multiline := bytes.Contains(b[m.valStart:m.valEnd], []byte("\n")) // keep the old value's layout
	val, err := render(v, lineIndent(b, m.start), unit, multiline)
	if err != nil {
		return nil, err
	}
	return splice(b, m.valStart, m.valEnd, val), nil
}

// removeMember takes member i out with its separator.
func removeMember(b []byte, o jsonObject, i int) []byte {
	switch {
	case len(o.members) == 1:
		return splice(b, o.open+1, o.close, "")
	case i < len(o.members)-1:
		return splice(b, o.members[i].start, o.members[i+1].start, "")
	default:
		return splice(b, o.members[i-1].valEnd, o.members[i].valEnd, "")
	}
}
