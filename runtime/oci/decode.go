package oci

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/ocigate/ocigate/internal/errwrap"
	"github.com/ocigate/ocigate/internal/plainjson"
)

// The hook decodes its state and the bundle's config.json with
// internal/plainjson, not encoding/json: a freshly started hook spent
// ~130 us of its ~2 ms round trip in encoding/json (building its
// decoders by reflection, scanning each document twice), and linking
// it (with runtime-spec's types, reflect and fmt) cost every start
// ~100 us more. plainjson decodes with encoding/json's semantics for
// the shapes read here (FuzzDecodeMatchesEncodingJSON holds it to
// them): what it accepts, json.Unmarshal into State or bundleView
// accepts with the same values, and what it refuses, encoding/json
// refuses too.

// parseState decodes a state document, whitespace around it allowed.
func parseState(b []byte) (*State, *plainjson.Scanner) {
	st := &State{}
	s := plainjson.New(b)
	s.Fields(map[string]func() bool{
		"ociVersion":  s.StrInto(&st.Version),
		"id":          s.StrInto(&st.ID),
		"status":      s.StrInto(&st.Status),
		"pid":         s.IntInto(&st.Pid),
		"bundle":      s.StrInto(&st.Bundle),
		"annotations": s.MapInto(&st.Annotations),
	})
	return st, s
}

// parseBundleView decodes the members of a config.json that
// LoadContainer uses.
func parseBundleView(b []byte) (*bundleView, *plainjson.Scanner) {
	v := &bundleView{}
	s := plainjson.New(b)
	s.Fields(map[string]func() bool{
		"ociVersion":  s.StrInto(&v.Version),
		"hostname":    s.StrInto(&v.Hostname),
		"annotations": s.MapInto(&v.Annotations),
		"process": func() bool {
			if s.Null() {
				v.Process = nil
				return true
			}
			if v.Process == nil {
				v.Process = &viewProcess{}
			}
			return s.Fields(map[string]func() bool{"args": s.StringsInto(&v.Process.Args)})
		},
		"linux": func() bool {
			if s.Null() {
				v.Linux = nil
				return true
			}
			if v.Linux == nil {
				v.Linux = &viewLinux{}
			}
			return s.Fields(map[string]func() bool{"cgroupsPath": s.StrInto(&v.Linux.CgroupsPath)})
		},
	})
	return v, s
}

// decodeObject decodes data, which what says what it is (a message's
// start), with parse: it must be one JSON object, whitespace around it
// allowed.
func decodeObject[T any](what string, data []byte, parse func([]byte) (T, *plainjson.Scanner)) (T, error) {
	var zero T
	trimmed := bytes.TrimLeft(data, jsonSpace)
	if len(trimmed) == 0 {
		return zero, errors.New(what + " is empty")
	}
	if trimmed[0] != '{' {
		return zero, errors.New(what + " is not a JSON object (starts with " + strconv.QuoteRune(rune(trimmed[0])) + ")")
	}
	v, s := parse(data)
	if err := s.Err(); err != nil {
		return zero, errwrap.Wrap("decoding "+what, err)
	}
	if rest := bytes.TrimLeft(data[s.Offset():], jsonSpace); len(rest) > 0 {
		return zero, errors.New(what + " has trailing data after the JSON object (" + strconv.Itoa(len(rest)) +
			" bytes, starting " + strconv.Quote(preview(rest)) + ")")
	}
	return v, nil
}

// CheckObject returns nil if data is one JSON object, whitespace around
// it allowed, and otherwise the error the hook's decoding of a document
// called what would return (empty, not an object, invalid, trailing
// data).
func CheckObject(what string, data []byte) error {
	_, err := decodeObject(what, data, func(b []byte) (struct{}, *plainjson.Scanner) {
		s := plainjson.New(b)
		s.Skip()
		return struct{}{}, s
	})
	return err
}
