package oci

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/ocigate/ocigate/internal/plainjson"
)

// The hook decodes its state and the bundle's config.json first with
// internal/plainjson, which accepts only a plain subset of JSON, and
// hands anything else to encoding/json. A freshly started hook spent
// ~130 us of its ~2 ms round trip in encoding/json (building its
// decoders by reflection, scanning each document twice); plainjson
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

// fastState decodes a state document of the subset; ok false: it is not.
func fastState(b []byte) (st *specs.State, ok bool) {
	st = &specs.State{}
	s := plainjson.New(b)
	var status string
	ok = s.Fields(map[string]func() bool{
		"ociVersion":  s.StrInto(&st.Version),
		"id":          s.StrInto(&st.ID),
		"status":      s.StrInto(&status),
		"pid":         func() (ok bool) { st.Pid, ok = s.Int(); return ok },
		"bundle":      s.StrInto(&st.Bundle),
		"annotations": s.MapInto(&st.Annotations),
	})
	st.Status = specs.ContainerState(status)
	return st, ok && s.End()
}

// fastBundleView decodes a config.json of the subset; ok false: it is
// not.
func fastBundleView(b []byte) (*bundleView, bool) {
	v := &bundleView{}
	s := plainjson.New(b)
	ok := s.Fields(map[string]func() bool{
		"ociVersion":  s.StrInto(&v.Version),
		"hostname":    s.StrInto(&v.Hostname),
		"annotations": s.MapInto(&v.Annotations),
		"process": func() bool {
			v.Process = &struct {
				Args []string `json:"args,omitempty"`
			}{}
			return s.Fields(map[string]func() bool{
				"args": func() (ok bool) { v.Process.Args, ok = s.Strings(); return ok },
			})
		},
		"linux": func() bool {
			v.Linux = &struct {
				CgroupsPath string `json:"cgroupsPath,omitempty"`
			}{}
			return s.Fields(map[string]func() bool{"cgroupsPath": s.StrInto(&v.Linux.CgroupsPath)})
		},
	})
	return v, ok && s.End()
}
