package profiles

import (
	"fmt"
	"strings"
)

// view is a workload as one pass of selection sees it: its identity
// alone, or with the claims of its annotations.
type view struct {
	ref          imageRef
	digests      []string
	imageClaim   *Claim // the image is an annotation's claim
	annotations  map[string]string
	trusted      map[string]bool
	runtime      string
	runtimeClaim *Claim // the runtime was read from an annotation
}

// identityView is what the runtime, the hook's configuration and the
// operator vouch for: the image, the runtime unless an annotation named
// it, and the annotations whose key the operator trusts.
func (w WorkloadInfo) identityView() view {
	v := view{ref: normalizeImage(w.Image), digests: w.ImageDigests, annotations: map[string]string{}, trusted: w.TrustedKeys}
	for k, val := range w.Annotations {
		if w.trusted(k) {
			v.annotations[k] = val
		}
	}
	if w.RuntimeClaim == "" || w.trusted(w.RuntimeClaim) {
		v.runtime = w.Runtime
	}
	return v
}

// claimedView is the workload with every claim of its annotations taken
// at its word: an image annotation names its image, every annotation
// counts for match.annotations, a runtime read from annotations counts.
func (w WorkloadInfo) claimedView() view {
	v := view{ref: normalizeImage(w.Image), digests: w.ImageDigests, annotations: w.Annotations, trusted: w.TrustedKeys, runtime: w.Runtime}
	if c := w.imageClaim(); c != nil {
		v.ref, v.digests, v.imageClaim = normalizeImage(c.Value), nil, c
	}
	if w.RuntimeClaim != "" && !w.trusted(w.RuntimeClaim) {
		v.runtimeClaim = &Claim{w.RuntimeClaim, w.Annotations[w.RuntimeClaim]}
	}
	return v
}

// imageClaim is the first image annotation, when the operator does not
// trust its key and it names another image than the identity's.
func (w WorkloadInfo) imageClaim() *Claim {
	for _, k := range ImageAnnotations {
		v := w.Annotations[k]
		if v == "" {
			continue
		}
		if w.trusted(k) || normalizeImage(v) == normalizeImage(w.Image) {
			return nil
		}
		return &Claim{k, v}
	}
	return nil
}

// namespaceClaim is the first pod namespace annotation, when the operator
// does not trust its key and it names another namespace than the
// runtime's.
func (w WorkloadInfo) namespaceClaim() *Claim {
	for _, k := range NamespaceAnnotations {
		v := w.Annotations[k]
		if v == "" {
			continue
		}
		if w.trusted(k) || v == w.Namespace {
			return nil
		}
		return &Claim{k, v}
	}
	return nil
}

// unmatchedClaims are the view's claims when the choice used none of
// them: the claimed image or runtime took a match away.
func (v view) unmatchedClaims() []Claim {
	return appendClaim(appendClaim(nil, v.imageClaim), v.runtimeClaim)
}

// admits reports whether e's spec.selectableBy admits the workload by its
// identity, and by what.
func (e *entry) admits(w WorkloadInfo) (string, bool) {
	sb := e.wp.SelectableBy
	if sb == nil {
		return "", false
	}
	if sb.All {
		return "every workload (all: true)", true
	}
	ref := normalizeImage(w.Image)
	if pat, ok := bestPattern(e.selectable, ref, w.ImageDigests); ok {
		return fmt.Sprintf("image %s (%s)", ref, pat), true
	}
	for _, ns := range sb.Namespaces {
		if w.Namespace != "" && glob(ns, w.Namespace) {
			return fmt.Sprintf("pod namespace %s (%q)", w.Namespace, ns), true
		}
	}
	return "", false
}

// notAdmitted says why e's spec.selectableBy does not admit the workload:
// what its identity is, and the claims that do not count.
func (e *entry) notAdmitted(w WorkloadInfo) string {
	if e.wp.SelectableBy == nil {
		return fmt.Sprintf("%q has no spec.selectableBy", e.wp.Name)
	}
	image := "no image its runtime vouches for"
	if ref := normalizeImage(w.Image); ref.repo != "" {
		image = "image " + ref.String()
	}
	if len(w.ImageDigests) > 0 {
		image += " (" + strings.Join(w.ImageDigests, ", ") + ")"
	}
	ns := "no pod namespace from its runtime"
	if w.Namespace != "" {
		ns = "pod namespace " + w.Namespace
	}
	s := fmt.Sprintf("the spec.selectableBy of %q does not admit it (%s; %s)", e.wp.Name, image, ns)
	var claims []string
	for _, c := range []*Claim{w.imageClaim(), w.namespaceClaim()} {
		if c != nil {
			claims = append(claims, "annotation "+c.String())
		}
	}
	if len(claims) > 0 {
		s += "; " + strings.Join(claims, " and ") + " is the container's own claim, not its runtime's"
	}
	return s
}

// SelectableBy says which containers' annotations may choose the named
// profile (docs/trust.md): every container whose own profile it is at
// least as strong as, and those its spec.selectableBy admits.
func (c *Catalog) SelectableBy(name string) string {
	e := c.byName[name]
	if e == nil {
		return ""
	}
	s := "by containers whose own profile it is at least as strong as"
	sb := e.wp.SelectableBy
	switch {
	case sb == nil:
		return s
	case sb.All:
		return "by every container (spec.selectableBy.all)"
	}
	var by []string
	if len(sb.Images) > 0 {
		by = append(by, "images "+strings.Join(sb.Images, ", "))
	}
	if len(sb.Namespaces) > 0 {
		by = append(by, "pod namespaces "+strings.Join(sb.Namespaces, ", "))
	}
	return s + "; and by " + strings.Join(by, "; ") + " (spec.selectableBy)"
}
