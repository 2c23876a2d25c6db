package bpf

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// stackDepth is the deepest stack slot each function of p uses (its own
// frame), by function symbol, as the instructions address it from R10.
func stackDepth(p *ebpf.ProgramSpec) map[string]int {
	depth := map[string]int{}
	fn := p.Name
	for _, ins := range p.Instructions {
		if sym := ins.Symbol(); sym != "" {
			fn = sym
		}
		if (ins.Dst == asm.R10 || ins.Src == asm.R10) && (ins.OpCode.Class().IsLoad() || ins.OpCode.Class().IsStore()) && ins.Offset < 0 {
			if d := -int(ins.Offset); d > depth[fn] {
				depth[fn] = d
			}
		}
	}
	return depth
}

// The verifier refuses a program whose frames, each rounded up to 32
// bytes, add up to more than 512 along a call chain: here a program and
// its deepest callee (the selector callback, the path walk). The LSM and
// fmod_ret programs cannot be loaded on this kernel; this checks their
// stack where the verifier would.
func TestStackBudget(t *testing.T) {
	for obj, load := range map[string]func() (*ebpf.CollectionSpec, error){"fallback": loadFallback, "security": loadSecurity} {
		spec, err := load()
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range spec.Programs {
			depth := stackDepth(p)
			main := roundUp32(depth[p.Name])
			callee := 0
			for fn, d := range depth {
				if fn != p.Name && roundUp32(d) > callee {
					callee = roundUp32(d)
				}
			}
			if main+callee > 512 {
				t.Errorf("%s/%s: stack %d + deepest callee %d bytes, more than 512", obj, name, main, callee)
			} else if main+callee > 480 {
				t.Logf("%s/%s: stack %d + deepest callee %d bytes: %d to spare", obj, name, main, callee, 512-main-callee)
			}
		}
	}
}

func roundUp32(n int) int { return (n + 31) &^ 31 }
