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
// # TracingPolicy
//
// Every field of Tetragon's TracingPolicy schema parses: metadata (name
// required; lowercase letters, digits, '-' and '.', at most 253
// characters; namespace, labels, annotations kept), and in spec kprobes,
// fentries, lsmhooks, tracepoints, uprobes, usdts, enforcers, lists,
// options, selectorsMacros, podSelector, containerSelector, hostSelector,
// nodeSelector and loader. A hook outside ocigate's domain (network, exec,
// FD redirection, memfd) is refused with one error for the hook that says
// what it is, why, and the closest ocigate feature (domain.go classifies
// them); in the domain, the hooks of [SupportedCalls],
// [SupportedLSMHooks] and [SupportedTracepoints] load with the arguments
// ocigate reads of each (hooks.go and domain.go list them: e.g.
// security_socket_connect 0 socket, 1 sockaddr, 2 int; bprm_check_security
// 0 linux_binprm). A call named "list:NAME" stands for each call of the
// list. A hook holds at most five selectors; a selector's macros are
// merged into it first.
//
// A selector holds:
//
//   - matchArgs[] {index or args, operator, values}: on sock, socket and
//     skb arguments SAddr DAddr NotSAddr NotDAddr (CIDRs; a bare address
//     is a /32 or /128; host bits are cleared, Raw keeps the text), SPort
//     DPort NotSPort NotDPort (ports or ranges "N-M"/"N:M"), SPortPriv
//     DPortPriv NotSPortPriv NotSportPriv NotDPortPriv (no values),
//     Protocol (IPPROTO_ names or 0-255), Family (AF_ names or numbers),
//     State (TCP_ names or numbers; not on skb); on sockaddr SAddr NotSAddr
//     SPort NotSPort Family (the address in the sockaddr); on integers
//     Equal NotEqual InMap NotInMap (AF_ names too on a family argument);
//     on raw_syscalls' system call Equal NotEqual InMap NotInMap with
//     system call names, x86-64 numbers or list:NAME; on linux_binprm,
//     file, path and string Equal NotEqual Prefix NotPrefix Postfix
//     NotPostfix, and on linux_binprm ocigate's StdioSocket, StdioDialled,
//     Fileless and RelayedShell (no values). Tetragon's other operators are refused.
//     Values may be YAML strings or integers. An address list holds up to
//     100 000 values, other lists 10 000.
//   - matchBinaries[] {operator: In NotIn Prefix NotPrefix (absolute paths)
//     or Postfix NotPostfix (non-empty suffixes), values}; followChildren
//     is refused.
//   - matchNamespaces[] {namespace: Uts Ipc Mnt Pid PidForChildren Net Time
//     TimeForChildren Cgroup User, operator: In NotIn, values: inode numbers
//     or host_ns}.
//   - matchPIDs {operator, values, followForks, isNamespacePID},
//     matchCapabilities {type, operator, values: CAP_ names,
//     isNamespaceCapability}, matchNamespaceChanges: parsed (the compiler
//     says which it evaluates); matchCapabilityChanges,
//     matchParentBinaries, matchReturnArgs, matchReturnActions, matchData:
//     refused with their reason; matchWorkloads: empty selectors only.
//   - matchActions[] {action: every action of Tetragon's; argError (a
//     negative errno, or a positive value the call returns; Override
//     requires it, NotifyEnforcer defaults to -1), argSig (1-64 or a name
//     such as SIGKILL: required by Signal), argSock (TrackSock/UntrackSock:
//     a declared sock argument, default 0), argUrl (GetUrl), argFqdn
//     (DnsLookup), rateLimit and rateLimitScope, imaHash}. Set, stack
//     traces and the uprobe override fields are refused. No matchActions
//     means Post; the AST says so with ImplicitPost.
//
// spec.options[] {name, value}: policy-mode (monitor or enforce),
// disable-kprobe-multi and disable-uprobe-multi (no effect).
// What loads but is carried out otherwise than in Tetragon is kept as
// [Note]s on the policy.
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
//	    containers: [web, "side-*"]      # globs on a pod's container name (io.kubernetes.cri.container-name)
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
