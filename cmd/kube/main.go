// Command ocigate-kube is the Kubernetes side of an ocigate node: it
// watches the API server (this node's pods; TracingPolicy,
// TracingPolicyNamespaced and WorkloadProfile objects), writes the
// profiles file the node's agent loads from its profiles directory, and
// writes each policy's status for its node. It runs beside
// ocigate-agentd in the DaemonSet's pod, so that the agent itself links
// no client-go (docs/kubernetes.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/atomicfile"
)

// options are the command's flags.
type options struct {
	node, kubeconfig, file, socket string
	exempt, exemptFile             string
	confirm                        time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.node, "node", os.Getenv("NODE_NAME"), "this node's name (the pods watched are those bound to it); default $NODE_NAME")
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (empty: the pod's service account)")
	flag.StringVar(&o.file, "profiles-file", "/etc/ocigate/profiles/kubernetes.yaml", "the file written into the agent's profiles directory")
	flag.StringVar(&o.socket, "socket", api.DefaultSocket, "the agent's API socket, asked whether it loaded the file")
	flag.StringVar(&o.exempt, "exempt-namespaces", "kube-system,"+os.Getenv("POD_NAMESPACE"), "comma-separated namespaces whose pods no cluster policy selects")
	flag.StringVar(&o.exemptFile, "exempt-file", "", "file written with the exempt namespaces, one a line, for ocigate-hook --nri-gate "+
		"(the node's gate while no agent answers); empty: none")
	flag.DurationVar(&o.confirm, "confirm-timeout", 15*time.Second, "how long to wait for the agent to load a new file before a policy's status says it did not")
	flag.Parse()
	log, _ := zap.NewProduction()
	if err := run(o, log); err != nil {
		log.Error("ocigate-kube failed", zap.Error(err))
		os.Exit(1)
	}
}

func run(o options, log *zap.Logger) error {
	if o.node == "" {
		return fmt.Errorf("--node (or $NODE_NAME) is required")
	}
	if err := writeExempt(o.exemptFile, exemptSet(o.exempt)); err != nil {
		return err
	}
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	cfg.UserAgent = "ocigate-kube"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	c, err := newController(o, cs, dc, log)
	if err != nil {
		return err
	}
	defer c.close()
	return c.run(ctx)
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster configuration (or pass --kubeconfig): %w", err)
	}
	return cfg, nil
}

// exemptSet parses --exempt-namespaces.
func exemptSet(s string) map[string]bool {
	out := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out[n] = true
		}
	}
	return out
}

// writeExempt writes the exempt namespaces, sorted, one a line, for the
// node's gate (ocigate-hook --nri-gate --exempt-file): it outlives this
// pod on the host, so the pods of those namespaces start while no agent
// answers.
func writeExempt(path string, exempt map[string]bool) error {
	if path == "" {
		return nil
	}
	var b strings.Builder
	b.WriteString("# written by ocigate-kube (--exempt-namespaces): read by ocigate-hook --nri-gate\n")
	for _, n := range slices.Sorted(maps.Keys(exempt)) {
		b.WriteString(n + "\n")
	}
	if err := atomicfile.Write(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("exempt namespaces file: %w", err)
	}
	return nil
}
