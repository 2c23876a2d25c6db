// Package policyfixture holds the TracingPolicy parts that the tests of
// several packages (cmd/kube, internal/kube, test/k8s) apply: one copy
// of each.
package policyfixture

import "strings"

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

// Indent prefixes every line of block (DenyLoopback2, say) with prefix:
// the same block for a spec nested deeper, as a WorkloadProfile's
// inline policy is.
func Indent(block, prefix string) string {
	lines := strings.SplitAfter(strings.TrimSuffix(block, "\n"), "\n")
	return prefix + strings.Join(lines, prefix) + "\n"
}
