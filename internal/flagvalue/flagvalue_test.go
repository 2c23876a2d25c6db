package flagvalue

import (
	"reflect"
	"strings"
	"testing"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		str  string
	}{
		{"100MiB", 100 << 20, "100MiB"},
		{"100M", 100 << 20, "100MiB"},
		{"100mb", 100 << 20, "100MiB"},
		{"1GiB", 1 << 30, "1GiB"},
		{"512KiB", 512 << 10, "512KiB"},
		{"1536KiB", 1536 << 10, "1536KiB"},
		{"4096", 4096, "4KiB"},
		{"1000", 1000, "1000"},
		{"7B", 7, "7"},
		{" 2 MiB ", 2 << 20, "2MiB"},
		{"0", 0, "0"},
	}
	for _, tt := range tests {
		var s ByteSize
		if err := s.Set(tt.in); err != nil {
			t.Errorf("Set(%q): %v", tt.in, err)
			continue
		}
		if int64(s) != tt.want || s.String() != tt.str {
			t.Errorf("Set(%q) = %d (%s), want %d (%s)", tt.in, int64(s), s.String(), tt.want, tt.str)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5MiB", "10XB", "9999999999GiB", "ten"} {
		var s ByteSize
		if err := s.Set(bad); err == nil || !strings.Contains(err.Error(), "size") {
			t.Errorf("Set(%q) = %d, %v; want an error", bad, int64(s), err)
		}
	}
}

func TestCommaList(t *testing.T) {
	l := CommaList{"/run/runc"}
	for in, want := range map[string][]string{
		"/a,/b":       {"/a", "/b"},
		" /a , ,/b, ": {"/a", "/b"},
		"":            nil,
	} {
		if err := l.Set(in); err != nil || !reflect.DeepEqual([]string(l), want) {
			t.Errorf("Set(%q) = %q, %v; want %q", in, l, err, want)
		}
	}
	l = CommaList{"/a", "/b"}
	if l.String() != "/a,/b" {
		t.Errorf("String = %q", l.String())
	}
}

// A List grows with every Set: repeated flags and comma-separated ones
// add up.
func TestList(t *testing.T) {
	var l List
	for _, v := range []string{"a", "b, c", "", " ,d"} {
		if err := l.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"a", "b", "c", "d"}; !reflect.DeepEqual([]string(l), want) || l.String() != "a,b,c,d" {
		t.Errorf("list %q (%s), want %q", l, l.String(), want)
	}
}
