// Package stacks turns the return addresses of the stack traces the
// kernel took (Post kernelStackTrace, userStackTrace) into Tetragon's
// stack trace entries: kernel addresses get their symbol and the offset
// into it from /proc/kallsyms; user addresses the file mapped there and
// the offset into it, from the process's /proc/PID/maps (no symbols).
package stacks

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ocigate/ocigate/internal/events"
)

// ksym is one kernel symbol: its address and name.
type ksym struct {
	addr uint64
	name string
}

// Kernel symbolizes kernel addresses. Its table is read from the
// kallsyms file once, on the first use.
type Kernel struct {
	path string
	once sync.Once
	syms []ksym // sorted by address
	err  error
}

// NewKernel symbolizes kernel addresses from path (/proc/kallsyms).
func NewKernel(path string) *Kernel { return &Kernel{path: path} }

// Entries are the frames of addrs, innermost first, each with its symbol
// and offset where the table has one; an error when the table cannot be
// read (the addresses are given alone then).
func (k *Kernel) Entries(addrs []uint64) ([]events.StackTraceEntry, error) {
	k.once.Do(k.load)
	out := make([]events.StackTraceEntry, len(addrs))
	for i, a := range addrs {
		out[i].Address = a
		j := sort.Search(len(k.syms), func(j int) bool { return k.syms[j].addr > a }) - 1
		if j >= 0 {
			out[i].Symbol, out[i].Offset = k.syms[j].name, a-k.syms[j].addr
		}
	}
	return out, k.err
}

// load reads the symbol table; addresses all zero (kptr_restrict) make
// it empty and an error.
func (k *Kernel) load() {
	data, err := os.ReadFile(k.path)
	if err != nil {
		k.err = fmt.Errorf("kernel symbols: %w", err)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || (f[1] != "t" && f[1] != "T") {
			continue // functions only
		}
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil || a == 0 {
			continue
		}
		k.syms = append(k.syms, ksym{a, f[2]})
	}
	if len(k.syms) == 0 {
		k.err = fmt.Errorf("kernel symbols: %s lists no function addresses (kptr_restrict?)", k.path)
	}
	sort.Slice(k.syms, func(i, j int) bool { return k.syms[i].addr < k.syms[j].addr })
}

// mapping is one file mapping of a process.
type mapping struct {
	start, end, off uint64
	path            string
}

// User gives the frames of a process's user stack: each address with the
// file mapped there and the offset into it, read from procRoot/PID/maps;
// an error when the process is gone (the addresses are given alone then).
func User(procRoot string, pid uint32, addrs []uint64) ([]events.StackTraceEntry, error) {
	maps, err := readMaps(fmt.Sprintf("%s/%d/maps", procRoot, pid))
	out := make([]events.StackTraceEntry, len(addrs))
	for i, a := range addrs {
		out[i].Address = a
		for _, m := range maps {
			if a >= m.start && a < m.end {
				out[i].Module, out[i].Offset = m.path, a-m.start+m.off
				break
			}
		}
	}
	return out, err
}

// readMaps reads the file mappings of a maps file.
func readMaps(path string) ([]mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("user stack: %w", err)
	}
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasPrefix(f[5], "/") {
			continue // anonymous, heap, stack, vdso
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		if !ok || err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		out = append(out, mapping{start, end, off, strings.Join(f[5:], " ")})
	}
	return out, nil
}
