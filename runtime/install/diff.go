package install

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// maxDiffLines bounds the lines writeDiff prints per file.
const maxDiffLines = 30

// writeDiff prints the lines that differ between a and b, found by
// trimming the common leading and trailing lines: install and uninstall
// change one region per file, which this shows exactly.
func writeDiff(w io.Writer, a, b []byte, indent string) {
	al, bl := splitLines(a), splitLines(b)
	pre := 0
	for pre < len(al) && pre < len(bl) && al[pre] == bl[pre] {
		pre++
	}
	suf := 0
	for suf < len(al)-pre && suf < len(bl)-pre && al[len(al)-1-suf] == bl[len(bl)-1-suf] {
		suf++
	}
	del, add := al[pre:len(al)-suf], bl[pre:len(bl)-suf]
	if len(del) == 0 && len(add) == 0 {
		return
	}
	fmt.Fprintf(w, "%s@@ line %d: -%d +%d\n", indent, pre+1, len(del), len(add))
	printed := 0
	for _, set := range []struct {
		sign  string
		lines []string
	}{{"-", del}, {"+", add}} {
		for _, l := range set.lines {
			if printed == maxDiffLines {
				fmt.Fprintf(w, "%s… %d more lines\n", indent, len(del)+len(add)-printed)
				return
			}
			fmt.Fprintf(w, "%s%s %s\n", indent, set.sign, l)
			printed++
		}
	}
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s := strings.TrimSuffix(string(b), "\n")
	if !bytes.HasSuffix(b, []byte("\n")) {
		s += "\n\\ no newline at end of file"
	}
	return strings.Split(s, "\n")
}
