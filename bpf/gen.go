// Package bpf holds ocigate's BPF programs, their generated bindings, the
// loader that picks a backend per enforcement point and attaches it, and
// the writer that turns compiled profiles into map entries.
package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel -type event -type selector -type point_rules -type workload -type rule_key -type addr_key -type name_key Fallback fallback.c -- -I/usr/include/x86_64-linux-gnu
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -target bpfel Security security.c -- -I/usr/include/x86_64-linux-gnu
