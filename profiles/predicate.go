package profiles

// Predicate names of the exec-time selectors that decide "this is a
// reverse shell" (Selector.Predicate), as events and `profiles show`
// print them.
const (
	PredicateShellStdio   = "shell-stdio-socket"
	PredicateDialledStdio = "dialled-stdio-socket"
	PredicateStdio        = "stdio-socket"
	PredicateRelayed      = "relayed-shell"
	PredicateFileless     = "fileless"
)

// Predicate names the exec-time predicate s decides by, "" for a
// selector that has none (a connect, a path match, ...). A selector
// that holds several is named by the most specific.
func (s *Selector) Predicate() string {
	switch {
	case s.Relayed:
		return PredicateRelayed
	case s.StdioDialled:
		return PredicateDialledStdio
	case s.StdioInet && len(s.Names.Names) > 0 && !s.Names.Not:
		return PredicateShellStdio
	case s.StdioInet:
		return PredicateStdio
	case s.Fileless:
		return PredicateFileless
	}
	return ""
}

// predicateWords says in plain words what each predicate decides by.
var predicateWords = map[string]string{
	PredicateShellStdio: "a program whose file or name is a shell's is exec'd with stdin, stdout or stderr " +
		"on a network (INET/INET6) socket, whoever opened it",
	PredicateDialledStdio: "any program is exec'd with stdin, stdout or stderr on a network socket while it, " +
		"its parent or its grandparent dialled (connect) a socket of the same kind (TCP, UDP): a reverse " +
		"connection; a connection the workload accepted (inetd-style handlers) does not count",
	PredicateStdio: "any program is exec'd with stdin, stdout or stderr on a network socket",
	PredicateRelayed: "a shell that reads its commands from stdin (no -c, no script, or -i/-s) on a pipe, " +
		"fifo, pty or unix socket, while its parent or grandparent dialled a connection and gets the " +
		"shell's output back (a pty, a unix socket, a pipe it reads), or the reader of its output " +
		"dialled one; a script piped into a shell whose output goes elsewhere (curl | sh) does not count",
	PredicateFileless: "the executed file has no link on disk (memfd_create, a deleted file)",
}

// PredicateWords is the plain-words meaning of a predicate name, "" for
// an unknown one.
func PredicateWords(name string) string {
	return predicateWords[name]
}
