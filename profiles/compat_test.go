package profiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ocigate/ocigate/profiles/policy"
)

// The Tetragon compatibility table (docs/tetragon-compat.md) is written
// by TestTetragonCompat: OCIGATE_UPDATE_DOCS=1 rewrites it, otherwise the
// test fails when it is out of date. Its second part, Tetragon's own
// published examples, is rewritten only when OCIGATE_TETRAGON_EXAMPLES
// names a checkout of Tetragon's repository (OCIGATE_TETRAGON_COMMIT its
// commit); otherwise it is kept as it is.
const (
	compatDoc      = "../docs/tetragon-compat.md"
	compatDir      = "testdata/tetragon"
	examplesMarker = "<!-- tetragon-examples -->"
)

// compatRow is one test policy: what its header says and what loading
// it gave.
type compatRow struct {
	file, family, tetragon, expect, e2e string
	loads                               bool
	detail                              []string // refused: the errors; loads: points and notes
}

var headerRE = regexp.MustCompile(`(?m)^# (family|tetragon|expect|e2e): (.*)$`)

// TestTetragonCompat loads each of the project's Tetragon-style test
// policies, checks that it loads or is refused as its header expects,
// and checks (or writes) the table of the results.
func TestTetragonCompat(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(compatDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test policies in %s: %v", compatDir, err)
	}
	sort.Strings(files)
	var rows []compatRow
	for _, f := range files {
		r := compatLoad(t, f)
		if r.loads != (r.expect == "loads") {
			t.Errorf("%s: want %s, got %s:\n%s", f, r.expect, loadWord(r.loads), strings.Join(r.detail, "\n"))
		}
		rows = append(rows, r)
	}
	checkE2ENamed(t, rows)
	doc := renderCompat(rows) + examplesPart(t)
	checkGenerated(t, compatDoc, doc)
	checkReadmeCount(t, rows)
}

// compatLoad loads one test policy as profiles check does.
func compatLoad(t *testing.T, file string) compatRow {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r := compatRow{file: filepath.Base(file)}
	for _, m := range headerRE.FindAllStringSubmatch(string(data), -1) {
		switch m[1] {
		case "family":
			r.family = m[2]
		case "tetragon":
			r.tetragon = m[2]
		case "expect":
			r.expect = m[2]
		case "e2e":
			r.e2e = m[2]
		}
	}
	c, err := NewCatalogFiles(false, file)
	if err != nil {
		var perrs policy.Errors
		if !errors.As(err, &perrs) {
			t.Fatalf("%s: %v", file, err)
		}
		for _, e := range perrs {
			r.detail = append(r.detail, strings.TrimPrefix(e.Error(), file+":"))
		}
		return r
	}
	r.loads = true
	r.detail = append(r.detail, "points: "+compatPoints(t, file))
	for _, n := range c.Notes() {
		r.detail = append(r.detail, strings.TrimPrefix(n, file+":"))
	}
	return r
}

// compatPoints lists the points a loaded test policy's selectors go to.
func compatPoints(t *testing.T, file string) string {
	docs, err := policy.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[Point]bool{}
	for _, d := range docs {
		if d.Policy == nil {
			continue
		}
		c, err := CompilePolicy(d.Policy)
		if err != nil {
			t.Fatal(err)
		}
		for pt, sels := range c.Points {
			if len(sels) > 0 {
				seen[Point(pt)] = true
			}
		}
	}
	var names []string
	for pt := Point(0); pt < NumPoints; pt++ {
		if seen[pt] {
			names = append(names, pt.String())
		}
	}
	return strings.Join(names, ", ")
}

// loadWord is "loads" or "refused".
func loadWord(loads bool) string {
	if loads {
		return "loads"
	}
	return "refused"
}

// cell makes text one markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// renderCompat is the first part of the document: the test policies.
func renderCompat(rows []compatRow) string {
	var b strings.Builder
	loads := 0
	for _, r := range rows {
		if r.loads {
			loads++
		}
	}
	fmt.Fprintf(&b, `# Tetragon compatibility

Written by `+"`go test ./profiles -run TestTetragonCompat`"+` (OCIGATE_UPDATE_DOCS=1 rewrites it):
do not edit. Each row is one of ocigate's own test policies in
[profiles/testdata/tetragon](../profiles/testdata/tetragon), written the way
Tetragon's documentation writes that part of the TracingPolicy schema
(the Tetragon column names the example or page it follows), and what
`+"`ocigate-agentd profiles check`"+` says of it: loads (with the points its
selectors go to, and notes where ocigate acts otherwise than Tetragon),
or refused, with every reason. The e2e column names the test that runs
it in a real container (test/e2e/tetragon_test.go and
tetragon_rows_test.go, OCIGATE_E2E=1); every policy that loads has one.

**%d test policies: %d load, %d are refused with a reason.**

| family | policy | Tetragon | result | details | e2e |
|---|---|---|---|---|---|
`, len(rows), loads, len(rows)-loads)
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | [%s](../profiles/testdata/tetragon/%s) | %s | %s | %s | %s |\n",
			cell(r.family), strings.TrimSuffix(r.file, ".yaml"), r.file, cell(r.tetragon), loadWord(r.loads),
			cell(strings.Join(r.detail, "<br>")), cell(r.e2e))
	}
	return b.String()
}

// examplesPart is the second part: Tetragon's published examples, from
// OCIGATE_TETRAGON_EXAMPLES, else as the document has it.
func examplesPart(t *testing.T) string {
	dir := os.Getenv("OCIGATE_TETRAGON_EXAMPLES")
	if dir == "" {
		old, err := os.ReadFile(compatDoc)
		if err != nil {
			return "\n" + examplesMarker + "\n"
		}
		if _, part, ok := strings.Cut(string(old), examplesMarker); ok {
			return "\n" + examplesMarker + part
		}
		return "\n" + examplesMarker + "\n"
	}
	return "\n" + examplesMarker + "\n" + renderExamples(t, dir, os.Getenv("OCIGATE_TETRAGON_COMMIT"))
}

// renderExamples checks every YAML file under dir (Tetragon's examples)
// and tabulates the result: the facts, none of the files.
func renderExamples(t *testing.T, dir, commit string) string {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var rows []string
	loads := 0
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		res, why := "loads", ""
		if _, err := NewCatalogFiles(false, f); err != nil {
			res, why = "refused", firstReason(err, f)
		} else {
			loads++
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s |", rel, res, cell(why)))
	}
	return fmt.Sprintf(`
## Tetragon's published examples

Every file of Tetragon's examples directory (cilium/tetragon %s),
loaded unchanged with `+"`profiles check`"+`: **%d files, %d load, %d are refused**
(the first reason shown; out-of-domain hooks are refused one line per
hook). Placeholders such as ${PODCIDR} are refused as Tetragon refuses
them until they are filled in.

| example | result | first reason |
|---|---|---|
%s
`, commit, len(files), loads, len(files)-loads, strings.Join(rows, "\n"))
}

// firstReason is the first error of a refused file, without the file.
func firstReason(err error, file string) string {
	var perrs policy.Errors
	if errors.As(err, &perrs) && len(perrs) > 0 {
		return strings.TrimPrefix(perrs[0].Error(), file+":")
	}
	return err.Error()
}

// checkGenerated compares a generated document with the file, or writes
// it when OCIGATE_UPDATE_DOCS=1.
func checkGenerated(t *testing.T, path, doc string) {
	t.Helper()
	if os.Getenv("OCIGATE_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	old, err := os.ReadFile(path)
	if err != nil || string(old) != doc {
		t.Errorf("%s is out of date: run OCIGATE_UPDATE_DOCS=1 go test ./profiles -run TestTetragonCompat (%v)", path, err)
	}
}

// checkReadmeCount wants the README to name the table with its count.
func checkReadmeCount(t *testing.T, rows []compatRow) {
	t.Helper()
	loads := 0
	for _, r := range rows {
		if r.loads {
			loads++
		}
	}
	want := fmt.Sprintf("%d test policies: %d load, %d are refused with a reason", len(rows), loads, len(rows)-loads)
	readme, err := os.ReadFile("../README.md")
	if err != nil || !strings.Contains(string(readme), want) || !strings.Contains(string(readme), "docs/tetragon-compat.md") {
		t.Errorf("README.md should name docs/tetragon-compat.md with %q", want)
	}
}

// checkE2ENamed fails when a policy that loads names no e2e test, or one
// that test/e2e does not have (a subtest of TestTetragonCompatRows is a
// case of its table).
func checkE2ENamed(t *testing.T, rows []compatRow) {
	files, err := filepath.Glob("../test/e2e/*_test.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no e2e tests: %v", err)
	}
	var src strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(data)
	}
	for _, r := range rows {
		if r.loads && r.e2e == "" {
			t.Errorf("%s loads but names no e2e test (header # e2e:)", r.file)
		}
		if r.e2e == "" {
			continue
		}
		fn, sub, _ := strings.Cut(r.e2e, "/")
		if !strings.Contains(src.String(), "func "+fn+"(t *testing.T)") {
			t.Errorf("%s: e2e test %s is not in test/e2e", r.file, fn)
		}
		if sub != "" && !strings.Contains(src.String(), `{name: "`+sub+`"`) {
			t.Errorf("%s: %s has no case %q", r.file, fn, sub)
		}
	}
}
