package profilewatch

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func watch(t *testing.T, dirs []string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reasons := make(chan string, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := Watch(ctx, dirs, func(why string) { reasons <- why }, 100*time.Millisecond); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(50 * time.Millisecond) // let the watch start
	return reasons
}

func want(t *testing.T, reasons <-chan string, what string) string {
	t.Helper()
	select {
	case r := <-reasons:
		return r
	case <-time.After(3 * time.Second):
		t.Fatalf("no reload after %s", what)
	}
	return ""
}

func TestWatchReloadsOnChanges(t *testing.T) {
	dir := t.TempDir()
	reasons := watch(t, []string{dir})
	select {
	case r := <-reasons:
		t.Fatalf("a reload with nothing changed: %s", r)
	case <-time.After(2 * Debounce):
	}
	file := filepath.Join(dir, "p.yaml")
	// A burst of changes (write, then rename over) is one reload.
	if err := os.WriteFile(file+".tmp", []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	want(t, reasons, "a new file")
	select {
	case r := <-reasons:
		t.Fatalf("a burst gave a second reload: %s", r)
	case <-time.After(2 * Debounce):
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	want(t, reasons, "a removal")
}

func TestWatchSIGHUP(t *testing.T) {
	reasons := watch(t, []string{t.TempDir()})
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if r := want(t, reasons, "SIGHUP"); r != "SIGHUP" {
		t.Fatalf("reason %q, want SIGHUP", r)
	}
}

func TestWatchDirectoryThatAppearsLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	reasons := watch(t, []string{dir})
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	want(t, reasons, "the directory appearing")
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	want(t, reasons, "a file in the new directory")
}
