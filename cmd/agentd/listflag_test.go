package main

import (
	"reflect"
	"testing"
)

func TestStringList(t *testing.T) {
	l := stringList{"/run/runc"}
	for in, want := range map[string][]string{
		"/a,/b":       {"/a", "/b"},
		" /a , ,/b, ": {"/a", "/b"},
		"":            nil,
	} {
		if err := l.Set(in); err != nil || !reflect.DeepEqual([]string(l), want) {
			t.Errorf("Set(%q) = %q, %v; want %q", in, l, err, want)
		}
	}
	l = stringList{"/a", "/b"}
	if l.String() != "/a,/b" {
		t.Errorf("String = %q", l.String())
	}
}
