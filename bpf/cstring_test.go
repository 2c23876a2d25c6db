package bpf

import "testing"

func TestCString(t *testing.T) {
	mk := func(b ...byte) []int8 {
		out := make([]int8, len(b))
		for i, c := range b {
			out[i] = int8(c)
		}
		return out
	}
	tests := []struct {
		in   []int8
		want string
	}{
		{nil, ""},
		{mk(0, 'a'), ""},
		{mk('s', 'h', 0, 'x', 0), "sh"},
		{mk('a', 'b', 'c'), "abc"},        // no terminator
		{mk(0xc3, 0xa9, 0), "\u00e9"},     // bytes above 0x7f survive
		{mk('x', 0xff, 'y', 0), "x\xffy"}, // kept byte for byte
	}
	for _, tt := range tests {
		if got := CString(tt.in); got != tt.want {
			t.Errorf("CString(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
