// Package codecheck checks the module's hand-written Go source for the
// habits the project keeps: no function longer than MaxFuncLines, and doc
// comments of exported identifiers that start with the name. Its tests
// run the checks on the whole module.
package codecheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFuncLines is the most lines a function may have, from func to its
// closing brace.
const MaxFuncLines = 80

// Source is the parsed hand-written Go files of a module.
type Source struct {
	Root  string
	Fset  *token.FileSet
	Files []*ast.File
}

// Finding is one thing a check found.
type Finding struct {
	Pos  token.Position // File relative to the module root
	Name string         // the identifier
	Msg  string
}

// String formats f as "file:line: Name message".
func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s %s", f.Pos.Filename, f.Pos.Line, f.Name, f.Msg)
}

// ModuleRoot returns the directory of the go.mod that dir is in.
func ModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("module root: no go.mod in %s or above", dir)
		}
	}
}

// Parse parses every hand-written .go file under root: not in testdata,
// vendor or hidden directories, not bpf2go's *_bpfel.go and *_bpfeb.go,
// not marked generated. File names are relative to root.
func Parse(root string) (*Source, error) {
	src := &Source{Root: root, Fset: token.NewFileSet()}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_bpfel.go") || strings.HasSuffix(name, "_bpfeb.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(src.Fset, rel, data, parser.ParseComments)
		if err != nil {
			return err
		}
		if !ast.IsGenerated(f) {
			src.Files = append(src.Files, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", root, err)
	}
	return src, nil
}

// LongFuncs returns the functions and methods longer than max lines, by
// file.
func (s *Source) LongFuncs(max int) []Finding {
	var out []Finding
	for _, f := range s.Files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			start, end := s.Fset.Position(fd.Pos()), s.Fset.Position(fd.End())
			if n := end.Line - start.Line + 1; n > max {
				out = append(out, Finding{Pos: start, Name: funcName(fd), Msg: fmt.Sprintf("is %d lines (at most %d)", n, max)})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pos.Filename < out[j].Pos.Filename })
	return out
}

// funcName is "Name" or "Recv.Name".
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	if id := recvType(fd.Recv.List[0].Type); id != nil {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}

// recvType is the receiver's type name.
func recvType(t ast.Expr) *ast.Ident {
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x
		default:
			return nil
		}
	}
}

// DocComments returns the exported identifiers whose doc comment does
// not start with their name (a type's may start "A Name" or "An Name").
// Exported methods of unexported types are not documented and not
// checked, nor are tests, benchmarks, fuzz targets and examples, whose
// comments tell what they try.
func (s *Source) DocComments() []Finding {
	var out []Finding
	check := func(name string, doc *ast.CommentGroup, pos token.Pos, isType bool) {
		if !ast.IsExported(name) || doc == nil {
			return
		}
		if !startsWithName(doc.Text(), name, isType) {
			first, _, _ := strings.Cut(doc.Text(), "\n")
			out = append(out, Finding{Pos: s.Fset.Position(pos), Name: name, Msg: fmt.Sprintf("doc comment does not start with the name: %q", first)})
		}
	}
	for _, f := range s.Files {
		test := strings.HasSuffix(s.Fset.Position(f.Pos()).Filename, "_test.go")
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if test && isTestFunc(d.Name.Name) {
					continue
				}
				if d.Recv != nil && len(d.Recv.List) > 0 {
					if id := recvType(d.Recv.List[0].Type); id == nil || !ast.IsExported(id.Name) {
						continue
					}
				}
				check(d.Name.Name, d.Doc, d.Pos(), false)
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					doc := d.Doc
					if d.Lparen.IsValid() { // a group's comment is the group's
						doc = nil
					}
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						check(spec.Name.Name, firstDoc(spec.Doc, doc), spec.Pos(), true)
					case *ast.ValueSpec:
						if len(spec.Names) == 1 {
							check(spec.Names[0].Name, firstDoc(spec.Doc, doc), spec.Pos(), false)
						}
					}
				}
			}
		}
	}
	return out
}

// firstDoc returns the first of docs that is not nil.
func firstDoc(docs ...*ast.CommentGroup) *ast.CommentGroup {
	for _, d := range docs {
		if d != nil {
			return d
		}
	}
	return nil
}

// startsWithName reports whether text starts with name as a word, not
// followed by a colon ("Name: …" labels, it does not say what Name does).
func startsWithName(text, name string, isType bool) bool {
	if isType {
		for _, article := range []string{"A ", "An "} {
			if rest, ok := strings.CutPrefix(text, article); ok && startsWithName(rest, name, false) {
				return true
			}
		}
	}
	rest, ok := strings.CutPrefix(text, name)
	if !ok {
		return false
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return rest == "" || r != ':' && r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r)
}

// isTestFunc reports whether name is that of a test, benchmark, fuzz
// target or example.
func isTestFunc(name string) bool {
	for _, prefix := range []string{"Test", "Benchmark", "Fuzz", "Example"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}

// Under reports whether the finding is in dir (slash-separated, relative
// to the module root) or below.
func (f Finding) Under(dir string) bool {
	file := filepath.ToSlash(f.Pos.Filename)
	return strings.HasPrefix(file, strings.TrimSuffix(dir, "/")+"/")
}
