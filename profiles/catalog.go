package profiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"github.com/ocigate/ocigate/profiles/policy"
)

// Catalog is every compiled profile the agent knows: the built-in ones and
// the users'. It is read-only once built.
type Catalog struct {
	entries []*entry // default first, then by name
	byName  map[string]*entry
	def     *entry
	notes   []string
}

// entry is one compiled WorkloadProfile and what selection needs of it.
type entry struct {
	wp           *policy.WorkloadProfile
	profile      *Profile
	builtin      bool
	trackSockets bool
	images       []imagePattern
	annotations  []annotationMatch
}

type annotationMatch struct {
	key, equals string
	re          *regexp.Regexp // nil: equals
	text        string         // as written, for reasons
}

// fileDocs is the documents of one file.
type fileDocs struct {
	file    string
	docs    []policy.Document
	builtin bool
}

// source is a standalone TracingPolicy and where it came from.
type source struct {
	tp       *policy.TracingPolicy
	builtin  bool
	compiled *Compiled // nil when it failed to compile
}

// NewCatalog loads the embedded built-in profiles (when builtins is set)
// and then every *.yaml and *.yml file directly in each of dirs, in name
// order, and compiles every profile. A directory that does not exist adds
// a note, not an error.
//
// User files may reference the built-in policies. A user TracingPolicy or
// WorkloadProfile with the name of a built-in one replaces it, and a user
// profile with default: true becomes the default; Notes says so. On any
// problem NewCatalog returns a policy.Errors with every problem, each
// "file:line: field: message".
func NewCatalog(builtins bool, dirs ...string) (*Catalog, error) {
	var files, notes []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			notes = append(notes, fmt.Sprintf("profiles directory %s does not exist: no profiles from it", dir))
			continue
		}
		if err != nil {
			return nil, policy.Errors{{File: dir, Msg: err.Error()}}
		}
		for _, e := range entries {
			ext := filepath.Ext(e.Name())
			if (ext == ".yaml" || ext == ".yml") && !e.IsDir() {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	c, err := NewCatalogFiles(builtins, files...)
	if c != nil {
		c.notes = append(notes, c.notes...)
	}
	return c, err
}

// NewCatalogFiles is NewCatalog for a list of files (profiles check).
func NewCatalogFiles(builtins bool, files ...string) (*Catalog, error) {
	var all []fileDocs
	var errs policy.Errors
	if builtins {
		docs, err := builtinDocs()
		if err != nil {
			return nil, fmt.Errorf("built-in profiles: %w", err)
		}
		all = docs
	}
	for _, f := range files {
		docs, err := policy.ParseFile(f)
		if err != nil {
			errs = appendErrs(errs, err)
			continue
		}
		all = append(all, fileDocs{file: f, docs: docs})
	}
	c, lerrs := link(all)
	errs = append(errs, lerrs...)
	if len(errs) > 0 {
		sortErrs(errs)
		return nil, errs
	}
	return c, nil
}

// link resolves names across files, compiles and builds the catalog.
func link(all []fileDocs) (*Catalog, policy.Errors) {
	c := &Catalog{byName: map[string]*entry{}}
	cp := &compiler{}
	policies := map[string]*source{}
	var order []*source
	for _, f := range all {
		for _, d := range f.docs {
			tp := d.Policy
			if tp == nil {
				continue
			}
			if prev := policies[tp.Name]; prev != nil {
				if !prev.builtin || f.builtin {
					cp.errorf(tp.Pos, "metadata.name", "duplicate TracingPolicy name %q (also at %s)", tp.Name, at(prev.tp.Pos))
					continue
				}
				c.notes = append(c.notes, fmt.Sprintf("%s: TracingPolicy %q replaces the built-in one", at(tp.Pos), tp.Name))
			}
			s := &source{tp: tp, builtin: f.builtin}
			policies[tp.Name] = s
			order = append(order, s)
		}
	}
	for _, s := range order {
		if policies[s.tp.Name] != s {
			continue // replaced
		}
		compiled, err := CompilePolicy(s.tp)
		if err != nil {
			cp.errs = appendErrs(cp.errs, err)
			continue
		}
		s.compiled = compiled
	}

	profiles := map[string]*entry{}
	var userDefault *entry
	for _, f := range all {
		for _, d := range f.docs {
			wp := d.Profile
			if wp == nil {
				continue
			}
			if prev := profiles[wp.Name]; prev != nil {
				if !prev.builtin || f.builtin {
					cp.errorf(wp.Pos, "metadata.name", "duplicate WorkloadProfile name %q (also at %s)", wp.Name, at(prev.wp.Pos))
					continue
				}
				c.notes = append(c.notes, fmt.Sprintf("%s: WorkloadProfile %q replaces the built-in one", at(wp.Pos), wp.Name))
			}
			e := &entry{wp: wp, builtin: f.builtin}
			profiles[wp.Name] = e
			if wp.Default && !f.builtin {
				if userDefault != nil {
					cp.errorf(wp.Pos, "spec.default", "profile %q is a second default profile (the first is %q at %s)", wp.Name, userDefault.wp.Name, at(userDefault.wp.Pos))
					continue
				}
				userDefault = e
			}
		}
	}
	for name, e := range profiles {
		n := len(cp.errs)
		resolve := func(i int, ref policy.PolicyRef) *Compiled {
			path := fmt.Sprintf("spec.policies[%d]", i)
			if ref.Inline != nil {
				compiled, err := compilePolicy(ref.Inline, path+".inline")
				cp.errs = appendErrs(cp.errs, err)
				return compiled
			}
			s := policies[ref.Name]
			if s == nil {
				cp.errorf(ref.Pos, path+".name", "unknown TracingPolicy %q (no loaded file, built-ins included, has this metadata.name)", ref.Name)
				return nil
			}
			if s.compiled == nil {
				// Its own errors are reported once, where it is written.
				cp.errorf(ref.Pos, path+".name", "TracingPolicy %q (%s) does not compile", ref.Name, at(s.tp.Pos))
			}
			return s.compiled
		}
		e.profile, e.trackSockets = assemble(e.wp, resolve, cp)
		e.compileMatch(cp)
		if len(cp.errs) > n {
			continue
		}
		c.byName[name] = e
		c.entries = append(c.entries, e)
	}
	if len(cp.errs) > 0 {
		return nil, cp.errs
	}

	switch {
	case userDefault != nil:
		c.def = userDefault
		for _, e := range c.entries {
			if e.builtin && e.wp.Default {
				c.notes = append(c.notes, fmt.Sprintf("%s: profile %q is the default instead of the built-in %q", at(userDefault.wp.Pos), userDefault.wp.Name, e.wp.Name))
			}
		}
	default:
		for _, e := range c.entries {
			if e.wp.Default {
				c.def = e
			}
		}
		if c.def == nil && len(c.entries) > 0 {
			c.notes = append(c.notes, "no profile has default: true: containers no profile matches are refused")
		}
	}
	sort.Slice(c.entries, func(i, j int) bool {
		a, b := c.entries[i], c.entries[j]
		if (a == c.def) != (b == c.def) {
			return a == c.def
		}
		return a.wp.Name < b.wp.Name
	})
	return c, nil
}

// compileMatch prepares spec.match for selection.
func (e *entry) compileMatch(c *compiler) {
	for _, img := range e.wp.Match.Images {
		e.images = append(e.images, parsePattern(img))
	}
	for i, a := range e.wp.Match.Annotations {
		m := annotationMatch{key: a.Key, equals: a.Equals, text: a.Key + "=" + a.Equals}
		if a.Regex != "" {
			re, err := regexp.Compile(a.Regex)
			if err != nil {
				c.errorf(a.Pos, fmt.Sprintf("spec.match.annotations[%d].regex", i), "%v", err)
				continue
			}
			m.re, m.text = re, fmt.Sprintf("%s=~%s", a.Key, a.Regex)
		}
		e.annotations = append(e.annotations, m)
	}
}

// Profiles returns every profile: the default first, then by name.
func (c *Catalog) Profiles() []*Profile {
	out := make([]*Profile, len(c.entries))
	for i, e := range c.entries {
		out[i] = e.profile
	}
	return out
}

// Default returns the default profile, or nil when no profile has
// default: true.
func (c *Catalog) Default() *Profile {
	if c.def == nil {
		return nil
	}
	return c.def.profile
}

// Get returns the profile of that name.
func (c *Catalog) Get(name string) (*Profile, bool) {
	e := c.byName[name]
	if e == nil {
		return nil, false
	}
	return e.profile, true
}

// TrackSockets reports whether the named profile asks for socket
// ownership tracking (sk_alloc with TrackSock).
func (c *Catalog) TrackSockets(name string) bool {
	e := c.byName[name]
	return e != nil && e.trackSockets
}

// Notes are what the caller should log: built-ins replaced by user files,
// another default, directories that do not exist.
func (c *Catalog) Notes() []string { return c.notes }

// appendErrs appends err's errors to errs; err is a policy.Errors or any
// error (kept as one entry without position).
func appendErrs(errs policy.Errors, err error) policy.Errors {
	if err == nil {
		return errs
	}
	var pe policy.Errors
	if errors.As(err, &pe) {
		return append(errs, pe...)
	}
	return append(errs, &policy.Error{Msg: err.Error()})
}

// sortErrs orders errors by file, then line, stably.
func sortErrs(es policy.Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].File != es[j].File {
			return es[i].File < es[j].File
		}
		return es[i].Line < es[j].Line
	})
}

// at formats a position as "file:line".
func at(p policy.Pos) string { return fmt.Sprintf("%s:%d", p.File, p.Line) }
