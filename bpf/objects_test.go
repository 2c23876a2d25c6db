package bpf

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// Every map a program of either object uses is one of the shared maps:
// a map missing there would be a private copy per program.
func TestSharedMapsCoverBothObjects(t *testing.T) {
	fb, err := LoadFallback()
	if err != nil {
		t.Fatal(err)
	}
	sec, err := LoadSecurity()
	if err != nil {
		t.Fatal(err)
	}
	shared := MapsByName(&FallbackMaps{})
	for obj, spec := range map[string]*ebpf.CollectionSpec{"fallback": fb, "security": sec} {
		for name := range spec.Maps {
			if strings.HasPrefix(name, ".") {
				continue // .rodata, .bss: per program
			}
			if _, ok := shared[name]; !ok {
				t.Errorf("%s map %s is not shared", obj, name)
			}
		}
	}
}
