package record

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// fakeRing is a ring over plain memory of size bytes, its positions
// starting at pos: the kernel's layout of records, without the kernel.
func fakeRing(size int, pos uint64) (*ring, *uint64) {
	prod, cons := pos, pos
	r := &ring{data: make([]byte, size), mask: uint64(size - 1), prodPos: &prod, consPos: &cons, pos: pos, stored: pos}
	return r, &prod
}

// put writes a committed record with body at the producer position, as
// the kernel does (the header, then the body from the next 8 bytes on,
// wrapping at the end of the data), and moves the producer past it.
func put(r *ring, prod *uint64, body []byte) {
	start := *prod & r.mask
	binary.LittleEndian.PutUint32(r.data[start:], uint32(len(body)))
	for i, b := range body {
		r.data[(start+ringHeaderSize+uint64(i))&r.mask] = b
	}
	*prod += (ringHeaderSize + uint64(len(body)) + 7) &^ 7
}

func seq(from byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

// The data pages are mapped once: a record whose body runs past their
// end comes out whole, its two parts put together, and the records
// around it in place.
func TestRingRecordAcrossTheEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		pos  uint64
		lens []int
	}{
		{"body wraps", 40, []int{20, 8}},          // 48..64 and 0..4
		{"header ends the data", 56, []int{8, 8}}, // the body starts at 0
		{"in place", 0, []int{20, 8}},
		{"second lap", 64 + 40, []int{20, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, prod := fakeRing(64, tc.pos)
			var want [][]byte
			for i, n := range tc.lens {
				body := seq(byte(1+40*i), n)
				put(r, prod, body)
				want = append(want, body)
			}
			for i, w := range want {
				got, err := r.next()
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if !bytes.Equal(got, w) {
					t.Fatalf("record %d: %v, want %v", i, got, w)
				}
			}
			if got, err := r.next(); got != nil || err != nil {
				t.Fatalf("after the last record: %v, %v; want none", got, err)
			}
		})
	}
}
