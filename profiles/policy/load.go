package policy

import (
	"fmt"
	"os"
	"path/filepath"
)

// LoadDir parses every *.yaml and *.yml file directly in dir (not in
// subdirectories), in name order, and checks them together: policy names
// (inline policies included) and profile names are unique, every policy a
// profile names exists as a TracingPolicy document, and at most one profile
// has default: true. On any problem it returns nothing but an Errors with
// every problem of every file. Inline policies are not in policies; they
// are reached through their profile.
func LoadDir(dir string) (policies []*TracingPolicy, profiles []*WorkloadProfile, err error) {
	entries, rerr := os.ReadDir(dir)
	if rerr != nil {
		return nil, nil, Errors{{File: dir, Msg: rerr.Error()}}
	}
	var results []*result
	var errs Errors
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if ext != ".yaml" && ext != ".yml" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if st, serr := os.Stat(path); serr == nil && st.IsDir() {
			continue
		}
		data, ferr := readFile(path)
		if ferr != nil {
			errs = append(errs, ferr)
			continue
		}
		r := parse(path, data)
		errs = append(errs, r.errs...)
		results = append(results, r)
	}
	errs = append(errs, crossCheck(results, true)...)
	if len(errs) > 0 {
		return nil, nil, errs.err()
	}
	for _, r := range results {
		for _, d := range r.docs {
			if d.Policy != nil {
				policies = append(policies, d.Policy)
			} else {
				profiles = append(profiles, d.Profile)
			}
		}
	}
	return policies, profiles, nil
}

// crossCheck checks names and defaults across results and, with refs, that
// the policies profiles name by reference exist.
func crossCheck(results []*result, refs bool) Errors {
	var errs Errors
	add := func(s site, format string, args ...any) {
		errs = append(errs, &Error{File: s.pos.File, Line: s.pos.Line, Field: s.field, Msg: fmt.Sprintf(format, args...)})
	}
	first := map[[2]string]site{}
	var firstDefault *site
	standalone := map[string]bool{}
	for _, r := range results {
		for _, s := range r.names {
			key := [2]string{s.kind, s.name}
			if prev, dup := first[key]; dup {
				add(s, "duplicate %s name %q (also at %s:%d)", s.kind, s.name, prev.pos.File, prev.pos.Line)
				continue
			}
			first[key] = s
		}
		for _, s := range r.defaults {
			if firstDefault != nil {
				add(s, "profile %q is a second default profile (the first is %q at %s:%d)", s.name, firstDefault.name, firstDefault.pos.File, firstDefault.pos.Line)
				continue
			}
			firstDefault = &s
		}
		for _, d := range r.docs {
			if d.Policy != nil && d.Policy.Name != "" {
				standalone[d.Policy.Name] = true
			}
		}
	}
	if !refs {
		return errs
	}
	for _, r := range results {
		for _, s := range r.refs {
			if standalone[s.name] {
				continue
			}
			if _, inline := first[[2]string{"TracingPolicy", s.name}]; inline {
				add(s, "%q is an inline policy of another profile; only TracingPolicy documents can be referenced by name", s.name)
				continue
			}
			add(s, "unknown TracingPolicy %q (no document in the loaded files has this metadata.name)", s.name)
		}
	}
	return errs
}
