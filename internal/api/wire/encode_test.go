package wire

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
// a registration and an unregistration, set or left empty.
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
		"both":                    {Protocol: -1, Op: OpRegister, Register: full, Unregister: unreg},
		"neither":                 {Op: "status"},
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
		if got := r.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("%s: AppendJSON = %s\nencoding/json = %s", name, got, want)
		}
	}
	if got := (&Request{Op: OpUnregister}).AppendJSON([]byte("x")); string(got) != `x{"op":"unregister"}` {
		t.Errorf("AppendJSON does not append: %s", got)
	}
}
