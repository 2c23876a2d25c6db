package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

type member struct {
	mode       uint32
	rmaj, rmin uint32
	data       string
}

// unpack is a minimal newc reader for the test.
func unpack(t *testing.T, b []byte) ([]string, map[string]member) {
	t.Helper()
	var names []string
	out := map[string]member{}
	off := 0
	align := func() { off = (off + 3) &^ 3 }
	for {
		if len(b)-off < 110 || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		f := func(i int) uint32 {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return uint32(v)
		}
		mode, size, rmaj, rmin, nsz := f(1), f(6), f(9), f(10), f(11)
		name := string(b[off+110 : off+110+int(nsz)-1])
		off += 110 + int(nsz)
		align()
		data := string(b[off : off+int(size)])
		off += int(size)
		align()
		if name == trailer {
			if off != len(b) {
				t.Fatalf("%d bytes after the trailer", len(b)-off)
			}
			return names, out
		}
		names = append(names, name)
		out[name] = member{mode: mode, rmaj: rmaj, rmin: rmin, data: data}
	}
}

func TestPack(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "init"), []byte("#!/bin/sh\n"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "bin", "busybox"), []byte("12345"), 0o755))
	must(os.Symlink("busybox", filepath.Join(dir, "bin", "sh")))
	dev, err := parseDev("/dev/console:c:5:1:0600")
	must(err)

	var a, b bytes.Buffer
	must(pack(&a, dir, []*entry{dev}))
	must(pack(&b, dir, []*entry{dev}))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two packs of the same tree differ")
	}
	names, m := unpack(t, a.Bytes())
	want := []string{"bin", "bin/busybox", "bin/sh", "init", "dev/console"}
	if len(names) != len(want) {
		t.Fatalf("members %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("members %v, want %v", names, want)
		}
	}
	checks := []struct {
		name string
		mode uint32
		data string
	}{
		{"bin", syscall.S_IFDIR | 0o755, ""},
		{"bin/busybox", syscall.S_IFREG | 0o755, "12345"},
		{"bin/sh", syscall.S_IFLNK | 0o777, "busybox"},
		{"init", syscall.S_IFREG | 0o755, "#!/bin/sh\n"},
		{"dev/console", syscall.S_IFCHR | 0o600, ""},
	}
	for _, c := range checks {
		if got := m[c.name]; got.mode != c.mode || got.data != c.data {
			t.Errorf("%s: mode %o data %q, want %o %q", c.name, got.mode, got.data, c.mode, c.data)
		}
	}
	if c := m["dev/console"]; c.rmaj != 5 || c.rmin != 1 {
		t.Errorf("dev/console: %d:%d, want 5:1", c.rmaj, c.rmin)
	}
}

func TestParseDevErrors(t *testing.T) {
	for _, s := range []string{"dev/x", "dev/x:p:1:1:0600", "dev/x:c:a:1:0600", "dev/x:c:1:1:999"} {
		if _, err := parseDev(s); err == nil {
			t.Errorf("parseDev(%q) succeeded", s)
		}
	}
}
