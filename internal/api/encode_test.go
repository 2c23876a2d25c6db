package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// fill sets every field of the struct v points to, recursively, to a
// value that is not its zero (strings that need escaping, several map
// keys), so that a field the hand encoder does not know shows.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(`a<&>"\` + "\u2028\x01é\xff" + v.Type().Field(i).Name)
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(-7 - i))
		case reflect.Uint64, reflect.Uint32:
			f.SetUint(uint64(1<<40 + i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"z": "1", "a<": "2\n", "m": ""}))
		case reflect.Struct:
			fill(t, f)
		default:
			t.Fatalf("%s.%s: fill does not know %s", v.Type(), v.Type().Field(i).Name, f.Kind())
		}
	}
}

// The hand encoder writes what encoding/json writes, for every field of
// a registration and an unregistration, set or left empty; other
// requests are left to encoding/json.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	full := &Registration{}
	fill(t, reflect.ValueOf(full).Elem())
	unreg := &Unregistration{}
	fill(t, reflect.ValueOf(unreg).Elem())
	cases := map[string]*Request{
		"register, every field":   {Protocol: ProtocolVersion, Op: OpRegister, Register: full},
		"register, empty fields":  {Op: OpRegister, Register: &Registration{}},
		"register, as version 1":  (&Request{Op: OpRegister, Register: full}).As(1),
		"unregister, every field": {Protocol: 3, Op: OpUnregister, Unregister: unreg},
		"unregister, empty":       {Op: OpUnregister, Unregister: &Unregistration{}},
	}
	// Each field of the registration alone, the others empty (omitempty).
	rt := reflect.TypeOf(*full)
	for i := 0; i < rt.NumField(); i++ {
		one := &Registration{}
		reflect.ValueOf(one).Elem().Field(i).Set(reflect.ValueOf(full).Elem().Field(i))
		cases["register, only "+rt.Field(i).Name] = &Request{Op: OpRegister, Register: one}
	}
	for name, r := range cases {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := r.appendJSON(nil)
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("%s: appendJSON = %s (ok %v)\nencoding/json  = %s", name, got, ok, want)
		}
	}
	for name, r := range map[string]*Request{
		"status":    {Op: OpStatus, Status: &StatusOptions{Summary: true}},
		"subscribe": {Op: "subscribe", Subscribe: &Subscription{}},
		"none":      {Op: OpStatus},
		"both":      {Op: OpRegister, Register: full, Unregister: unreg},
		"pods":      {Op: OpPods, Pods: &PodTable{}},
		// A field appendJSON does not write, beside a registration.
		"register and pods": {Op: OpRegister, Register: full, Pods: &PodTable{}},
	} {
		if _, ok := r.appendJSON(nil); ok {
			t.Errorf("%s: appendJSON took a request it does not encode", name)
		}
		var buf bytes.Buffer
		if err := WriteMessage(&buf, r); err != nil {
			t.Errorf("%s: WriteMessage: %v", name, err)
		}
	}
}
