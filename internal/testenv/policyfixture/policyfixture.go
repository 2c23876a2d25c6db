// Package policyfixture holds the TracingPolicy parts that the tests of
// several packages (cmd/kube, internal/kube, test/k8s) apply: one copy
// of each.
package policyfixture

// DenyLoopback2 is a TracingPolicy spec's kprobes block, indented for
// a spec at the top level: it refuses (Override -1) a workload's TCP
// connect to 127.0.0.2, an address the tests keep for the attacker.
const DenyLoopback2 = `  kprobes:
  - call: tcp_connect
    syscall: false
    args: [{index: 0, type: sock}]
    selectors:
    - matchArgs: [{index: 0, operator: DAddr, values: ["127.0.0.2/32"]}]
      matchActions: [{action: Override, argError: -1}]
`
