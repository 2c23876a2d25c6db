package nriplugin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/adaptation"
	nri "github.com/containerd/nri/pkg/api"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/runtime/running"
)

// fakeAgent records what the plugin asks of the agent.
type fakeAgent struct {
	mu         sync.Mutex
	registered []*api.Registration
	removed    []string
	adopted    []running.Container
	refuse     error
}

func (f *fakeAgent) Register(r *api.Registration) (*workload.Workload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return nil, f.refuse
	}
	f.registered = append(f.registered, r)
	return &workload.Workload{ContainerID: r.ContainerID}, nil
}

func (f *fakeAgent) Unregister(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeAgent) AdoptContainers(cs []running.Container) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adopted = append(f.adopted, cs...)
}

// fakeProc is a /proc and cgroup tree where pid lives in cgroup path.
func fakeProc(t *testing.T, pid, path string) cgroupfilter.Resolver {
	t.Helper()
	dir := t.TempDir()
	r := cgroupfilter.Resolver{ProcRoot: filepath.Join(dir, "proc"), CgroupRoot: filepath.Join(dir, "cg")}
	if err := os.MkdirAll(filepath.Join(r.CgroupRoot, path), 0o755); err != nil {
		t.Fatal(err)
	}
	ns := filepath.Join(r.ProcRoot, pid, "ns")
	if err := os.MkdirAll(ns, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"mnt", "pid", "net", "uts", "ipc", "cgroup", "user", "time"} {
		if err := os.WriteFile(filepath.Join(ns, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(r.ProcRoot, pid, "cgroup"), []byte("0::"+path+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	pod      = &nri.PodSandbox{Id: "pod-1", Name: "web", Namespace: "shop"}
	running1 = &nri.Container{Id: "old", PodSandboxId: "pod-1", Name: "sidecar", State: nri.ContainerState_CONTAINER_RUNNING, Pid: 4242,
		Image: &nri.Image{Name: "docker.io/library/busybox:1"}}
	stopped = &nri.Container{Id: "gone", State: nri.ContainerState_CONTAINER_STOPPED}
)

// runtimeSide is NRI's own runtime half (what containerd and CRI-O embed)
// on a socket in a temp dir, with one pod and two containers to
// synchronize.
func runtimeSide(t *testing.T) (*adaptation.Adaptation, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "nri.sock")
	syncFn := func(ctx context.Context, cb adaptation.SyncCB) error {
		_, err := cb(ctx, []*nri.PodSandbox{pod}, []*nri.Container{running1, stopped})
		return err
	}
	updateFn := func(context.Context, []*nri.ContainerUpdate) ([]*nri.ContainerUpdate, error) { return nil, nil }
	r, err := adaptation.New("fake-runtime", "v0.1", syncFn, updateFn, adaptation.WithSocketPath(sock),
		adaptation.WithPluginPath(t.TempDir()), adaptation.WithPluginConfigPath(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r, sock
}

func TestPluginAgainstRuntime(t *testing.T) {
	r, ag := startPlugin(t)
	waitAdopted(t, ag)
	ctr := &nri.Container{Id: "web-1", PodSandboxId: "pod-1", Name: "web", State: nri.ContainerState_CONTAINER_CREATED, Pid: 777,
		Annotations: map[string]string{"ocigate.io/profile": "web"}, Image: &nri.Image{Name: "registry.local/web:2"}}
	checkStart(t, r, ag, ctr)
	checkRefusals(t, r, ag, ctr)
	if _, err := r.StopContainer(context.Background(), &nri.StopContainerRequest{Pod: pod, Container: ctr}); err != nil {
		t.Fatal(err)
	}
	if err := r.RemoveContainer(context.Background(), &nri.RemoveContainerRequest{Pod: pod, Container: ctr}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ag.removed, ",") != "web-1,web-1" {
		t.Fatalf("unregistered %q", ag.removed)
	}
}

// startPlugin runs the plugin, with a fake agent, against the runtime
// side until the test ends.
func startPlugin(t *testing.T) (*adaptation.Adaptation, *fakeAgent) {
	t.Helper()
	r, sock := runtimeSide(t)
	ag := &fakeAgent{}
	p := New(ag, fakeProc(t, "777", "/kubepods/pod-1/web"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, p, sock, "ocigate", "10") }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the plugin did not stop")
		}
	})
	return r, ag
}

// waitAdopted waits until the plugin synchronized: the running container
// is adopted, the stopped one not.
func waitAdopted(t *testing.T, ag *fakeAgent) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ag.mu.Lock()
		n := len(ag.adopted)
		ag.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the plugin never synchronized")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(ag.adopted) != 1 || ag.adopted[0].ID != "old" || ag.adopted[0].Pid != 4242 || ag.adopted[0].Runtime != "fake-runtime" ||
		ag.adopted[0].Info.Image != "docker.io/library/busybox:1" {
		t.Fatalf("adopted %+v", ag.adopted)
	}
}

// checkStart checks that StartContainer registers ctr with the agent,
// annotated.
func checkStart(t *testing.T, r *adaptation.Adaptation, ag *fakeAgent, ctr *nri.Container) {
	t.Helper()
	if err := r.StartContainer(context.Background(), &nri.StartContainerRequest{Pod: pod, Container: ctr}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	if len(ag.registered) != 1 {
		t.Fatalf("registered %+v", ag.registered)
	}
	reg := ag.registered[0]
	if reg.ContainerID != "web-1" || reg.Runtime != "fake-runtime" || reg.Pid != 777 || reg.Identity.CgroupPath != "/kubepods/pod-1/web" ||
		reg.Identity.CgroupID == 0 {
		t.Fatalf("registration %+v", reg)
	}
	for k, v := range map[string]string{"ocigate.io/profile": "web", "io.kubernetes.cri.image-name": "registry.local/web:2",
		"io.kubernetes.cri.container-name": "web", "io.kubernetes.cri.sandbox-name": "web", "io.kubernetes.cri.sandbox-namespace": "shop"} {
		if reg.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, reg.Annotations[k], v)
		}
	}
	if ctr.Annotations["io.kubernetes.cri.image-name"] != "" {
		t.Error("the runtime's container annotations were changed")
	}
}

// checkRefusals checks that what the plugin refuses, the runtime gets as
// an error.
func checkRefusals(t *testing.T, r *adaptation.Adaptation, ag *fakeAgent, ctr *nri.Container) {
	t.Helper()
	// Refused by the agent: the runtime gets the error (fail-closed).
	ag.mu.Lock()
	ag.refuse = errors.New(`annotation ocigate.io/profile="nope": no such profile`)
	ag.mu.Unlock()
	err := r.StartContainer(context.Background(), &nri.StartContainerRequest{Pod: pod, Container: ctr})
	if err == nil || !strings.Contains(err.Error(), "fail-closed") || !strings.Contains(err.Error(), "no such profile") {
		t.Fatalf("refused StartContainer: %v", err)
	}
	// No pid (an old runtime): refused too.
	ag.mu.Lock()
	ag.refuse = nil
	ag.mu.Unlock()
	if err := r.StartContainer(context.Background(), &nri.StartContainerRequest{Pod: pod, Container: &nri.Container{Id: "nopid"}}); err == nil ||
		!strings.Contains(err.Error(), "no pid") {
		t.Fatalf("StartContainer without a pid: %v", err)
	}

}
