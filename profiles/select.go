package profiles

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// ProfileAnnotation is the container annotation that names a profile
// explicitly. It may name a profile at least as strong as the one the
// container's identity selects, or one whose spec.selectableBy admits
// the container; any other name refuses the container.
const ProfileAnnotation = "ocigate.io/profile"

// ImageAnnotations name a container's image, in the order they are read.
// They are claims of the container's spec unless the operator trusts
// their key.
var ImageAnnotations = []string{
	"ocigate.io/image",
	"io.kubernetes.cri.image-name",
	"io.kubernetes.cri-o.ImageName",
	"org.opencontainers.image.ref.name",
}

// ContainerNameAnnotation names a Kubernetes container in its pod, as
// containerd's CRI plugin (and ocigate's NRI plugin) set it; the match
// list containers reads it.
const ContainerNameAnnotation = "io.kubernetes.cri.container-name"

// NamespaceAnnotations name a container's pod namespace as containerd's
// CRI plugin and CRI-O set them; a container's spec can set them too.
var NamespaceAnnotations = []string{"io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace"}

// WorkloadInfo is what selection knows of a container, and whom it has
// it from. What its runtime, the hook's configuration and the operator
// vouch for is its identity; its annotations, except the keys the
// operator trusts, are claims: whoever writes the container's spec sets
// them (docs/trust.md).
type WorkloadInfo struct {
	// Image is the image reference its runtime reports, or an annotation
	// whose key the operator trusts; "" when unknown.
	Image string
	// ImageDigests are digests the runtime gives for the image's content:
	// its ID, its manifest digests.
	ImageDigests []string
	// Namespace is the pod namespace of the runtime's sandbox; "" none.
	Namespace   string
	Annotations map[string]string
	// TrustedKeys are the annotation keys the operator vouches for (the
	// agent's --trusted-annotations): their values count as identity.
	TrustedKeys map[string]bool
	// Runtime names the runtime (runc, crun, podman, containerd, cri-o,
	// docker). RuntimeClaim is the annotation it was read from, when it
	// was: "" when the runtime, its bundle or the hook's flag said.
	Runtime      string
	RuntimeClaim string
	// Profile is a profile the registering client's own configuration
	// names (run-job --profile): the operator's choice, taken as is.
	Profile string
}

// Claim is one annotation of a container's spec that selection read.
type Claim struct{ Key, Value string }

func (c Claim) String() string { return c.Key + "=" + c.Value }

// trusted reports whether the operator vouches for an annotation key.
func (w WorkloadInfo) trusted(key string) bool { return w.TrustedKeys[key] }

// Selection is the profile a workload gets and why.
type Selection struct {
	Profile *Profile
	Reason  string
	// Ignored: the container's annotations chose another profile, which
	// they may not choose; it gets Profile, which its identity selects.
	Ignored *Refusal
}

// Refusal is a choice of a container's annotations that selection does
// not follow, and the rule that says why.
type Refusal struct {
	Claims    []Claim // the annotations that made the choice
	Requested string  // the profile they chose
	Profile   string  // the profile the container's identity selects; "" none
	Rule      string
}

// Error says which annotations chose what, and the rule.
func (r *Refusal) Error() string {
	parts := make([]string, len(r.Claims))
	for i, c := range r.Claims {
		parts[i] = "annotation " + c.String()
	}
	if r.Requested == "" {
		return fmt.Sprintf("%s: %s", strings.Join(parts, " and "), r.Rule)
	}
	return fmt.Sprintf("%s chose profile %q: %s", strings.Join(parts, " and "), r.Requested, r.Rule)
}

// ClaimError refuses a container whose ocigate.io/profile annotation
// names a profile it may not choose. Base is the profile its identity
// selects (nil when none does), for callers that cannot refuse a
// container (a running one, adopted or re-selected) and give it that.
type ClaimError struct {
	Refusal
	Base       *Profile
	BaseReason string
}

func (e *ClaimError) Error() string { return "refused: " + e.Refusal.Error() }

// Select picks the profile of a workload and says why:
//
//  1. a profile its registering client's configuration names
//     (WorkloadInfo.Profile), as is;
//  2. the annotation ocigate.io/profile (an unknown name is an error):
//     taken when the profile is at least as strong as the one the
//     workload's identity selects (Weaknesses) or its spec.selectableBy
//     admits the workload, else a *ClaimError: the container is refused;
//  3. otherwise, among the profiles whose spec.match holds (every list
//     given holds: an image, an annotation and a runtime of its lists
//     match), the most specific: a digest-pinned image beats any glob;
//     then the pattern with the most literal characters; then the most
//     lists given (annotations, runtimes); ties go to the first name in
//     byte order, and the reason says so; otherwise the default profile.
//
// Step 3 runs on the identity alone and again with the annotations'
// claims (an image annotation, annotation matches, a runtime read from
// annotations). When the claims choose another profile that they may not
// choose (as in 2), the identity's choice stands and Selection.Ignored
// says why.
//
// Images are normalised as docker does before matching: "nginx" is
// "docker.io/library/nginx:latest".
func Select(c *Catalog, w WorkloadInfo) (Selection, error) {
	if w.Profile != "" {
		e := c.byName[w.Profile]
		if e == nil {
			return Selection{}, fmt.Errorf("requested profile %q: no such profile (known: %s)", w.Profile, strings.Join(c.names(), ", "))
		}
		return Selection{Profile: e.profile, Reason: "requested by the registering client: run-job --profile"}, nil
	}
	base, baseReason, _, baseErr := c.best(w.identityView())
	if name, ok := w.Annotations[ProfileAnnotation]; ok {
		return c.byAnnotation(name, w, base, baseReason, baseErr)
	}
	chosen, reason, claims, err := c.best(w.claimedView())
	switch {
	case err != nil || chosen == base:
		return selection(base, baseReason), baseErr
	case w.trustedClaims(claims):
		return selection(chosen, reason), nil
	}
	why, ok := c.mayChoose(chosen, base, baseReason, w)
	if ok {
		return selection(chosen, reason+" ("+why+")"), nil
	}
	ref := &Refusal{Claims: claims, Requested: chosen.wp.Name, Rule: why}
	if baseErr != nil {
		return Selection{}, fmt.Errorf("%w; %s", baseErr, ref.Error())
	}
	ref.Profile = base.wp.Name
	sel := selection(base, baseReason)
	sel.Ignored = ref
	return sel, nil
}

// selection is e's Selection.
func selection(e *entry, reason string) Selection {
	if e == nil {
		return Selection{}
	}
	return Selection{Profile: e.profile, Reason: reason}
}

// trustedClaims reports whether every claim is of a key the operator
// trusts (then it is no claim: identity that a wider view saw).
func (w WorkloadInfo) trustedClaims(claims []Claim) bool {
	for _, c := range claims {
		if !w.trusted(c.Key) {
			return false
		}
	}
	return true
}

// byAnnotation is Select for a workload whose ocigate.io/profile names a
// profile: base is what its identity selects (baseErr when nothing).
func (c *Catalog) byAnnotation(name string, w WorkloadInfo, base *entry, baseReason string, baseErr error) (Selection, error) {
	e := c.byName[name]
	if e == nil {
		return Selection{}, fmt.Errorf("annotation %s=%q: no such profile (known: %s)", ProfileAnnotation, name, strings.Join(c.names(), ", "))
	}
	reason := fmt.Sprintf("annotation %s=%s", ProfileAnnotation, name)
	if w.trusted(ProfileAnnotation) {
		return selection(e, reason+" (a key the agent's --trusted-annotations trusts)"), nil
	}
	why, ok := c.mayChoose(e, base, baseReason, w)
	if ok {
		return selection(e, reason+" ("+why+")"), nil
	}
	ce := &ClaimError{Refusal: Refusal{Claims: []Claim{{ProfileAnnotation, name}}, Requested: name, Rule: why}, BaseReason: baseReason}
	if base != nil {
		ce.Profile, ce.Base = base.wp.Name, base.profile
	}
	if baseErr != nil {
		ce.Rule += " (" + baseErr.Error() + ")"
	}
	return Selection{}, ce
}

// mayChoose says whether a container's annotations may choose e when its
// identity selects base (nil: nothing), and why or why not.
func (c *Catalog) mayChoose(e, base *entry, baseReason string, w WorkloadInfo) (string, bool) {
	if e == base {
		return "the profile its identity selects too", true
	}
	var weak []string
	if base != nil {
		weak = Weaknesses(base.profile, e.profile)
		if len(weak) == 0 {
			return fmt.Sprintf("at least as strong as %q, which its identity selects", base.wp.Name), true
		}
	}
	if by, ok := e.admits(w); ok {
		return "spec.selectableBy admits " + by, true
	}
	notAdmitted := e.notAdmitted(w)
	if base == nil {
		return fmt.Sprintf("no profile matches the container's identity, and %s", notAdmitted), false
	}
	return fmt.Sprintf("profile %q is weaker than %q, which the container's identity selects (%s): %s; and %s",
		e.wp.Name, base.wp.Name, baseReason, strings.Join(weak, "; "), notAdmitted), false
}

// best is step 3 of Select on one view of the workload: the profile, why,
// and the claims the choice rests on.
func (c *Catalog) best(v view) (*entry, string, []Claim, error) {
	var cands []candidate
	for _, e := range c.entries {
		if cand, ok := e.match(v); ok {
			cands = append(cands, cand)
		}
	}
	if len(cands) == 0 {
		if c.def == nil {
			return nil, "", nil, fmt.Errorf("no profile matches image %q and there is no default profile", v.ref.String())
		}
		return c.def, "default", v.unmatchedClaims(), nil
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if d := cands[i].score.cmp(cands[j].score); d != 0 {
			return d > 0
		}
		return cands[i].e.wp.Name < cands[j].e.wp.Name
	})
	best := cands[0]
	reason := strings.Join(best.why, " and ")
	var tied []string
	for _, other := range cands[1:] {
		if other.score.cmp(best.score) == 0 {
			tied = append(tied, fmt.Sprintf("%q", other.e.wp.Name))
		}
	}
	if len(tied) > 0 {
		reason += fmt.Sprintf(" (tie with %s, broken by name)", strings.Join(tied, ", "))
	}
	if len(best.claims) == 0 {
		best.claims = v.unmatchedClaims()
	}
	return best.e, reason, best.claims, nil
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
	e      *entry
	score  score
	why    []string
	claims []Claim // the annotations of the container's spec the match used
}

// match checks every list of e's spec.match against a view.
func (e *entry) match(v view) (candidate, bool) {
	m := e.wp.Match
	if len(m.Images) == 0 && len(m.Annotations) == 0 && len(m.Runtimes) == 0 && len(m.Containers) == 0 {
		return candidate{}, false // the default profile: matches by default only
	}
	cand := candidate{e: e}
	if len(e.images) > 0 {
		pat, ok := bestPattern(e.images, v.ref, v.digests)
		if !ok {
			return candidate{}, false
		}
		cand.score = pat.score()
		cand.why = append(cand.why, fmt.Sprintf("image %s matched %s", v.ref, pat))
		cand.claims = appendClaim(cand.claims, v.imageClaim)
	}
	if len(e.annotations) > 0 {
		a, ok := e.matchAnnotation(v.annotations)
		if !ok {
			return candidate{}, false
		}
		cand.why = append(cand.why, "annotation "+a.text)
		if !v.trusted[a.key] {
			cand.claims = append(cand.claims, Claim{a.key, v.annotations[a.key]})
		}
		cand.score.lists++
	}
	if len(m.Runtimes) > 0 {
		if !slices.Contains(m.Runtimes, v.runtime) || v.runtime == "" {
			return candidate{}, false
		}
		cand.why = append(cand.why, "runtime "+v.runtime)
		cand.claims = appendClaim(cand.claims, v.runtimeClaim)
		cand.score.lists++
	}
	if len(m.Containers) > 0 {
		name, ok := v.annotations[ContainerNameAnnotation]
		if !ok || !slices.ContainsFunc(m.Containers, func(g string) bool { return glob(g, name) }) {
			return candidate{}, false
		}
		cand.why = append(cand.why, "container "+name)
		if !v.trusted[ContainerNameAnnotation] {
			cand.claims = append(cand.claims, Claim{ContainerNameAnnotation, name})
		}
		cand.score.lists++
	}
	return cand, true
}

// bestPattern returns the most specific pattern that matches.
func bestPattern(pats []imagePattern, ref imageRef, digests []string) (imagePattern, bool) {
	best := -1
	for i, pat := range pats {
		if pat.matches(ref, digests) && (best < 0 || pat.score().cmp(pats[best].score()) > 0) {
			best = i
		}
	}
	if best < 0 {
		return imagePattern{}, false
	}
	return pats[best], true
}

// matchAnnotation returns the first of e's annotation matches that holds.
func (e *entry) matchAnnotation(annotations map[string]string) (annotationMatch, bool) {
	for _, a := range e.annotations {
		v, ok := annotations[a.key]
		if ok && (a.re == nil && v == a.equals || a.re != nil && a.re.MatchString(v)) {
			return a, true
		}
	}
	return annotationMatch{}, false
}

func appendClaim(claims []Claim, c *Claim) []Claim {
	if c == nil {
		return claims
	}
	return append(claims, *c)
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
// (the reference's own, or one the runtime gives for the image's
// content) and its name (with or without tag) to match; a glob matches the
// reference with its tag, or in full.
func (p imagePattern) matches(ref imageRef, digests []string) bool {
	if ref.repo == "" {
		return false
	}
	if p.digest != "" {
		pinned := ref.digest == p.digest || slices.Contains(digests, p.digest)
		return pinned && (glob(p.glob, ref.repo) || ref.tag != "" && glob(p.glob, ref.repo+":"+ref.tag))
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
