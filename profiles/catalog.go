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
	selectable   []imagePattern // spec.selectableBy.images
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

// linker resolves names across files, compiles and builds the catalog.
type linker struct {
	c           *Catalog
	cp          *compiler
	seen        map[docName]seenDoc
	policies    map[string]*source
	order       []*source // every policy admitted, replaced ones included
	profiles    map[string]*entry
	userDefault *entry
}

// docName is a document's kind and metadata.name.
type docName struct{ kind, name string }

// seenDoc is where a name was first defined.
type seenDoc struct {
	pos     policy.Pos
	builtin bool
}

// link resolves names across files, compiles and builds the catalog.
func link(all []fileDocs) (*Catalog, policy.Errors) {
	l := &linker{c: &Catalog{byName: map[string]*entry{}}, cp: &compiler{}, seen: map[docName]seenDoc{},
		policies: map[string]*source{}, profiles: map[string]*entry{}}
	for _, f := range all {
		for _, d := range f.docs {
			if tp := d.Policy; tp != nil && l.admit("TracingPolicy", tp.Name, tp.Pos, f.builtin) {
				l.addPolicy(tp, f.builtin)
			}
			if wp := d.Profile; wp != nil && l.admit("WorkloadProfile", wp.Name, wp.Pos, f.builtin) {
				l.addProfile(wp, f.builtin)
			}
		}
	}
	l.compilePolicies()
	l.compileProfiles()
	if len(l.cp.errs) > 0 {
		return nil, l.cp.errs
	}
	l.chooseDefault()
	l.sortEntries()
	return l.c, nil
}

// admit reports whether a document of that kind and name is kept: the
// first one is; a user file's replaces a built-in one (noted); any other
// second one is a duplicate (an error).
func (l *linker) admit(kind, name string, pos policy.Pos, builtin bool) bool {
	key := docName{kind, name}
	if prev, ok := l.seen[key]; ok {
		if !prev.builtin || builtin {
			l.cp.errorf(pos, "metadata.name", "duplicate %s name %q (also at %s)", kind, name, at(prev.pos))
			return false
		}
		l.c.notes = append(l.c.notes, fmt.Sprintf("%s: %s %q replaces the built-in one", at(pos), kind, name))
	}
	l.seen[key] = seenDoc{pos: pos, builtin: builtin}
	return true
}

func (l *linker) addPolicy(tp *policy.TracingPolicy, builtin bool) {
	s := &source{tp: tp, builtin: builtin}
	l.policies[tp.Name] = s
	l.order = append(l.order, s)
}

// addProfile records a profile; a user file's second default is an error.
func (l *linker) addProfile(wp *policy.WorkloadProfile, builtin bool) {
	e := &entry{wp: wp, builtin: builtin}
	l.profiles[wp.Name] = e
	if !wp.Default || builtin {
		return
	}
	if first := l.userDefault; first != nil {
		l.cp.errorf(wp.Pos, "spec.default", "profile %q is a second default profile (the first is %q at %s)", wp.Name, first.wp.Name, at(first.wp.Pos))
		return
	}
	l.userDefault = e
}

// compilePolicies compiles the standalone policies not replaced.
func (l *linker) compilePolicies() {
	for _, s := range l.order {
		if l.policies[s.tp.Name] != s {
			continue // replaced
		}
		compiled, err := CompilePolicy(s.tp)
		if err != nil {
			l.cp.errs = appendErrs(l.cp.errs, err)
			continue
		}
		s.compiled = compiled
		if !s.builtin {
			l.noteAll(compiled.Notes)
		}
	}
}

// compileProfiles compiles every profile, its policies resolved, into
// the catalog.
func (l *linker) compileProfiles() {
	for name, e := range l.profiles {
		n := len(l.cp.errs)
		e.profile, e.trackSockets = assemble(e.wp, l.resolve, l.cp)
		e.compileMatch(l.cp)
		if len(l.cp.errs) > n {
			continue
		}
		l.c.byName[name] = e
		l.c.entries = append(l.c.entries, e)
	}
}

// resolve compiles a profile's spec.policies[i]: inline, or a standalone
// policy by name.
func (l *linker) resolve(i int, ref policy.PolicyRef) *Compiled {
	path := fmt.Sprintf("spec.policies[%d]", i)
	if ref.Inline != nil {
		compiled, err := compilePolicy(ref.Inline, path+".inline")
		l.cp.errs = appendErrs(l.cp.errs, err)
		if compiled != nil {
			l.noteAll(compiled.Notes)
		}
		return compiled
	}
	s := l.policies[ref.Name]
	if s == nil {
		l.cp.errorf(ref.Pos, path+".name", "unknown TracingPolicy %q (no loaded file, built-ins included, has this metadata.name)", ref.Name)
		return nil
	}
	if s.compiled == nil {
		// Its own errors are reported once, where it is written.
		l.cp.errorf(ref.Pos, path+".name", "TracingPolicy %q (%s) does not compile", ref.Name, at(s.tp.Pos))
	}
	return s.compiled
}

// noteAll adds a policy's notes to the catalog's.
func (l *linker) noteAll(notes []policy.Note) {
	for _, n := range notes {
		l.c.notes = append(l.c.notes, n.String())
	}
}

// chooseDefault makes the user's default profile the default (noting the
// built-in one it displaces), else the built-in default.
func (l *linker) chooseDefault() {
	c := l.c
	if def := l.userDefault; def != nil {
		c.def = def
		for _, e := range c.entries {
			if e.builtin && e.wp.Default {
				c.notes = append(c.notes, fmt.Sprintf("%s: profile %q is the default instead of the built-in %q", at(def.wp.Pos), def.wp.Name, e.wp.Name))
			}
		}
		return
	}
	for _, e := range c.entries {
		if e.wp.Default {
			c.def = e
		}
	}
	if c.def == nil && len(c.entries) > 0 {
		c.notes = append(c.notes, "no profile has default: true: containers no profile matches are refused")
	}
}

// sortEntries puts the default first, then the others by name.
func (l *linker) sortEntries() {
	c := l.c
	sort.Slice(c.entries, func(i, j int) bool {
		a, b := c.entries[i], c.entries[j]
		if (a == c.def) != (b == c.def) {
			return a == c.def
		}
		return a.wp.Name < b.wp.Name
	})
}

// compileMatch prepares spec.match and spec.selectableBy for selection.
func (e *entry) compileMatch(c *compiler) {
	for _, img := range e.wp.Match.Images {
		e.images = append(e.images, parsePattern(img))
	}
	if sb := e.wp.SelectableBy; sb != nil {
		for _, img := range sb.Images {
			e.selectable = append(e.selectable, parsePattern(img))
		}
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
