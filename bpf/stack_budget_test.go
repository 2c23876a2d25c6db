package bpf

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// function is one BPF function of a program: its own stack frame, as the
// instructions address it from R10, and the functions it calls or hands
// to a helper as a callback (bpf_loop).
type function struct {
	frame int
	calls []string
}

// functions splits p's instructions (the program and every function it
// reaches) into functions, by symbol.
func functions(p *ebpf.ProgramSpec) map[string]*function {
	fns := map[string]*function{p.Name: {}}
	cur := fns[p.Name]
	for _, ins := range p.Instructions {
		if sym := ins.Symbol(); sym != "" {
			if fns[sym] == nil {
				fns[sym] = &function{}
			}
			cur = fns[sym]
		}
		if (ins.Dst == asm.R10 || ins.Src == asm.R10) && (ins.OpCode.Class().IsLoad() || ins.OpCode.Class().IsStore()) && ins.Offset < 0 {
			cur.frame = max(cur.frame, -int(ins.Offset))
		}
		if (ins.IsFunctionCall() || ins.IsLoadOfFunctionPointer()) && ins.Reference() != "" {
			cur.calls = append(cur.calls, ins.Reference())
		}
	}
	return fns
}

// deepestChain is the largest sum of frames, each rounded up to 32 bytes
// as the verifier counts them, along any call chain from fn, and the
// chain.
func deepestChain(fns map[string]*function, fn string, onPath map[string]bool) (int, []string) {
	f := fns[fn]
	if f == nil || onPath[fn] {
		return 0, nil
	}
	onPath[fn] = true
	defer delete(onPath, fn)
	best, chain := 0, []string(nil)
	for _, callee := range f.calls {
		if d, c := deepestChain(fns, callee, onPath); d > best {
			best, chain = d, c
		}
	}
	return roundUp32(max(f.frame, 1)) + best, append([]string{fn}, chain...)
}

// The verifier refuses a program whose frames add up to more than 512
// bytes along a call chain: main program → its static callees and loop
// callbacks → global functions and theirs. The LSM and fmod_ret programs
// cannot be loaded on every kernel; this checks their stack where the
// verifier would, for both objects.
func TestStackBudget(t *testing.T) {
	for _, obj := range Objects() {
		spec, err := obj.Parse()
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range spec.Programs {
			depth, chain := deepestChain(functions(p), p.Name, map[string]bool{})
			switch {
			case depth > 512:
				t.Errorf("%s/%s: %d stack bytes along %s, more than 512", obj.Name, name, depth, strings.Join(chain, " → "))
			case depth > 384:
				t.Logf("%s/%s: %d stack bytes along %s: %d to spare", obj.Name, name, depth, strings.Join(chain, " → "), 512-depth)
			}
		}
	}
}

// The chain walk sees through calls and callbacks.
func TestDeepestChain(t *testing.T) {
	fns := map[string]*function{
		"main":   {frame: 40, calls: []string{"cb", "leaf"}},
		"cb":     {frame: 8, calls: []string{"global"}},
		"global": {frame: 200, calls: []string{"main"}}, // a cycle is not followed
		"leaf":   {frame: 100},
	}
	depth, chain := deepestChain(fns, "main", map[string]bool{})
	if depth != 64+32+224 || strings.Join(chain, ",") != "main,cb,global" {
		t.Errorf("depth %d along %v, want 320 along main,cb,global", depth, chain)
	}
}

func roundUp32(n int) int { return (n + 31) &^ 31 }
