package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ocigate/ocigate/internal/testenv/peer"
)

// The benign corpus of the precision test (corpus_test.go): what real
// containers and CI jobs run that looks like a reverse shell to a naive
// rule. Under the built-in default each must run undisturbed: exit 0,
// its expected output, no enforced verdict.

// benignRun is one benign pattern's container and, for servers, the
// client the test runs against it while it runs.
type benignRun struct {
	args []string
	want string // in the container's stdout, or the client's answer
	// client runs during the container (a server) and returns what it
	// got back.
	client func() (string, error)
}

// installer is what the loopback "download server" hands out.
const installer = "echo installed-$((6*7))\n"

func httpServer(t *testing.T, body string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// freePort is a loopback TCP port nobody listens on now.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// tcpClient is the host's side of a benign pattern's exchange with its
// server in the container (peer.Exchange).
func tcpClient(port int, in string, halfClose bool, until string) func() (string, error) {
	return func() (string, error) { return peer.Exchange(port, in, halfClose, until, 10*time.Second) }
}

// gitRepo makes a repository with one commit under dir/repo.
func gitRepo(t *testing.T) string {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	for _, args := range [][]string{{"init", "-q", repo}, {"-C", repo, "-c", "user.name=c", "-c", "user.email=c@c", "commit", "-q", "--allow-empty", "-m", "corpus-commit"}} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	return dir
}

// gitDaemon serves dir's repositories over git:// on the loopback.
func gitDaemon(t *testing.T, dir string) int {
	port := freePort(t)
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--base-path="+dir, "--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return port
}

func shArgs(script string) []string { return []string{"/bin/sh", "-c", script} }

// benignCorpus lists the patterns; each setup starts what the pattern
// needs on the host side (loopback only).
func benignCorpus() []corpusCase {
	return append(append(serverPatterns(), feederPatterns()...), clientPatterns()...)
}

// serverPatterns accept connections and run handlers or sessions on them.
func serverPatterns() []corpusCase {
	return []corpusCase{
		{name: "inetd-nc-rev", what: "busybox nc -l -p PORT -e /usr/bin/rev (inetd-style handler on an accepted socket)", benign: func(t *testing.T) benignRun {
			p := freePort(t)
			return benignRun{args: []string{"/usr/bin/busybox", "nc", "-l", "-p", fmt.Sprint(p), "-e", "/usr/bin/rev"}, want: "olleh", client: tcpClient(p, "hello\n", true, "")}
		}},
		{name: "inetd-nc-traditional-rev", what: "nc.traditional -l -p PORT -e /usr/bin/rev (the accepted socket itself as stdio)", benign: func(t *testing.T) benignRun {
			p := freePort(t)
			return benignRun{args: []string{"/usr/bin/nc.traditional", "-l", "-p", fmt.Sprint(p), "-e", "/usr/bin/rev"}, want: "olleh", client: tcpClient(p, "hello\n", true, "")}
		}},
		{name: "ncat-listen-exec", what: "ncat -l --exec sed (a handler on pipes, ncat relays)", benign: func(t *testing.T) benignRun {
			p := freePort(t)
			return benignRun{args: []string{"/usr/bin/ncat", "-l", "127.0.0.1", fmt.Sprint(p), "--exec", "/usr/bin/sed -u s/hello/olleh/"}, want: "olleh", client: tcpClient(p, "hello\n", false, "olleh")}
		}},
		{name: "git-daemon-inetd", what: "busybox nc -l -e git daemon --inetd (upload-pack on the accepted socket)", benign: func(t *testing.T) benignRun {
			p := freePort(t)
			script := fmt.Sprintf("git init -q /tmp/r && git -C /tmp/r -c user.name=c -c user.email=c@c commit -q --allow-empty -m x && "+
				"exec /usr/bin/busybox nc -l -p %d -e /usr/bin/git daemon --inetd --export-all /tmp/r", p)
			return benignRun{args: shArgs(script), want: "HEAD", client: func() (string, error) {
				var out []byte
				var err error
				for i := 0; i < 100; i++ {
					if out, err = exec.Command("git", "ls-remote", fmt.Sprintf("git://127.0.0.1:%d/tmp/r", p)).CombinedOutput(); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				return string(out), err
			}}
		}},
		{name: "accept-fork-exec", what: "socket activation Accept=yes: accept, exec tr with the connection as stdio", benign: func(t *testing.T) benignRun {
			p := freePort(t)
			return benignRun{args: []string{"/usr/bin/python3", "-c", fmt.Sprintf(`import socket,subprocess
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); l.bind(("127.0.0.1",%d)); l.listen(1)
c,_=l.accept(); subprocess.run(["/usr/bin/tr","a-z","A-Z"],stdin=c,stdout=c,check=True)`, p)}, want: "HELLO", client: tcpClient(p, "hello\n", true, "")}
		}},
		{name: "resolver-then-accept", what: "a server that looked a name up (a connected UDP socket, as the resolver's) execs tr on an accepted connection", benign: func(t *testing.T) benignRun {
			p := freePort(t)
			return benignRun{args: []string{"/usr/bin/python3", "-c", fmt.Sprintf(`import socket,subprocess
u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.connect(("127.0.0.1",53)); u.close()
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); l.bind(("127.0.0.1",%d)); l.listen(1)
c,_=l.accept(); subprocess.run(["/usr/bin/tr","a-z","A-Z"],stdin=c,stdout=c,check=True)`, p)}, want: "HELLO", client: tcpClient(p, "hello\n", true, "")}
		}},
		{name: "socat-listen-exec", what: "socat TCP-LISTEN:PORT EXEC:/usr/bin/rev (socketpair stdio)", benign: func(t *testing.T) benignRun {
			p := freePort(t)
			return benignRun{args: []string{"/usr/bin/socat", fmt.Sprintf("TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr", p), "EXEC:/usr/bin/rev"}, want: "olleh", client: tcpClient(p, "hello\n", true, "")}
		}},
		{name: "sshd-style-pty", what: "sshd-style: accept, sh -i on a pty, relay the accepted connection", benign: func(t *testing.T) benignRun {
			p := freePort(t)
			return benignRun{args: []string{"/usr/bin/python3", "-c", fmt.Sprintf(`import socket,os,pty,select
l=socket.socket(); l.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); l.bind(("127.0.0.1",%d)); l.listen(1)
c,_=l.accept(); pid,fd=pty.fork()
if pid==0: os.execv("/bin/sh",["sh","-i"])
while True:
  r,_,_=select.select([c,fd],[],[],5)
  if not r: break
  try:
    if c in r:
      d=c.recv(1024)
      if not d: break
      os.write(fd,d)
    if fd in r: c.sendall(os.read(fd,1024))
  except OSError: break
c.close(); os.waitpid(pid,0)`, p)}, want: "pty-42", client: tcpClient(p, "echo pty-$((6*7)); exit\n", false, "")}
		}},
		{name: "script-pty-session", what: "script -qec 'sh -i' /dev/null: an interactive shell on a pty", benign: func(t *testing.T) benignRun {
			return benignRun{args: shArgs(`printf 'echo pty-$((6*7))\nexit\n' | script -qec "sh -i" /dev/null`), want: "pty-42"}
		}},
	}
}

// feederPatterns feed shells scripts while holding connections.
func feederPatterns() []corpusCase {
	return []corpusCase{
		{name: "curl-pipe-sh", what: "curl -fsS URL | sh (installer)", benign: func(t *testing.T) benignRun {
			return benignRun{args: shArgs("curl -fsS " + httpServer(t, installer) + "/install.sh | sh"), want: "installed-42"}
		}},
		{name: "curl-pipe-bash-s", what: "curl -fsS URL | bash -s -- --yes (installer with arguments)", benign: func(t *testing.T) benignRun {
			return benignRun{args: shArgs("curl -fsS " + httpServer(t, installer) + "/install.sh | bash -s -- --yes"), want: "installed-42"}
		}},
		{name: "curl-o-then-sh", what: "curl -o install.sh URL && sh install.sh", benign: func(t *testing.T) benignRun {
			return benignRun{args: shArgs("curl -fsS -o /tmp/i.sh " + httpServer(t, installer) + "/i.sh && sh /tmp/i.sh"), want: "installed-42"}
		}},
		{name: "fetch-pipe-bash", what: "python3 fetches a script over TCP, pipes it into bash's stdin", benign: func(t *testing.T) benignRun {
			return benignRun{args: []string{"/usr/bin/python3", "-c", fmt.Sprintf(`import subprocess,urllib.request
body=urllib.request.urlopen("%s/x", timeout=10).read()
subprocess.run(["/bin/bash"],input=body,check=True)`, httpServer(t, installer))}, want: "installed-42"}
		}},
		{name: "heredoc-held-socket", what: "bash holds a connected socket (fd 3) and runs sh <<EOF", benign: func(t *testing.T) benignRun {
			ln := listen(t, "127.0.0.1:0", "")
			return benignRun{args: []string{"/bin/bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d; sh <<'EOF'\necho heredoc-$((6*7))\nEOF\n", ln.Port())}, want: "heredoc-42"}
		}},
		{name: "socat-dial-exec", what: "socat TCP:HOST:PORT EXEC:sed (a dialled connection, socketpair stdio)", benign: func(t *testing.T) benignRun {
			ln := listen(t, "127.0.0.1:0", "hello\n")
			return benignRun{args: shArgs(fmt.Sprintf("timeout 3 socat TCP:127.0.0.1:%d 'EXEC:/usr/bin/sed -u s/hello/olleh/'; exit 0", ln.Port())), want: "olleh",
				client: func() (string, error) {
					ln.WaitReceived("olleh", 10*time.Second)
					return ln.Received(), nil
				}}
		}},
		{name: "ci-agent-feeder", what: "CI agent: connected, writes the job into bash's stdin, reads its output back", conflict: "ci-shell-executor", benign: func(t *testing.T) benignRun {
			ln := listen(t, "127.0.0.1:0", "echo job-$((6*7))\n")
			return benignRun{args: []string{"/usr/bin/python3", "-c", fmt.Sprintf(`import socket,subprocess
s=socket.create_connection(("127.0.0.1",%d)); job=s.recv(4096)
p=subprocess.run(["/bin/bash"],input=job,stdout=subprocess.PIPE,stderr=subprocess.STDOUT)
s.sendall(p.stdout); print(p.stdout.decode().strip())`, ln.Port())}, want: "job-42"}
		}},
	}
}

// clientPatterns: REPLs, language servers, clients, package managers,
// probes and plain shell work.
func clientPatterns() []corpusCase {
	return []corpusCase{
		{name: "socketpair-language-server", what: "an editor backend runs bash on a unix socketpair (no network)", benign: func(t *testing.T) benignRun {
			return benignRun{args: []string{"/usr/bin/python3", "-c", `import socket,subprocess
a,b=socket.socketpair(); p=subprocess.Popen(["/bin/bash"],stdin=b,stdout=b); b.close()
a.sendall(b"echo lsp-$((6*7)); exit\n"); print(a.recv(100).decode().strip()); p.wait()`}, want: "lsp-42"}
		}},
		{name: "node-repl-unix", what: "node REPL served on a unix socket", benign: func(t *testing.T) benignRun {
			return benignRun{args: []string{"/usr/bin/node", "-e", `const net=require("net"),repl=require("repl");
const srv=net.createServer(s=>repl.start({input:s,output:s,prompt:""})).listen("/tmp/repl.sock",()=>{
const c=net.connect("/tmp/repl.sock",()=>c.write("6*7\n"));let out="";
c.on("data",d=>{out+=d;if(out.includes("42")){console.log("repl-"+out.trim());process.exit(0)}})})`}, want: "repl-42"}
		}},
		{name: "python-repl-socat-unix", what: "socat UNIX-LISTEN EXEC:'python3 -i' and a client", benign: func(t *testing.T) benignRun {
			return benignRun{args: shArgs(`socat UNIX-LISTEN:/tmp/py.sock EXEC:"python3 -iq",stderr & for i in $(seq 100); do [ -S /tmp/py.sock ] && break; sleep 0.1; done; printf 'print(6*7)\n' | timeout 10 socat -t 5 - UNIX-CONNECT:/tmp/py.sock; wait`), want: "42"}
		}},
		{name: "git-clone-tcp", what: "git clone git://HOST:PORT/repo (git over TCP)", benign: func(t *testing.T) benignRun {
			p := gitDaemon(t, gitRepo(t))
			return benignRun{args: shArgs(fmt.Sprintf("git clone -q git://127.0.0.1:%d/repo /tmp/c && git -C /tmp/c log -1 --format=%%s", p)), want: "corpus-commit"}
		}},
		{name: "package-managers", what: "gem list --local, pip3 list", benign: func(t *testing.T) benignRun {
			return benignRun{args: shArgs("HOME=/tmp; gem list --local >/dev/null && pip3 list >/dev/null 2>&1 && echo pkg-ok"), want: "pkg-ok"}
		}},
		{name: "exec-health-probes", what: "sh -c 'curl -fsS URL/healthz' as an exec probe, three times", benign: func(t *testing.T) benignRun {
			url := httpServer(t, "ok")
			return benignRun{args: shArgs(fmt.Sprintf("for i in 1 2 3; do sh -c 'curl -fsS %s/healthz >/dev/null' || exit 1; done; echo healthy", url)), want: "healthy"}
		}},
		{name: "python-http-client", what: "python3 urllib client (a reverse-shell binary with a connected socket)", benign: func(t *testing.T) benignRun {
			return benignRun{args: []string{"/usr/bin/python3", "-c", fmt.Sprintf(`import sys,urllib.request
sys.stdout.write(urllib.request.urlopen("%s/x", timeout=10).read().decode())`, httpServer(t, "fetched"))}, want: "fetched"}
		}},
		{name: "connected-parent-sh-c", what: "a connected HTTP client runs sh -c on pipes", benign: func(t *testing.T) benignRun {
			return benignRun{args: []string{"/usr/bin/python3", "-c", fmt.Sprintf(`import subprocess,sys,urllib.request
body=urllib.request.urlopen("%s/x", timeout=10).read()
p=subprocess.run(["/bin/sh","-c","read x; echo $x via sh"],input=body+b"\n",stdout=subprocess.PIPE,check=True)
sys.stdout.write(p.stdout.decode())`, httpServer(t, "fetched"))}, want: "fetched via sh"}
		}},
		{name: "sh-c-pipe-stdio", what: "sh -c started with stdin, stdout and stderr on pipes", benign: func(t *testing.T) benignRun {
			return benignRun{args: []string{"/usr/bin/python3", "-c", `import subprocess,sys
p=subprocess.run(["/bin/sh","-c","read x; echo $x"],input=b"via-pipe\n",stdout=subprocess.PIPE,stderr=subprocess.PIPE,check=True)
sys.stdout.write(p.stdout.decode())`}, want: "via-pipe"}
		}},
		{name: "shell-pipeline", what: "sh -c 'echo hi | tr a-z A-Z | cat'", benign: func(t *testing.T) benignRun {
			return benignRun{args: shArgs("echo hi | tr a-z A-Z | cat"), want: "HI"}
		}},
		{name: "nc-client-send", what: "echo data | nc HOST PORT (a client sending data)", benign: func(t *testing.T) benignRun {
			ln := listen(t, "127.0.0.1:0", "")
			return benignRun{args: shArgs(fmt.Sprintf("echo payload | timeout 3 nc.traditional -q 1 127.0.0.1 %d; echo sent", ln.Port())), want: "payload",
				client: func() (string, error) { ln.WaitReceived("payload", 10*time.Second); return ln.Received(), nil }}
		}},
		{name: "getaddrinfo-addrconfig", what: "getaddrinfo with AI_ADDRCONFIG (a raw netlink socket)", benign: func(t *testing.T) benignRun {
			return benignRun{args: []string{"/usr/bin/python3", "-c", "import socket\nsocket.getaddrinfo('localhost', 80, flags=socket.AI_ADDRCONFIG)\nprint('gai-ok')"}, want: "gai-ok"}
		}},
	}
}
