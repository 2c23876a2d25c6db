package record

import (
	"testing"
	"unsafe"

	"github.com/ocigate/ocigate/bpf"
)

// Decoding one decision record of a process whose names repeat, as an
// event storm's do.
func BenchmarkDecodeInto(b *testing.B) {
	var k bpf.FallbackEvent
	copy(bpf.CChars(k.Comm[:]), "eventstorm")
	copy(bpf.CChars(k.Path[:]), "/dev/shm/i16e-bench.4Qr4Zh/eventstorm")
	copy(bpf.CChars(k.AncestorComm[0][:]), "ocigate-agentd")
	copy(bpf.CChars(k.AncestorComm[1][:]), "bash")
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&k)), eventSize)
	var in interner
	var ev RawEvent
	for b.Loop() {
		_ = decodeInto(raw, &ev, &in)
	}
}
