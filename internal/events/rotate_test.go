package events

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// lineLen is the length of sample(pid)'s JSON line, newline included.
func lineLen(t *testing.T, pid uint32) int64 {
	t.Helper()
	b, err := json.Marshal(sample(pid))
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b) + 1)
}

// pidsIn reads a file of JSON lines and returns each line's pid; any
// line that is not a whole event fails the test.
func pidsIn(t *testing.T, path string) []uint32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a newline: %q", path, b)
	}
	var pids []uint32
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		var ev Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("%s line %d is not a whole event (%v): %q", path, i+1, err, l)
		}
		pids = append(pids, ev.ProcessKprobe.Process.Pid.Value)
	}
	return pids
}

func writeAll(t *testing.T, w *Writer, from, to uint32) {
	t.Helper()
	for pid := from; pid <= to; pid++ {
		if err := w.Write(sample(pid)); err != nil {
			t.Fatalf("write %d: %v", pid, err)
		}
	}
}

func TestRotateKeepsWholeLinesInOrder(t *testing.T) {
	n := lineLen(t, 100) // pids 100..199 all have the same length
	for _, backups := range []int{1, 3, 5} {
		t.Run(strconv.Itoa(backups), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.jsonl")
			// Three lines fit; the fourth would pass the size by one byte less than a line.
			w, err := OpenFile(path, Rotation{MaxSize: 3*n + n/2, MaxBackups: backups})
			if err != nil {
				t.Fatal(err)
			}
			writeAll(t, w, 100, 119) // 20 events: six files of 3, then 2
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var kept []uint32
			for i := backups; i >= 1; i-- {
				p := pidsIn(t, path+"."+strconv.Itoa(i))
				if len(p) != 3 {
					t.Fatalf("%s.%d holds %v, want 3 events", path, i, p)
				}
				kept = append(kept, p...)
			}
			if _, err := os.Stat(path + "." + strconv.Itoa(backups+1)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("backup %d beyond the limit of %d exists (%v)", backups+1, backups, err)
			}
			cur := pidsIn(t, path)
			if len(cur) != 2 {
				t.Fatalf("%s holds %v, want the last 2 events", path, cur)
			}
			kept = append(kept, cur...)
			// The newest events, in order, with nothing lost in between.
			first := uint32(120 - len(kept))
			for i, pid := range kept {
				if pid != first+uint32(i) {
					t.Fatalf("events across the files %v, want %d..119 in order", kept, first)
				}
			}
			for i := 0; i <= backups; i++ {
				p := path
				if i > 0 {
					p += "." + strconv.Itoa(i)
				}
				if fi, err := os.Stat(p); err != nil || fi.Size() > 3*n+n/2 || fi.Mode().Perm() != 0o600 {
					t.Fatalf("%s: %v, %v", p, fi, err)
				}
			}
		})
	}
}

// A line longer than the limit is written whole, alone in its file.
func TestRotateLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := OpenFile(path, Rotation{MaxSize: 10, MaxBackups: 2})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, 1, 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for suffix, want := range map[string]uint32{".2": 1, ".1": 2, "": 3} {
		if got := pidsIn(t, path+suffix); len(got) != 1 || got[0] != want {
			t.Fatalf("%s%s holds %v, want [%d]", path, suffix, got, want)
		}
	}
}

// What the file held before the agent started counts towards its size.
func TestRotateCountsExistingContent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	old := "{\"old\":true}\n"
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := OpenFile(path, Rotation{MaxSize: int64(len(old)) + lineLen(t, 5) - 1, MaxBackups: 1})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, 5, 5)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path + ".1"); string(b) != old {
		t.Fatalf("backup holds %q, want the old content", b)
	}
	if got := pidsIn(t, path); len(got) != 1 || got[0] != 5 {
		t.Fatalf("new file holds %v", got)
	}
}

// The file that goes is renamed away and freed in the background; Close
// waits for it, and nothing is left.
func TestRotateRemovesInBackground(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	w, err := OpenFile(path, Rotation{MaxSize: lineLen(t, 10), MaxBackups: 1})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, 10, 19) // nine rotations, eight backups removed
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(names) != 2 || names[0] != path || names[1] != path+".1" {
		t.Fatalf("files left: %v, %v", names, err)
	}
	if got := pidsIn(t, path+".1"); len(got) != 1 || got[0] != 18 {
		t.Fatalf("backup holds %v", got)
	}
}

func TestRotateWithoutBackups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := OpenFile(path, Rotation{MaxSize: 2 * lineLen(t, 10), MaxBackups: 0})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, 10, 14)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := pidsIn(t, path); len(got) != 1 || got[0] != 14 {
		t.Fatalf("file holds %v, want [14]", got)
	}
	if _, err := os.Stat(path + ".1"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a backup exists with MaxBackups 0: %v", err)
	}
}

func TestNoRotationWithoutSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := OpenFile(path, Rotation{MaxBackups: 3})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, 1, 50)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := pidsIn(t, path); len(got) != 50 {
		t.Fatalf("file holds %d events, want 50", len(got))
	}
}

// A rotation that fails keeps the event in the current file, says so,
// and is tried again only after another MaxSize bytes.
func TestRotateFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	n := lineLen(t, 10)
	// A non-empty directory where the backup goes: rename fails.
	if err := os.MkdirAll(filepath.Join(path+".1", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	w, err := OpenFile(path, Rotation{MaxSize: 2 * n, MaxBackups: 1})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, 10, 11)
	err = w.Write(sample(12))
	if !errors.Is(err, ErrRotate) || !strings.Contains(err.Error(), path) {
		t.Fatalf("write during a failing rotation: %v, want ErrRotate naming %s", err, path)
	}
	writeAll(t, w, 13, 13) // no retry yet: size 4n, retry at 2n+2n
	if err := os.RemoveAll(path + ".1"); err != nil {
		t.Fatal(err)
	}
	writeAll(t, w, 14, 14) // size 4n >= retryAt: rotates now
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := pidsIn(t, path+".1"); len(got) != 4 || got[0] != 10 || got[3] != 13 {
		t.Fatalf("backup holds %v, want 10..13", got)
	}
	if got := pidsIn(t, path); len(got) != 1 || got[0] != 14 {
		t.Fatalf("file holds %v, want [14]", got)
	}
}

func TestRotationValidate(t *testing.T) {
	for _, r := range []Rotation{{MaxSize: -1}, {MaxBackups: -2}} {
		if _, err := OpenFile(filepath.Join(t.TempDir(), "x"), r); err == nil || !strings.Contains(err.Error(), "negative") {
			t.Errorf("%+v: got %v, want a negative bound error", r, err)
		}
	}
}

// Lines encoded apart (AppendLine) and buffered in batches (WriteLines)
// end up in the files exactly as events written one by one do, across
// rotations within a batch.
func TestWriteLinesRotatesLikeWrite(t *testing.T) {
	n := lineLen(t, 100)
	dir := t.TempDir()
	open := func(name string) (*Writer, string) {
		path := filepath.Join(dir, name)
		w, err := OpenFile(path, Rotation{MaxSize: 3*n + n/2, MaxBackups: 9})
		if err != nil {
			t.Fatal(err)
		}
		return w, path
	}
	one, onePath := open("one.jsonl")
	writeAll(t, one, 100, 119)
	batched, batchedPath := open("batched.jsonl")
	var b []byte
	lines := 0
	for pid := uint32(100); pid <= 119; pid++ {
		var err error
		if b, err = batched.AppendLine(b, sample(pid), &Encoder{}); err != nil {
			t.Fatal(err)
		}
		if lines++; lines == 7 || pid == 119 {
			if err := batched.WriteLines(b, lines); err != nil {
				t.Fatal(err)
			}
			b, lines = b[:0], 0
		}
	}
	for _, w := range []*Writer{one, batched} {
		if err := w.Close(); err != nil || w.Written() != 20 {
			t.Fatalf("close: %v, %d written", err, w.Written())
		}
	}
	for i := 0; i <= 9; i++ {
		suffix := ""
		if i > 0 {
			suffix = "." + strconv.Itoa(i)
		}
		want, _ := os.ReadFile(onePath + suffix)
		got, _ := os.ReadFile(batchedPath + suffix)
		if string(got) != string(want) {
			t.Fatalf("file %q: batched %q, one by one %q", suffix, got, want)
		}
	}
}
