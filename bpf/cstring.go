package bpf

import (
	"bytes"
	"unsafe"
)

// The C strings of the maps and records are arrays of char, which bpf2go
// generates as []int8.

// CChars views C chars as bytes, without copying.
func CChars(b []int8) []byte {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), len(b))
}

// CBytes views the NUL-terminated string at the start of b (all of b
// without a NUL) as bytes, without copying.
func CBytes(b []int8) []byte {
	raw := CChars(b)
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		return raw[:i]
	}
	return raw
}

// CString is the NUL-terminated string at the start of b (all of b
// without a NUL).
func CString(b []int8) string {
	return string(CBytes(b))
}

// PutCString copies s into dst, cut at dst's length; dst keeps what
// follows (a zeroed array ends the string with NUL when it has room).
func PutCString(dst []int8, s string) {
	for i := 0; i < len(s) && i < len(dst); i++ {
		dst[i] = int8(s[i])
	}
}
