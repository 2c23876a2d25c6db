package profiles

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// ProfileAnnotation is the container annotation that names a profile
// explicitly; it takes precedence over every spec.match.
const ProfileAnnotation = "ocigate.io/profile"

// WorkloadInfo is what selection knows of a container.
type WorkloadInfo struct {
	Image       string // image reference as the runtime reports it
	Annotations map[string]string
	Runtime     string // runc, crun, podman, containerd, cri-o, docker
}

// Select picks the profile of a workload and says why:
//
//  1. the annotation ocigate.io/profile names it (an unknown name is an
//     error: the container is refused rather than given another profile);
//  2. otherwise, among the profiles whose spec.match holds (every list
//     given holds: an image, an annotation and a runtime of its lists
//     match), the most specific: a digest-pinned image beats any glob;
//     then the pattern with the most literal characters; then the most
//     lists given (annotations, runtimes); ties go to the first name in
//     byte order, and the reason says so;
//  3. otherwise the default profile (an error when there is none).
//
// Images are normalised as docker does before matching: "nginx" is
// "docker.io/library/nginx:latest".
func Select(c *Catalog, w WorkloadInfo) (p *Profile, reason string, err error) {
	if name, ok := w.Annotations[ProfileAnnotation]; ok {
		e := c.byName[name]
		if e == nil {
			return nil, "", fmt.Errorf("annotation %s=%q: no such profile (known: %s)", ProfileAnnotation, name, strings.Join(c.names(), ", "))
		}
		return e.profile, fmt.Sprintf("annotation %s=%s", ProfileAnnotation, name), nil
	}
	ref := normalizeImage(w.Image)
	var cands []candidate
	for _, e := range c.entries {
		if cand, ok := e.match(ref, w); ok {
			cands = append(cands, cand)
		}
	}
	if len(cands) == 0 {
		if c.def == nil {
			return nil, "", fmt.Errorf("no profile matches image %q and there is no default profile", w.Image)
		}
		return c.def.profile, "default", nil
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if d := cands[i].score.cmp(cands[j].score); d != 0 {
			return d > 0
		}
		return cands[i].e.wp.Name < cands[j].e.wp.Name
	})
	best := cands[0]
	reason = strings.Join(best.why, " and ")
	var tied []string
	for _, other := range cands[1:] {
		if other.score.cmp(best.score) == 0 {
			tied = append(tied, fmt.Sprintf("%q", other.e.wp.Name))
		}
	}
	if len(tied) > 0 {
		reason += fmt.Sprintf(" (tie with %s, broken by name)", strings.Join(tied, ", "))
	}
	return best.e.profile, reason, nil
}

func (c *Catalog) names() []string {
	out := make([]string, len(c.entries))
	for i, e := range c.entries {
		out[i] = e.wp.Name
	}
	return out
}

// score orders matching profiles by specificity.
type score struct {
	digest  bool // an image pattern pinned by digest matched
	literal int  // literal characters of the matching image pattern
	lists   int  // annotation and runtime lists given
}

func (a score) cmp(b score) int {
	switch {
	case a.digest != b.digest:
		if a.digest {
			return 1
		}
		return -1
	case a.literal != b.literal:
		return a.literal - b.literal
	}
	return a.lists - b.lists
}

type candidate struct {
	e     *entry
	score score
	why   []string
}

// match checks every list of e's spec.match.
func (e *entry) match(ref imageRef, w WorkloadInfo) (candidate, bool) {
	m := e.wp.Match
	if len(m.Images) == 0 && len(m.Annotations) == 0 && len(m.Runtimes) == 0 {
		return candidate{}, false // the default profile: matches by default only
	}
	cand := candidate{e: e}
	if len(e.images) > 0 {
		best := -1
		for i, pat := range e.images {
			if !pat.matches(ref) {
				continue
			}
			if best < 0 || pat.score().cmp(e.images[best].score()) > 0 {
				best = i
			}
		}
		if best < 0 {
			return candidate{}, false
		}
		pat := e.images[best]
		cand.score = pat.score()
		cand.why = append(cand.why, fmt.Sprintf("image %s matched %s", ref, pat))
	}
	if len(e.annotations) > 0 {
		found := false
		for _, a := range e.annotations {
			v, ok := w.Annotations[a.key]
			if ok && (a.re == nil && v == a.equals || a.re != nil && a.re.MatchString(v)) {
				cand.why = append(cand.why, "annotation "+a.text)
				found = true
				break
			}
		}
		if !found {
			return candidate{}, false
		}
		cand.score.lists++
	}
	if len(m.Runtimes) > 0 {
		found := false
		for _, r := range m.Runtimes {
			if r == w.Runtime {
				found = true
			}
		}
		if !found {
			return candidate{}, false
		}
		cand.why = append(cand.why, "runtime "+w.Runtime)
		cand.score.lists++
	}
	return cand, true
}

// imageRef is a normalised image reference.
type imageRef struct {
	repo   string // "docker.io/library/nginx"; "" when there is no name
	tag    string
	digest string // "sha256:..."
}

func (r imageRef) String() string {
	s := r.repo
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest
	}
	return s
}

var imageIDRE = regexp.MustCompile(`^(sha256:)?[0-9a-f]{64}$`)

// normalizeImage normalises a reference as docker does: a name without a
// registry is on docker.io, a one-component docker.io name is in library/,
// and a reference without tag or digest is :latest. A bare image ID or an
// empty string has no name and matches no image pattern.
func normalizeImage(s string) imageRef {
	s = strings.TrimSpace(s)
	if s == "" || imageIDRE.MatchString(s) {
		return imageRef{}
	}
	var r imageRef
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s, r.digest = s[:i], s[i+1:]
	}
	if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, '/') {
		s, r.tag = s[:i], s[i+1:]
	}
	r.repo = normalizeName(s)
	if r.tag == "" && r.digest == "" {
		r.tag = "latest"
	}
	return r
}

// normalizeName adds docker's default registry and library/ namespace.
func normalizeName(s string) string {
	first, rest, hasSlash := strings.Cut(s, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		if first == "index.docker.io" {
			first = "docker.io"
		}
		if first == "docker.io" && !strings.Contains(rest, "/") {
			rest = "library/" + rest
		}
		return first + "/" + rest
	}
	if !hasSlash {
		return "docker.io/library/" + s
	}
	return "docker.io/" + s
}

// imagePattern is one spec.match.images entry.
type imagePattern struct {
	written string
	glob    string // normalised name glob, with the tag when given
	digest  string // "sha256:..." when pinned
	literal int    // literal characters: specificity
}

func (p imagePattern) score() score { return score{digest: p.digest != "", literal: p.literal} }

func (p imagePattern) String() string {
	norm := p.glob
	if p.digest != "" {
		norm += "@" + p.digest
	}
	if norm == p.written {
		return fmt.Sprintf("%q", p.written)
	}
	return fmt.Sprintf("%q (%s)", p.written, norm)
}

const globMeta = `*?[\`

// parsePattern normalises an image pattern like a reference where it is
// literal: the registry and library/ are added when its first component
// has no wildcard, and :latest when it has no wildcard, tag or digest at
// all ("nginx" means nginx:latest; write "nginx:*" for every tag).
func parsePattern(s string) imagePattern {
	p := imagePattern{written: s}
	name := s
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		name, p.digest = s[:i], s[i+1:]
	}
	tag := ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i:]
	}
	first, _, _ := strings.Cut(name, "/")
	if !strings.ContainsAny(first, globMeta) {
		name = normalizeName(name)
	}
	if tag == "" && p.digest == "" && !strings.ContainsAny(name, globMeta) {
		tag = ":latest"
	}
	p.glob = name + tag
	p.literal = literalChars(p.glob) + len(p.digest)
	return p
}

// literalChars counts the characters of a path.Match pattern that match
// only themselves.
func literalChars(glob string) int {
	n := 0
	for i := 0; i < len(glob); i++ {
		switch glob[i] {
		case '*', '?':
		case '\\':
			i++
			n++
		case '[':
			if j := strings.IndexByte(glob[i+1:], ']'); j >= 0 {
				i += j + 1
			}
		default:
			n++
		}
	}
	return n
}

// matches reports whether ref matches: a pinned pattern needs the digest
// and its name (with or without tag) to match; a glob matches the
// reference with its tag, or in full.
func (p imagePattern) matches(ref imageRef) bool {
	if ref.repo == "" {
		return false
	}
	if p.digest != "" {
		return ref.digest == p.digest && (glob(p.glob, ref.repo) || ref.tag != "" && glob(p.glob, ref.repo+":"+ref.tag))
	}
	if ref.tag != "" && glob(p.glob, ref.repo+":"+ref.tag) {
		return true
	}
	return glob(p.glob, ref.String())
}

func glob(pattern, s string) bool {
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}
