package enforcer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv"
	"github.com/ocigate/ocigate/profiles"
)

// FD redirection by every duplicating call: dup2 and dup3 name the new
// descriptor, dup and fcntl(F_DUPFD) return it. A socket landing on fd
// 0-2 is reported with the call that did it; a pipe is not.
func TestKernelDupCalls(t *testing.T) {
	testenv.NeedTools(t, "python3")
	k := newKernel(t)
	p := &profiles.Profile{Name: "dup", Mode: profiles.ModeEnforce}
	for i, call := range []string{"dup", "dup2", "dup3", "fcntl"} {
		p.Points[profiles.PointDup] = append(p.Points[profiles.PointDup], profiles.Selector{Policy: "fd-redirect", Call: call, Group: i,
			Variant:  map[string]uint8{"dup": 1, "dup2": 2, "dup3": 3, "fcntl": 4}[call],
			Families: []uint8{2, 10}, Fds: []uint8{0, 1, 2}, Action: profiles.ActionPost})
	}
	k.use(p, [profiles.NumPoints]uint32{})
	port, _ := relayListener(t)
	// libc's calls, not os.dup: Python's dup is fcntl(F_DUPFD_CLOEXEC).
	script := fmt.Sprintf(`import socket,os,ctypes
libc=ctypes.CDLL(None, use_errno=True)
s=socket.create_connection(("127.0.0.1",%d))
r,w=os.pipe()
os.close(0); assert libc.dup(s.fileno())==0
assert libc.dup2(s.fileno(),1)==1
os.close(2); assert libc.fcntl(s.fileno(),0,0)==2
assert libc.dup3(s.fileno(),2,0o2000000)==2
assert libc.dup2(r,0)==0
assert libc.fcntl(s.fileno(),0,10)>=10
`, port)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := k.command(ctx, "python3", "-c", script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python3: %v: %s", err, out)
	}
	evs := k.log.wait(t, 4, of(cmd.Process.Pid, profiles.PointDup))
	want := []struct {
		call     string
		new      int32
		selector int // the call's selector
	}{{"dup", 0, 0}, {"dup2", 1, 1}, {"fcntl", 2, 3}, {"dup3", 2, 2}}
	for i, w := range want {
		ev := evs[i]
		if ev.NewFD != w.new || ev.Family != 2 || ev.Action != profiles.ActionPost || ev.Selector != w.selector {
			t.Errorf("event %d: want %s onto %d, got selector %d old %d new %d family %d", i, w.call, w.new, ev.Selector, ev.OldFD, ev.NewFD, ev.Family)
		}
	}
}
