package bpf

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"go.uber.org/zap"
)

// Options configures Load.
type Options struct {
	// CgroupRoot is the cgroup v2 mount; the cgroup programs attach there
	// and scope themselves to registered workloads.
	CgroupRoot string
	Logger     *zap.Logger
}

// Enforcer owns the loaded programs, their links and the maps.
type Enforcer struct {
	objs     fallbackObjects
	links    []link.Link
	backends []PointBackend
	log      *zap.Logger

	mu      sync.Mutex // serialises profile writes
	nextSet uint32
}

// PointBackend says how an enforcement point is carried out.
type PointBackend struct {
	Point     string `json:"point"`
	Backend   string `json:"backend"`
	Mechanism string `json:"mechanism"`
}

type attachment struct {
	point, mechanism string
	attach           func(o *fallbackObjects, root string) (link.Link, error)
}

func cgroupAttach(prog func(*fallbackObjects) *ebpf.Program, typ ebpf.AttachType) func(*fallbackObjects, string) (link.Link, error) {
	return func(o *fallbackObjects, root string) (link.Link, error) {
		return link.AttachCgroup(link.CgroupOptions{Path: root, Attach: typ, Program: prog(o)})
	}
}

// The fallback backend's attachments, in the order they are made.
var fallbackAttachments = []attachment{
	{"connect", "cgroup/connect4", cgroupAttach(func(o *fallbackObjects) *ebpf.Program { return o.Connect4 }, ebpf.AttachCGroupInet4Connect)},
	{"connect", "cgroup/connect6", cgroupAttach(func(o *fallbackObjects) *ebpf.Program { return o.Connect6 }, ebpf.AttachCGroupInet6Connect)},
	{"sendmsg", "cgroup/sendmsg4", cgroupAttach(func(o *fallbackObjects) *ebpf.Program { return o.Sendmsg4 }, ebpf.AttachCGroupUDP4Sendmsg)},
	{"sendmsg", "cgroup/sendmsg6", cgroupAttach(func(o *fallbackObjects) *ebpf.Program { return o.Sendmsg6 }, ebpf.AttachCGroupUDP6Sendmsg)},
	{"bind", "cgroup/bind4", cgroupAttach(func(o *fallbackObjects) *ebpf.Program { return o.Bind4 }, ebpf.AttachCGroupInet4Bind)},
	{"bind", "cgroup/bind6", cgroupAttach(func(o *fallbackObjects) *ebpf.Program { return o.Bind6 }, ebpf.AttachCGroupInet6Bind)},
	{"sock_create", "cgroup/sock_create", cgroupAttach(func(o *fallbackObjects) *ebpf.Program { return o.SockCreate }, ebpf.AttachCGroupInetSockCreate)},
	{"sock_create", "tracepoint/syscalls/sys_enter_socket+SIGKILL", func(o *fallbackObjects, _ string) (link.Link, error) {
		return link.Tracepoint("syscalls", "sys_enter_socket", o.SocketEnter, nil)
	}},
	{"exec", "raw_tracepoint/sched_process_exec+SIGKILL", func(o *fallbackObjects, _ string) (link.Link, error) {
		return link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sched_process_exec", Program: o.ProcessExec})
	}},
}

// BackendFallback names the backend of kernels without BPF LSM or fmod_ret.
const BackendFallback = "fallback"

// Load raises the memlock limit, loads the programs and attaches them.
// Everything is undone when any step fails.
func Load(opts Options) (_ *Enforcer, err error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.CgroupRoot == "" {
		return nil, errors.New("load BPF: no cgroup v2 root given")
	}
	if _, err := os.Stat(opts.CgroupRoot); err != nil {
		return nil, fmt.Errorf("load BPF: cgroup v2 root: %w", err)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("load BPF: raise memlock limit: %w", err)
	}
	e := &Enforcer{log: opts.Logger}
	if err := loadFallbackObjects(&e.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load BPF programs: %+v", ve)
		}
		return nil, fmt.Errorf("load BPF programs: %w", err)
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	for _, a := range fallbackAttachments {
		l, err := a.attach(&e.objs, opts.CgroupRoot)
		if err != nil {
			return nil, fmt.Errorf("attach %s for %s: %w", a.mechanism, a.point, err)
		}
		e.links = append(e.links, l)
		e.backends = append(e.backends, PointBackend{Point: a.point, Backend: BackendFallback, Mechanism: a.mechanism})
		opts.Logger.Info("enforcement point attached", zap.String("point", a.point),
			zap.String("backend", BackendFallback), zap.String("mechanism", a.mechanism))
	}
	return e, nil
}

// Backends says how each enforcement point is carried out.
func (e *Enforcer) Backends() []PointBackend {
	return append([]PointBackend(nil), e.backends...)
}

// EventsMap is the ring buffer the programs report into.
func (e *Enforcer) EventsMap() *ebpf.Map { return e.objs.Events }

// Close detaches every program and frees the maps.
func (e *Enforcer) Close() error {
	var errs []error
	for i := len(e.links) - 1; i >= 0; i-- {
		errs = append(errs, e.links[i].Close())
	}
	e.links = nil
	errs = append(errs, e.objs.Close())
	return errors.Join(errs...)
}
