// Package nriplugin is ocigate's NRI plugin (containerd ≥ 1.7, CRI-O ≥
// 1.26, through github.com/containerd/nri's stub): the runtime tells the
// agent of each container instead of an OCI hook. StartContainer
// registers it — the task exists and its init waits to exec the
// container's program, so enforcement is live before its first
// instruction — and an error there makes the runtime fail the start
// (fail-closed); StopContainer and RemoveContainer unregister; the
// containers already running when the plugin connects (Synchronize) are
// adopted.
package nriplugin

import (
	"context"
	"fmt"
	"maps"

	nri "github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	"go.uber.org/zap"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/runtime/describe"
	"github.com/ocigate/ocigate/runtime/running"
)

// Agent is what the plugin needs of the agent.
type Agent interface {
	Register(r *api.Registration) (*workload.Workload, error)
	Unregister(containerID string) error
	AdoptContainers(cs []running.Container)
}

// Plugin handles the runtime's NRI requests.
type Plugin struct {
	agent    Agent
	resolver cgroupfilter.Resolver
	log      *zap.Logger
	runtime  string // the runtime's name from Configure
}

// New returns a plugin registering with agent; resolver finds a
// container init's cgroup and namespaces.
func New(agent Agent, resolver cgroupfilter.Resolver, log *zap.Logger) *Plugin {
	if log == nil {
		log = zap.NewNop()
	}
	return &Plugin{agent: agent, resolver: resolver, log: log, runtime: "nri"}
}

// Configure learns the runtime's name; the events are those the plugin
// implements.
func (p *Plugin) Configure(_ context.Context, _, runtime, version string) (nri.EventMask, error) {
	if runtime != "" {
		p.runtime = runtime
	}
	p.log.Info("NRI: connected to the runtime", zap.String("runtime", runtime), zap.String("version", version))
	return 0, nil
}

// Synchronize adopts the containers that run already.
func (p *Plugin) Synchronize(_ context.Context, _ []*nri.PodSandbox, ctrs []*nri.Container) ([]*nri.ContainerUpdate, error) {
	var cs []running.Container
	for _, c := range ctrs {
		if c.GetState() != nri.ContainerState_CONTAINER_RUNNING || c.GetPid() == 0 {
			continue
		}
		cs = append(cs, running.Container{ID: c.GetId(), Runtime: p.runtime, Pid: int(c.GetPid()),
			Annotations: c.GetAnnotations(), Info: describe.Info{Image: c.GetImage().GetName(), Name: c.GetName(), Source: "nri"}})
	}
	p.agent.AdoptContainers(cs)
	return nil, nil
}

// StartContainer registers the container; an error fails its start.
func (p *Plugin) StartContainer(_ context.Context, pod *nri.PodSandbox, c *nri.Container) error {
	r, err := p.registration(pod, c)
	if err != nil {
		return fmt.Errorf("ocigate: container %s refused (fail-closed): %w", c.GetId(), err)
	}
	if _, err := p.agent.Register(r); err != nil {
		return fmt.Errorf("ocigate: container %s refused (fail-closed): %w", c.GetId(), err)
	}
	return nil
}

// registration describes a container the way the hook would.
func (p *Plugin) registration(pod *nri.PodSandbox, c *nri.Container) (*api.Registration, error) {
	pid := int(c.GetPid())
	if pid <= 0 {
		return nil, fmt.Errorf("the runtime gave no pid for its init (NRI too old?)")
	}
	ident, err := p.resolver.Resolve(pid)
	if err != nil {
		return nil, fmt.Errorf("resolve cgroup and namespaces of pid %d: %w", pid, err)
	}
	ann := maps.Clone(c.GetAnnotations())
	if ann == nil {
		ann = map[string]string{}
	}
	// What CRI puts into the spec anyway; NRI hands it over separately.
	setIfEmpty(ann, "io.kubernetes.cri.image-name", c.GetImage().GetName())
	setIfEmpty(ann, "io.kubernetes.cri.container-name", c.GetName())
	setIfEmpty(ann, "io.kubernetes.cri.sandbox-name", pod.GetName())
	setIfEmpty(ann, "io.kubernetes.cri.sandbox-namespace", pod.GetNamespace())
	return &api.Registration{ContainerID: c.GetId(), Runtime: p.runtime, Pid: pid, Annotations: ann, Identity: api.IdentityOf(ident)}, nil
}

func setIfEmpty(m map[string]string, k, v string) {
	if v != "" && m[k] == "" {
		m[k] = v
	}
}

// StopContainer unregisters the container.
func (p *Plugin) StopContainer(_ context.Context, _ *nri.PodSandbox, c *nri.Container) ([]*nri.ContainerUpdate, error) {
	p.unregister(c.GetId(), "stop")
	return nil, nil
}

// RemoveContainer unregisters the container (if stop did not).
func (p *Plugin) RemoveContainer(_ context.Context, _ *nri.PodSandbox, c *nri.Container) error {
	p.unregister(c.GetId(), "remove")
	return nil
}

func (p *Plugin) unregister(id, why string) {
	if err := p.agent.Unregister(id); err != nil {
		p.log.Error("NRI: container not unregistered", zap.String("container", id), zap.String("event", why), zap.Error(err))
	}
}

// Run connects to the runtime's NRI socket as plugin NAME (index idx)
// and serves it until ctx ends or the runtime closes the connection.
func Run(ctx context.Context, p *Plugin, socket, name, idx string) error {
	opts := []stub.Option{stub.WithPluginName(name), stub.WithPluginIdx(idx)}
	if socket != "" {
		opts = append(opts, stub.WithSocketPath(socket))
	}
	s, err := stub.New(p, opts...)
	if err != nil {
		return fmt.Errorf("NRI plugin: %w", err)
	}
	if err := s.Run(ctx); err != nil {
		return fmt.Errorf("NRI plugin on %s: %w", socket, err)
	}
	return nil
}
