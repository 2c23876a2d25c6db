package main

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ocigate/ocigate/internal/api/wire"
	"github.com/ocigate/ocigate/internal/errwrap"
	"github.com/ocigate/ocigate/runtime/oci"
)

// The annotations containerd's CRI plugin sets on every container it
// creates, and CRI-O's (its "internal" ones); a pod's own annotations
// cannot set them (trust.md).
const (
	annSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	annSandboxName      = "io.kubernetes.cri.sandbox-name"
	annContainerType    = "io.kubernetes.cri.container-type"
	annCRIONamespace    = "io.kubernetes.cri-o.Namespace"
	annCRIOSandboxName  = "io.kubernetes.cri-o.SandboxName"
	annCRIOType         = "io.kubernetes.cri-o.ContainerType"
)

// podOf is a container's pod namespace and name and whether it is the
// pod's sandbox, from containerd's annotations or CRI-O's.
func podOf(ann map[string]string) (ns, name string, sandbox bool) {
	if ns = ann[annSandboxNamespace]; ns != "" {
		return ns, ann[annSandboxName], ann[annContainerType] == "sandbox"
	}
	return ann[annCRIONamespace], ann[annCRIOSandboxName], ann[annCRIOType] == "sandbox"
}

// gateOptions are the flags of the NRI gate: the hook in containerd's
// base runtime spec of a node where the agent registers containers as
// an NRI plugin (docs/kubernetes.md, "No bootstrap deadlock").
type gateOptions struct {
	on bool
	// namespaces are exempt whatever the file says: the node's own
	// configuration, so the agent's pod starts on a fresh node.
	namespaces string
	// file lists more exempt namespaces, one a line: the chart's
	// exemptNamespaces, written by ocigate-kube, kept while it is gone.
	file string
}

func (g *gateOptions) flags(fs *flagSet) {
	fs.Bool(&g.on, "nri-gate", "createRuntime hook of a Kubernetes node: defer to the agent's NRI plugin while "+
		"it is connected, register the container while only the agent listens, and while no agent listens let only the "+
		"pods of exempt namespaces start")
	fs.String(&g.namespaces, "exempt-namespaces", "", "with --nri-gate: comma-separated namespaces whose pods start while no agent listens")
	fs.String(&g.file, "exempt-file", "", "with --nri-gate: file of more such namespaces, one a line (absent: none)")
}

// check refuses the gate's flags without --nri-gate: they would do
// nothing.
func (g *gateOptions) check() error {
	if !g.on && (g.namespaces != "" || g.file != "") {
		return errors.New("--exempt-namespaces and --exempt-file are the gate's: they need --nri-gate")
	}
	return nil
}

// gate admits a container at createRuntime, in place of register, on a
// node where the agent is an NRI plugin:
//   - a pod's sandbox (pause) container runs no workload: admitted;
//   - the agent listens and its NRI plugin is connected (the agent's
//     marker file, wire.NRIMarker, is there): admitted, the plugin
//     registers the container at StartContainer (no double
//     registration);
//   - the agent listens but its plugin is not connected (the runtime
//     restarted, the plugin reconnects; CRI-O's hooks.d, no plugin): the
//     hook registers it, and the agent decides;
//   - no agent listens: a pod of an exempt namespace starts (the agent
//     adopts it when its plugin connects); any other is registered as
//     register does — waiting for a restarting agent — or refused.
//
// Asking the agent's status instead would cost a millisecond of its
// work per container start; a connect and a stat cost microseconds.
func gate(deadline time.Time, o *options, stdin io.Reader) (*oci.Container, *wire.Verdict, error) {
	c, err := oci.LoadContainer(stdin)
	o.timing.mark("load")
	if err != nil {
		return c, nil, err
	}
	ns, pod, sandbox := podOf(c.Annotations)
	if sandbox {
		return c, nil, nil
	}
	err = wire.Listening(o.socket, deadline)
	o.timing.mark("dial")
	if err == nil {
		if _, err := os.Stat(wire.NRIMarker(o.socket)); err == nil {
			return c, nil, nil
		}
		v, err := registerLoaded(deadline, o, c)
		return c, v, err
	}
	exempt, why := o.gate.exempt(ns)
	if exempt {
		return c, nil, nil
	}
	v, err := registerLoaded(deadline, o, c)
	if err != nil {
		err = errwrap.Message(err.Error()+"; pod "+ns+"/"+pod+": "+why, err)
	}
	return c, v, err
}

// exempt says whether pods of namespace ns may start while no agent
// listens, and if not, why.
func (g *gateOptions) exempt(ns string) (bool, string) {
	if ns == "" {
		return false, "the container has no " + annSandboxNamespace + " or " + annCRIONamespace + " annotation (not a pod's)"
	}
	list := splitList(g.namespaces)
	more, err := readNamespaces(g.file)
	for _, n := range more {
		if !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	if slices.Contains(list, ns) {
		return true, ""
	}
	why := "namespace " + strconv.Quote(ns) + " is not exempt (exempt: " + strings.Join(list, ", ") + ")"
	if err != nil {
		why += "; " + err.Error()
	}
	return false, why
}

// readNamespaces reads a file of namespaces, one a line; blank lines
// and lines starting with # are skipped. No file: none.
func readNamespaces(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errwrap.Wrap("exempt namespaces file", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		return out, errwrap.Wrap("exempt namespaces file "+path, err)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
