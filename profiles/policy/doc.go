// Package policy loads and validates ocigate's policy files into a typed
// AST with file:line positions. It parses and checks; it does not compile:
// turning the AST into kernel rules is another package's job.
//
// # Documents
//
// A file holds one or more YAML documents (separated by ---) of two kinds:
//
//   - TracingPolicy (or TracingPolicyNamespaced), apiVersion cilium.io/v1alpha1:
//     the subset of Tetragon's policy language ocigate can enforce.
//   - WorkloadProfile, apiVersion ocigate.io/v1alpha1: which containers get
//     which policies, in which mode.
//
// Everything that is not understood is an error, never ignored. Every
// problem is reported (up to 1000 per file), each as
//
//	FILE:LINE: FIELD.PATH: what is wrong
//
// for example
//
//	p.yaml:14: spec.kprobes[0].selectors[1].matchArgs[0].values[2]: "10.0.0.0/33" is not a CIDR
//
// and all of them together as an [Errors].
//
// # TracingPolicy subset
//
// metadata: name (required; lowercase letters, digits, '-' and '.', at most
// 253 characters), namespace, labels, annotations (kept, no meaning).
//
// spec.kprobes[]: call, one of
//
//	call                     args (index type)              returnArg
//	tcp_connect              0 sock                         int
//	security_socket_connect  0 socket, 1 sockaddr, 2 int    int
//	inet_csk_listen_start    0 sock                         int
//	tcp_sendmsg              0 sock, 2 int (size)           int
//	tcp_close                0 sock                         -
//	sk_alloc                 1 int (family)                 sock
//	__sk_free                0 sock                         -
//	dup2, dup3               0 fd, 1 int (new fd)           int
//	dup, fcntl               0 fd, 1 int (the fd returned)  int
//	security_bprm_check      0 linux_binprm                 int
//	memfd_create             -                              -
//
// syscall (false or absent: these are kernel functions), return,
// returnArg (required with return: true and only then), returnArgAction
// (TrackSock or UntrackSock, with a sock returnArg), message (at most 256
// bytes), tags (at most 16), args[] {index, type, label} and at most
// five selectors[]. A selector holds:
//
//   - matchArgs[] {index, operator, values}: index names a declared arg;
//     sock and socket args take SAddr DAddr NotSAddr NotDAddr (CIDRs; a bare
//     address is a /32 or /128; host bits are cleared, Raw keeps the text),
//     SPort DPort NotSPort NotDPort (ports or ranges "N-M"/"N:M"),
//     SPortPriv DPortPriv NotSPortPriv NotDPortPriv (no values), Protocol
//     (IPPROTO_ names or 0-255), Family (AF_ names or numbers) and State
//     (TCP_ names or numbers); sockaddr args take SAddr NotSAddr SPort
//     NotSPort Family, where SAddr/SPort are the address and port in the
//     sockaddr, i.e. the connect destination; int args take Equal and
//     NotEqual with decimal values (AF_ names too on sk_alloc's family
//     argument or an arg labelled "family"). Values may be YAML strings or
//     integers. An address list holds up to 100 000 values, other lists
//     10 000.
//   - matchBinaries[] {operator: In NotIn Prefix NotPrefix (absolute paths)
//     or Postfix NotPostfix (non-empty suffixes), values}.
//   - matchNamespaces[] {namespace: Uts Ipc Mnt Pid PidForChildren Net Time
//     TimeForChildren Cgroup User, operator: In NotIn, values: inode numbers
//     or host_ns}.
//   - matchActions[] {action: Post NoPost Sigkill Override NotifyEnforcer
//     Signal TrackSock UntrackSock, argError (negative errno: required by
//     Override, optional for NotifyEnforcer, default -1), argSig (1-64 or a
//     name such as SIGKILL: required by Signal, optional for NotifyEnforcer),
//     argSock (TrackSock/UntrackSock: index of a declared sock arg, default
//     0)}. No matchActions means Post; the AST says so with ImplicitPost.
//
// spec.options[] {name, value}: only policy-mode, monitor or enforce.
// podSelector, containerSelector, lists, enforcers, tracepoints, uprobes,
// lsmhooks and the like are "not supported by ocigate".
//
// # WorkloadProfile
//
//	apiVersion: ocigate.io/v1alpha1
//	kind: WorkloadProfile
//	metadata:
//	  name: web
//	spec:
//	  match:                      # all given lists must match; one entry of each
//	    images:                   # path.Match globs ("*" does not cross "/"),
//	    - "docker.io/library/nginx:*"   # optionally pinned: NAME@sha256:<64 hex>
//	    - "registry.local/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
//	    annotations:              # equals a value, or matches an RE2 regex (unanchored)
//	    - {key: team, equals: web}
//	    - {key: io.kubernetes.cri.container-name, regex: "^web-"}
//	    runtimes: [podman, containerd]   # runc crun podman containerd cri-o docker
//	  mode: enforce               # required: monitor or enforce
//	  failurePolicy: closed       # closed (default): refuse the container if it cannot be protected; or open
//	  policies:                   # at least one
//	  - name: enforce-no-reverse-shell    # a TracingPolicy document's metadata.name
//	  - inline:                   # a TracingPolicy without (or with) apiVersion and kind
//	      metadata: {name: web-egress}
//	      spec:
//	        kprobes:
//	        - call: tcp_connect
//	          args: [{index: 0, type: sock}]
//	          selectors:
//	          - matchArgs: [{index: 0, operator: NotDAddr, values: ["10.0.0.0/8"]}]
//	            matchActions: [{action: Sigkill}]
//	        options: [{name: policy-mode, value: enforce}]
//	  selectableBy:               # who may choose it by annotation although it is weaker than their own profile
//	    images: ["registry.local/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]
//	    namespaces: [web, "web-*"]   # path.Match globs on the runtime's pod namespace; or all: true
//	---
//	apiVersion: ocigate.io/v1alpha1
//	kind: WorkloadProfile
//	metadata: {name: everything-else}
//	spec:
//	  default: true               # containers no other profile matches; no match allowed
//	  mode: monitor
//	  policies: [{name: detect-reverse-shell-outbound}]
//
// Each policies[] entry has exactly one of name and inline. Inline policies
// share the name space of TracingPolicy documents (names are unique across
// both) but only documents can be referenced by name. selectableBy
// (optional) needs at least one of images (the syntax of match.images),
// namespaces and all; docs/trust.md says what it allows.
//
// # Loading
//
// [Parse] and [ParseFile] read one file; [LoadDir] reads every *.yaml and
// *.yml of a directory and also checks what spans files: unique names
// (errors name both places), references to existing policies, at most one
// default profile. Limits: 1 MiB per file, 64 documents per file, 10 000
// items per list, 100 000 for address values (so many addresses fit in
// 1 MiB only in compact flow style: [1.2.3.4,1.2.3.5,...]). YAML anchors and aliases are refused.
package policy
