package apiserver

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/api"
)

const helperEnv = "OCIGATE_API_TEST_HELPER_SOCKET"

// TestHelperNonRootPeer is the child of TestNonRootPeerRefused. It speaks
// the protocol by hand: the server may answer (and hang up) before it
// reads, so a failed write must not hide the answer (see
// api.TestCallReadsAnswerAfterWriteFails for Call itself).
func TestHelperNonRootPeer(t *testing.T) {
	socket := os.Getenv(helperEnv)
	if socket == "" {
		t.Skip("helper process only")
	}
	c, err := net.Dial("unix", socket)
	if err != nil {
		fmt.Printf("HELPER dial: %v\n", err)
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	werr := api.WriteMessage(c, &api.Request{Op: api.OpStatus})
	var resp api.Response
	rerr := api.ReadMessage(c, &resp)
	fmt.Printf("HELPER uid=%d ok=%v error=%q write=%v read=%v\n", os.Getuid(), resp.OK, resp.Error, werr, rerr)
}

func TestNonRootPeerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a peer as another uid")
	}
	h := newFakeHandler(nil)
	path, _, stop := serve(t, h)
	dir := filepath.Dir(path)
	for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(filepath.Dir(dir))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	// The test binary lives in a root-only build directory: copy it.
	bin := filepath.Join(dir, "helper.test")
	if err := copyExecutable(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestHelperNonRootPeer$", "-test.count=1")
	cmd.Env = []string{helperEnv + "=" + path}
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, `HELPER uid=65534 ok=false error="peer uid 65534 refused: root only"`) {
		t.Fatalf("helper output does not show a refusal:\n%s", s)
	}
	stop()
	if n := len(h.requests()); n != 0 {
		t.Fatalf("handler was called %d times for a non-root peer", n)
	}
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

const nilHelperEnv = "OCIGATE_APISERVER_NIL_HELPER"

// TestHelperNilResponse is the child of TestHandlerNilResponseDoesNotCrash:
// it serves a handler that answers (nil, nil) and calls it once.
func TestHelperNilResponse(t *testing.T) {
	if os.Getenv(nilHelperEnv) == "" {
		t.Skip("helper process only")
	}
	path, _, stop := serve(t, newFakeHandler(func(*api.Request) (*api.Response, error) { return nil, nil }))
	resp, err := api.Call(callCtx(t), path, &api.Request{Op: api.OpStatus})
	stop()
	fmt.Printf("HELPER-NIL answered resp=%v err=%v\n", resp != nil, err)
}

// A handler that returns neither a response nor an error must not take
// the agent down: the server runs in the privileged agent, and a panic in
// a connection goroutine kills the whole process (and with it every
// container's registration path). Run in a child so the panic cannot kill
// this test binary.
func TestHandlerNilResponseDoesNotCrash(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNilResponse$", "-test.count=1")
	cmd.Env = append(os.Environ(), nilHelperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "HELPER-NIL answered") {
		first, _, _ := strings.Cut(string(out), "\n\ngoroutine")
		t.Fatalf("server crashed on a (nil, nil) handler answer: %v\n%s", err, first)
	}
}
