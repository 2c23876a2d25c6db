package stacks

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ocigate/ocigate/internal/events"
)

func TestKernelSymbols(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kallsyms")
	table := "ffffffff81000000 T _stext\nffffffff81000100 t helper\nffffffff81000200 D some_data\nffffffff81000300 T kfree_skb_reason\n"
	if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := NewKernel(path).Entries([]uint64{0xffffffff81000110, 0xffffffff81000250, 0xffffffff81000300, 0x10})
	if err != nil {
		t.Fatal(err)
	}
	want := []events.StackTraceEntry{{Address: 0xffffffff81000110, Offset: 0x10, Symbol: "helper"},
		{Address: 0xffffffff81000250, Offset: 0x150, Symbol: "helper"}, // data symbols are skipped
		{Address: 0xffffffff81000300, Symbol: "kfree_skb_reason"}, {Address: 0x10}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("frame %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := NewKernel(filepath.Join(dir, "none")).Entries([]uint64{1}); err == nil {
		t.Error("a missing table: want an error")
	}
	zero := filepath.Join(dir, "restricted")
	if err := os.WriteFile(zero, []byte("0000000000000000 T _stext\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewKernel(zero).Entries([]uint64{1}); err == nil {
		t.Error("kptr_restrict's zero addresses: want an error")
	}
}

func TestUserMappings(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	maps := "00400000-00401000 r--p 00000000 08:01 12 /probe\n00401000-00500000 r-xp 00001000 08:01 12 /probe\n" +
		"7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]\n7f000000-7f001000 r-xp 00002000 08:01 13 /lib/with space.so\n"
	if err := os.WriteFile(filepath.Join(root, "42", "maps"), []byte(maps), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := User(root, 42, []uint64{0x401234, 0x7ffd0010, 0x7f000010})
	if err != nil {
		t.Fatal(err)
	}
	want := []events.StackTraceEntry{{Address: 0x401234, Offset: 0x1234, Module: "/probe"}, {Address: 0x7ffd0010},
		{Address: 0x7f000010, Offset: 0x2010, Module: "/lib/with space.so"}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("frame %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if got, err := User(root, 43, []uint64{5}); err == nil || got[0].Address != 5 {
		t.Errorf("a gone process: want the addresses alone and an error, got %v, %v", got, err)
	}
}
