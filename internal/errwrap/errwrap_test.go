package errwrap

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestWrapSaysWhatErrorfSays(t *testing.T) {
	err := Wrap("read state", fs.ErrNotExist)
	if want := fmt.Errorf("read state: %w", fs.ErrNotExist).Error(); err.Error() != want {
		t.Errorf("Wrap says %q, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Wrap(%v) does not unwrap to fs.ErrNotExist", err)
	}
}

func TestMessageKeepsItsTextAndUnwraps(t *testing.T) {
	inner := &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}
	err := Message(inner.Error()+"; annotation refused", inner)
	if err.Error() != "open /x: permission denied; annotation refused" {
		t.Errorf("Message says %q", err)
	}
	var pe *fs.PathError
	if !errors.As(err, &pe) || pe != inner {
		t.Errorf("Message(%v) does not unwrap to its *fs.PathError", err)
	}
}
