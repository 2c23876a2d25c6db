package profiles

import (
	"embed"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/profiles/policy"
)

// builtinFS holds the built-in profiles, one file each: TracingPolicy
// documents and the WorkloadProfile that uses them. See the comment at
// the top of each file.
//
//go:embed builtin/*.yaml
var builtinFS embed.FS

// BuiltinDir is the directory of the built-in files in file names of
// errors and notes ("builtin/reverse-shell.yaml:12: ...").
const BuiltinDir = "builtin"

// InternalAnnotation is the TracingPolicy annotation (metadata.annotations)
// through which a policy asks for selectors the YAML language cannot
// express. Its value is a comma-separated list of:
//
//	shell-stdio-inet    exec of a shell whose stdin, stdout or stderr is an
//	                    INET or INET6 socket: Sigkill (point exec)
//	relayed-shell       a shell reading commands from a pipe, fifo, pty
//	                    or unix socket whose output a connected process
//	                    relays (its parent or the reader of its stdout):
//	                    Sigkill (point relay)
//	raw-packet-sockets  packet sockets: Sigkill; raw sockets: Override
//	                    EPERM (point sock_create)
//	udp-send            every security_socket_connect selector of the
//	                    policy again for UDP sends (point sendmsg, call
//	                    security_socket_sendmsg): unconnected UDP sendto
//	                    never passes connect
//
// The selectors join the policy's own: same policy name, group and mode.
// Tetragon ignores the annotation, so such a policy stays valid Tetragon.
const InternalAnnotation = "ocigate.io/internal-selectors"

// internalSets are the selector sets InternalAnnotation may name.
var internalSets = map[string]func(out *Compiled){
	"shell-stdio-inet": func(out *Compiled) {
		out.Points[PointExec] = append(out.Points[PointExec], Default().Points[PointExec]...)
	},
	"relayed-shell": func(out *Compiled) {
		out.Points[PointRelay] = append(out.Points[PointRelay], Default().Points[PointRelay]...)
	},
	"raw-packet-sockets": func(out *Compiled) {
		out.Points[PointSockCreate] = append(out.Points[PointSockCreate], Default().Points[PointSockCreate]...)
	},
	"udp-send": udpSend,
}

// udpSend copies the policy's security_socket_connect selectors to UDP
// sends. A selector whose Protocol match excludes UDP is not copied.
func udpSend(out *Compiled) {
	udp := uint8(unix.IPPROTO_UDP)
	for _, s := range out.Points[PointConnect] {
		if s.Call != "security_socket_connect" || len(s.Protocols) > 0 && !slices.Contains(s.Protocols, udp) {
			continue
		}
		s.Call, s.Protocols = "security_socket_sendmsg", []uint8{udp}
		out.Points[PointSendmsg] = append(out.Points[PointSendmsg], s)
	}
}

// addInternal adds the selector sets tp's InternalAnnotation names.
func addInternal(tp *policy.TracingPolicy, out *Compiled, c *compiler) {
	v, ok := tp.Annotations[InternalAnnotation]
	if !ok {
		return
	}
	field := "metadata.annotations." + InternalAnnotation
	seen := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		add, known := internalSets[name]
		switch {
		case !known:
			c.errorf(tp.Pos, field, "%q is not an internal selector set (known: %s)", name, strings.Join(internalNames(), ", "))
			continue
		case seen[name]:
			c.errorf(tp.Pos, field, "%q given twice", name)
			continue
		}
		seen[name] = true
		var before [NumPoints]int
		for pt := range out.Points {
			before[pt] = len(out.Points[pt])
		}
		add(out)
		for pt := range out.Points {
			for i := before[pt]; i < len(out.Points[pt]); i++ {
				s := &out.Points[pt][i]
				s.Policy, s.Group, s.Monitor = tp.Name, 0, tp.Mode == "monitor"
				out.At[pt] = append(out.At[pt], tp.Pos)
			}
		}
	}
}

func internalNames() []string {
	names := make([]string, 0, len(internalSets))
	for n := range internalSets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// builtinDocs parses the embedded files, in name order. An error is a bug
// of the binary, not of the user's files.
func builtinDocs() ([]fileDocs, error) {
	names, err := fs.Glob(builtinFS, BuiltinDir+"/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []fileDocs
	var errs policy.Errors
	for _, name := range names {
		data, err := builtinFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		docs, err := policy.Parse(path.Clean(name), data)
		if err != nil {
			errs = appendErrs(errs, err)
			continue
		}
		out = append(out, fileDocs{file: name, docs: docs, builtin: true})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// BuiltinFiles returns the embedded files by name ("builtin/ci-runner.yaml"),
// for users who want to copy one and fill it in.
func BuiltinFiles() map[string][]byte {
	names, _ := fs.Glob(builtinFS, BuiltinDir+"/*.yaml")
	out := make(map[string][]byte, len(names))
	for _, n := range names {
		if data, err := builtinFS.ReadFile(n); err == nil {
			out[n] = data
		}
	}
	return out
}
