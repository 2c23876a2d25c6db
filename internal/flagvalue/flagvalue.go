// Package flagvalue holds the flag.Value types ocigate's commands share:
// sizes in bytes and lists of strings.
package flagvalue

import (
	"fmt"
	"strconv"
	"strings"
)

// ByteSize is a flag value of bytes: a number with an optional unit, B,
// KiB, MiB, GiB (powers of 1024; K, M, G and KB, MB, GB are read the same).
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	{"B", 1},
}

// Set parses v, e.g. "100MiB".
func (s *ByteSize) Set(v string) error {
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range sizeUnits {
		if len(num) > len(u.suffix) && strings.EqualFold(num[len(num)-len(u.suffix):], u.suffix) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("size %q: want a non-negative number of bytes with an optional unit (KiB, MiB, GiB)", v)
	}
	if n > (1<<63-1)/mult {
		return fmt.Errorf("size %q is too large", v)
	}
	*s = ByteSize(n * mult)
	return nil
}

// String formats the size in the largest unit that divides it, as Set
// reads it back.
func (s *ByteSize) String() string {
	n := int64(*s)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// List collects a flag given several times or comma-separated.
type List []string

// String joins the list with commas.
func (l *List) String() string { return strings.Join(*l, ",") }

// Set appends v's comma-separated items, blanks trimmed, empty ones
// dropped.
func (l *List) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// CommaList is a comma-separated flag value that replaces its default;
// "" is the empty list.
type CommaList []string

// String joins the list with commas.
func (l *CommaList) String() string { return strings.Join(*l, ",") }

// Set replaces the list with v's comma-separated items, blanks trimmed,
// empty ones dropped.
func (l *CommaList) Set(v string) error {
	*l = nil
	return (*List)(l).Set(v)
}

// Type names the value in pflag's help (cobra commands).
func (s *ByteSize) Type() string { return "size" }

// Type names the value in pflag's help (cobra commands).
func (l *List) Type() string { return "strings" }

// Type names the value in pflag's help (cobra commands).
func (l *CommaList) Type() string { return "list" }
