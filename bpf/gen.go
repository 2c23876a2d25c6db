// Package bpf holds ocigate's two BPF objects: the C programs
// (fallback.c, security.c and their headers), their generated bindings
// (FallbackSelector, FallbackEvent, FallbackMaps, LoadFallback …), the Go
// mirror of the ABI they share with Go (abi.go, checked against
// common.h) and the list of objects and their shared maps (objects.go).
//
// Loading and attaching them is bpf/enforcer's job, turning profiles
// into their map entries bpf/rulemaps's, and decoding their ring buffer
// records bpf/record's.
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -type event -type selector -type point_rules -type workload -type rule_key -type addr_key -type name_key Fallback fallback.c -- -I/usr/include/x86_64-linux-gnu
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel Security security.c -- -I/usr/include/x86_64-linux-gnu
