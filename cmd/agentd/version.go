package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ocigate/ocigate/bpf"
	"github.com/ocigate/ocigate/internal/buildinfo"
)

// agentInfo is this binary's build; the BPF objects' hash, when the build
// did not set it, is computed from the objects embedded.
func agentInfo() buildinfo.Info {
	info := buildinfo.Get()
	if buildinfo.BPFObjects == "" {
		var elfs [][]byte
		for _, o := range bpf.Objects() {
			elfs = append(elfs, o.ELF)
		}
		info.BPFObjects = bpfHash(elfs...)
	}
	return info
}

// bpfHash is what buildinfo.BPFObjects holds: the first 12 hex digits
// of the SHA-256 of the objects' bytes, one after the other (the
// Makefile's `cat bpf/fallback_bpfel.o bpf/security_bpfel.o | sha256sum`).
// It lives here, not in buildinfo, so that the hook links no crypto.
func bpfHash(objects ...[]byte) string {
	h := sha256.New()
	for _, o := range objects {
		h.Write(o)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// newVersionCmd returns `version`.
func newVersionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "version", Short: "print the version, commit, BPF objects' hash and protocol versions",
		Long: `Print the release version, the git commit, the hash of the BPF objects
this binary embeds (the first 12 hex digits of the SHA-256 of
bpf/fallback_bpfel.o and bpf/security_bpfel.o), and the hook-agent
protocol version it sends and the oldest it answers.`, Args: noArgs}
	formats := outputs{"text", "json", "yaml"}
	output := formats.add(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := formats.check(*output); err != nil {
			return err
		}
		info := agentInfo()
		return printData(cmd.OutOrStdout(), *output, info, func(w io.Writer) error {
			_, err := fmt.Fprintln(w, "ocigate-agentd", info)
			return err
		})
	}
	return cmd
}
