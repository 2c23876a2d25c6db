package enforcer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/profiles"
)

// firstWriteELF is a static x86-64 program whose very first instructions
// write "WROTE\n" to stdout and exit 0: no loader, no libc, nothing runs
// before the write.
func firstWriteELF() []byte {
	code := []byte{
		0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, // mov rax, 1 (write)
		0x48, 0xc7, 0xc7, 0x01, 0x00, 0x00, 0x00, // mov rdi, 1
		0x48, 0x8d, 0x35, 0x15, 0x00, 0x00, 0x00, // lea rsi, [rip+21] (msg)
		0x48, 0xc7, 0xc2, 0x06, 0x00, 0x00, 0x00, // mov rdx, 6
		0x0f, 0x05, // syscall
		0x48, 0xc7, 0xc0, 0x3c, 0x00, 0x00, 0x00, // mov rax, 60 (exit)
		0x48, 0x31, 0xff, // xor rdi, rdi
		0x0f, 0x05, // syscall
	}
	code = append(code, "WROTE\n"...)
	const base, hdrs = 0x400000, 64 + 56
	size := uint64(hdrs + len(code))
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	for _, v := range []any{
		uint16(2), uint16(0x3e), uint32(1), uint64(base + hdrs), uint64(64), uint64(0), uint32(0),
		uint16(64), uint16(56), uint16(1), uint16(0), uint16(0), uint16(0), // ELF header
		uint32(1), uint32(5), uint64(0), uint64(base), uint64(base), size, size, uint64(0x1000), // PT_LOAD R+X
	} {
		_ = binary.Write(&b, le, v)
	}
	b.Write(code)
	return b.Bytes()
}

// The fallback's exec kill lands before the new image's first user
// instruction: a program whose first act is a write never writes.
func TestKernelExecKilledBeforeFirstInstruction(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the program is x86-64 code")
	}
	path := filepath.Join(t.TempDir(), "first-write")
	if err := os.WriteFile(path, firstWriteELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	// Control: it runs and writes outside any workload.
	if out, err := exec.Command(path).Output(); err != nil || string(out) != "WROTE\n" {
		t.Fatalf("broken test program: %v, output %q", err, out)
	}
	k := newKernel(t)
	p := &profiles.Profile{Name: "first-write", Mode: profiles.ModeEnforce}
	p.Points[profiles.PointExec] = []profiles.Selector{{Policy: "no-first-write", Call: "security_bprm_check",
		Paths: []profiles.BinaryMatch{{Operator: "In", Values: []string{path}}}, Action: profiles.ActionSigkill}}
	k.use(p, [profiles.NumPoints]uint32{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 20; i++ {
		cmd := k.command(ctx, path)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("run %d: %v, want killed by SIGKILL", i, err)
		}
		if len(out) != 0 {
			t.Fatalf("run %d: the program wrote %q before the kill", i, out)
		}
	}
}
