package bpf

import (
	"reflect"

	"github.com/cilium/ebpf"
)

// Backend names: the kinds of program that carry an enforcement point
// out, in order of preference.
const (
	BackendLSM      = "lsm"
	BackendFmodRet  = "fmod_ret"
	BackendFallback = "fallback"
	// BackendTracepoint carries the points that only report or kill, the same on
	// every kernel (dup).
	BackendTracepoint = "tracepoint"
	// BackendFentry carries a reporting point on the kernel function
	// itself (fentry), where its hook of another kind lacks helpers.
	BackendFentry = "fentry"
)

// Object is one of the two BPF objects: its name, its ELF and its
// parser (the generated LoadFallback or LoadSecurity).
type Object struct {
	Name  string
	ELF   []byte
	Parse func() (*ebpf.CollectionSpec, error)
}

// Objects lists both BPF objects, fallback first.
func Objects() []Object {
	return []Object{
		{Name: "fallback", ELF: _FallbackBytes, Parse: LoadFallback},
		{Name: "security", ELF: _SecurityBytes, Parse: LoadSecurity},
	}
}

// MapsByName names every map of m by its name in the object (its ebpf
// tag). Every program of both objects uses these maps: they are the
// shared maps (TestSharedMapsCoverBothObjects).
func MapsByName(m *FallbackMaps) map[string]*ebpf.Map {
	out := map[string]*ebpf.Map{}
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		if name := v.Type().Field(i).Tag.Get("ebpf"); name != "" {
			out[name] = v.Field(i).Interface().(*ebpf.Map)
		}
	}
	return out
}

// MapNames lists the names of the maps FallbackMaps holds, in its order.
func MapNames() []string {
	var out []string
	t := reflect.TypeFor[FallbackMaps]()
	for i := 0; i < t.NumField(); i++ {
		if name := t.Field(i).Tag.Get("ebpf"); name != "" {
			out = append(out, name)
		}
	}
	return out
}
