// Package containerd asks a containerd daemon, over its gRPC API, what
// ocigate needs to know of its containers: their image, the running
// tasks of every namespace, and the events that say a task exited or a
// container was deleted. It speaks the few calls it needs through
// runtime/grpcunix instead of containerd's client library.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ocigate/ocigate/runtime/grpcunix"
)

// DefaultSocket is containerd's default API socket.
const DefaultSocket = "/run/containerd/containerd.sock"

// namespaceHeader carries the namespace of a call.
const namespaceHeader = "containerd-namespace"

// Event topics handled here.
const (
	TopicTaskExit        = "/tasks/exit"
	TopicTaskDelete      = "/tasks/delete"
	TopicContainerDelete = "/containers/delete"
)

// Client talks to one containerd.
type Client struct {
	g      *grpcunix.Client
	socket string
}

// New returns a client of the containerd listening on socket. Nothing is
// dialled until the first call.
func New(socket string) *Client {
	return &Client{g: grpcunix.New(socket), socket: socket}
}

// Socket is the address the client calls.
func (c *Client) Socket() string { return c.socket }

// Close drops the connection.
func (c *Client) Close() { c.g.Close() }

func ns(namespace string) map[string]string { return map[string]string{namespaceHeader: namespace} }

// Namespaces lists containerd's namespaces.
func (c *Client) Namespaces(ctx context.Context) ([]string, error) {
	b, err := c.g.Call(ctx, "/containerd.services.namespaces.v1.Namespaces/List", nil, nil)
	if err != nil {
		return nil, fmt.Errorf("containerd %s: list namespaces: %w", c.socket, err)
	}
	names, err := decodeNamespaces(b)
	if err != nil {
		return nil, fmt.Errorf("containerd %s: list namespaces: %w", c.socket, err)
	}
	return names, nil
}

// Task is a container's running init process.
type Task struct {
	Namespace   string
	ContainerID string
	Pid         int
}

// RunningTasks lists the running tasks of a namespace.
func (c *Client) RunningTasks(ctx context.Context, namespace string) ([]Task, error) {
	b, err := c.g.Call(ctx, "/containerd.services.tasks.v1.Tasks/List", ns(namespace), nil)
	if err != nil {
		return nil, fmt.Errorf("containerd %s: list tasks of namespace %q: %w", c.socket, namespace, err)
	}
	ts, err := decodeTasks(b)
	if err != nil {
		return nil, fmt.Errorf("containerd %s: list tasks of namespace %q: %w", c.socket, namespace, err)
	}
	var out []Task
	for _, t := range ts {
		id := t.ContainerID
		if id == "" {
			id = t.ID
		}
		if t.Status == taskRunning && t.Pid > 0 && id != "" {
			out = append(out, Task{Namespace: namespace, ContainerID: id, Pid: int(t.Pid)})
		}
	}
	return out, nil
}

// AllRunningTasks lists the running tasks of every namespace.
func (c *Client) AllRunningTasks(ctx context.Context) ([]Task, error) {
	names, err := c.Namespaces(ctx)
	if err != nil {
		return nil, err
	}
	var out []Task
	for _, n := range names {
		ts, err := c.RunningTasks(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

// ErrNotFound is the error when containerd has no such container.
var ErrNotFound = errors.New("no such container")

// Container returns a container's metadata.
func (c *Client) Container(ctx context.Context, namespace, id string) (Container, error) {
	b, err := c.g.Call(ctx, "/containerd.services.containers.v1.Containers/Get", ns(namespace), appendString(nil, 1, id))
	if grpcunix.IsNotFound(err) {
		return Container{}, fmt.Errorf("containerd %s: container %q in namespace %q: %w", c.socket, id, namespace, ErrNotFound)
	}
	if err != nil {
		return Container{}, fmt.Errorf("containerd %s: container %q in namespace %q: %w", c.socket, id, namespace, err)
	}
	ctr, err := decodeGetContainer(b)
	if err != nil {
		return Container{}, fmt.Errorf("containerd %s: container %q in namespace %q: %w", c.socket, id, namespace, err)
	}
	return ctr, nil
}

// ImageDigest returns the digest of the manifest (or index) that an
// image name of a namespace points at now: the content a container made
// from that name was unpacked from.
func (c *Client) ImageDigest(ctx context.Context, namespace, name string) (string, error) {
	b, err := c.g.Call(ctx, "/containerd.services.images.v1.Images/Get", ns(namespace), appendString(nil, 1, name))
	if err != nil {
		return "", fmt.Errorf("containerd %s: image %q in namespace %q: %w", c.socket, name, namespace, err)
	}
	d, err := decodeGetImage(b)
	if err != nil {
		return "", fmt.Errorf("containerd %s: image %q in namespace %q: %w", c.socket, name, namespace, err)
	}
	return d, nil
}

// Events is a subscription to containerd's events.
type Events struct {
	s *grpcunix.Stream
}

// Subscribe follows the events of the given topics in every namespace
// until ctx ends or Close.
func (c *Client) Subscribe(ctx context.Context, topics ...string) (*Events, error) {
	var req []byte
	for _, t := range topics {
		req = appendString(req, 1, fmt.Sprintf("topic==%q", t))
	}
	s, err := c.g.Stream(ctx, "/containerd.services.events.v1.Events/Subscribe", nil, req)
	if err != nil {
		return nil, fmt.Errorf("containerd %s: subscribe to events: %w", c.socket, err)
	}
	return &Events{s: s}, nil
}

// Recv returns the next event.
func (e *Events) Recv() (Event, error) {
	b, err := e.s.Recv()
	if err != nil {
		return Event{}, err
	}
	return decodeEnvelope(b)
}

// Close ends the subscription.
func (e *Events) Close() error { return e.s.Close() }

// taskDirs are the state directories of containerd's runtimes that hold
// bundles as DIR/NAMESPACE/ID.
var taskDirs = []string{"io.containerd.runtime.v2.task", "io.containerd.runtime.v1.linux"}

// BundleRef returns the namespace and container ID of a bundle that
// containerd made (STATE/io.containerd.runtime.v2.task/NAMESPACE/ID).
func BundleRef(bundle string) (namespace, id string, ok bool) {
	bundle = filepath.Clean(bundle)
	id = filepath.Base(bundle)
	nsDir := filepath.Dir(bundle)
	namespace = filepath.Base(nsDir)
	top := filepath.Base(filepath.Dir(nsDir))
	for _, d := range taskDirs {
		if top == d && namespace != "" && id != "" && !strings.HasPrefix(namespace, ".") && namespace != "/" {
			return namespace, id, true
		}
	}
	return "", "", false
}
