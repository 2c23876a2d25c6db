package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Hook is one OCI hook entry of a bundle.
type Hook struct {
	// Path is the absolute path of the executable on the host.
	Path string
	// Args is the full argv, including argv[0].
	Args []string
	// Env is the hook's environment ("KEY=value").
	Env []string
	// Timeout, in seconds, is omitted from config.json when zero.
	Timeout int
}

// Bundle describes the config.json that WriteBundle writes. Zero values
// select working defaults for runc 1.1.
type Bundle struct {
	// Rootfs is the root filesystem directory; a relative path is relative
	// to the bundle directory. Default "rootfs".
	Rootfs string
	// ReadonlyRootfs mounts the rootfs read-only.
	ReadonlyRootfs bool
	// Args is the container's process argv (required).
	Args []string
	// Env defaults to a PATH covering /bin and /sbin.
	Env []string
	// Cwd defaults to "/".
	Cwd string
	// UID and GID of the container process (default 0).
	UID, GID uint32
	// Hostname defaults to "ocigate-e2e".
	Hostname string
	// HostNetwork keeps the container in the host's network namespace (so
	// it can reach listeners on the host's loopback). sysfs cannot be
	// mounted then; /sys is left empty unless Mounts adds something there.
	HostNetwork bool
	// HostPID keeps the container in the host's pid namespace: its
	// processes see the pids the agent reports.
	HostPID bool
	// CgroupNamespace gives the container its own cgroup namespace.
	CgroupNamespace bool
	// CgroupsPath is linux.cgroupsPath, e.g. "/ocigate-e2e/<id>".
	CgroupsPath string
	// Mounts are appended to the default mounts (proc, /dev tmpfs, devpts,
	// /dev/shm, /dev/mqueue).
	Mounts []specs.Mount
	// Annotations are copied to config.json.
	Annotations map[string]string
	// CreateRuntime and Poststop are the bundle's hooks for those stages.
	CreateRuntime []Hook
	Poststop      []Hook
}

// DefaultCapabilities are Docker's default capability set, a superset of
// runc's default spec that includes CAP_NET_RAW, so that without ocigate a
// container may open raw sockets.
var DefaultCapabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE",
	"CAP_NET_RAW", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETUID", "CAP_SYS_CHROOT",
}

// DefaultEnv is the container environment when Bundle.Env is empty.
var DefaultEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}

// Spec returns the runtime spec described by b.
func (b Bundle) Spec() (*specs.Spec, error) {
	b, err := b.withDefaults()
	if err != nil {
		return nil, err
	}
	spec := &specs.Spec{
		Version:     "1.0.2",
		Process:     b.process(),
		Root:        &specs.Root{Path: b.Rootfs, Readonly: b.ReadonlyRootfs},
		Hostname:    b.Hostname,
		Mounts:      b.mounts(),
		Annotations: b.Annotations,
		Linux:       b.linux(),
	}
	if len(b.CreateRuntime) > 0 || len(b.Poststop) > 0 {
		spec.Hooks = &specs.Hooks{
			CreateRuntime: specHooks(b.CreateRuntime),
			Poststop:      specHooks(b.Poststop),
		}
	}
	return spec, nil
}

// withDefaults returns b with its zero values replaced by the defaults,
// or why b cannot be a bundle.
func (b Bundle) withDefaults() (Bundle, error) {
	if len(b.Args) == 0 {
		return b, fmt.Errorf("bundle has no process args")
	}
	if b.Rootfs == "" {
		b.Rootfs = "rootfs"
	}
	if filepath.Clean(b.Rootfs) == "/" {
		return b, fmt.Errorf("bundle rootfs must not be /")
	}
	if len(b.Env) == 0 {
		b.Env = DefaultEnv
	}
	if b.Cwd == "" {
		b.Cwd = "/"
	}
	if b.Hostname == "" {
		b.Hostname = "ocigate-e2e"
	}
	return b, nil
}

// process is the container's process: b's, with DefaultCapabilities.
func (b Bundle) process() *specs.Process {
	caps := append([]string(nil), DefaultCapabilities...)
	return &specs.Process{
		Terminal: false,
		User:     specs.User{UID: b.UID, GID: b.GID},
		Args:     append([]string(nil), b.Args...),
		Env:      append([]string(nil), b.Env...),
		Cwd:      b.Cwd,
		Capabilities: &specs.LinuxCapabilities{
			Bounding:  caps,
			Effective: caps,
			Permitted: caps,
		},
		Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		NoNewPrivileges: true,
	}
}

// mounts are the default mounts, sysfs unless HostNetwork, then b.Mounts.
func (b Bundle) mounts() []specs.Mount {
	mounts := defaultMounts()
	if !b.HostNetwork {
		mounts = append(mounts, specs.Mount{
			Destination: "/sys", Type: "sysfs", Source: "sysfs",
			Options: []string{"nosuid", "noexec", "nodev", "ro"},
		})
	}
	return append(mounts, b.Mounts...)
}

// linux is the spec's linux section: b's namespaces and cgroup, and the
// paths masked or read-only as in runc's default spec.
func (b Bundle) linux() *specs.Linux {
	ns := []specs.LinuxNamespace{
		{Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace},
		{Type: specs.MountNamespace},
	}
	if !b.HostPID {
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	if !b.HostNetwork {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	if b.CgroupNamespace {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	return &specs.Linux{
		CgroupsPath: b.CgroupsPath,
		Namespaces:  ns,
		MaskedPaths: []string{
			"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
			"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
			"/proc/sched_debug", "/sys/firmware", "/proc/scsi",
		},
		ReadonlyPaths: []string{
			"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
		},
	}
}

// defaultMounts are proc, a /dev tmpfs, devpts, /dev/shm and /dev/mqueue.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{
			Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
		},
		{
			Destination: "/dev/pts", Type: "devpts", Source: "devpts",
			Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"},
		},
		{
			Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
			Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"},
		},
		{
			Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue",
			Options: []string{"nosuid", "noexec", "nodev"},
		},
	}
}

// specHooks converts hooks to the spec's form.
func specHooks(hooks []Hook) []specs.Hook {
	if len(hooks) == 0 {
		return nil
	}
	out := make([]specs.Hook, 0, len(hooks))
	for _, h := range hooks {
		sh := specs.Hook{Path: h.Path, Args: append([]string(nil), h.Args...), Env: append([]string(nil), h.Env...)}
		if h.Timeout > 0 {
			t := h.Timeout
			sh.Timeout = &t
		}
		out = append(out, sh)
	}
	return out
}

// WriteBundle writes dir/config.json for b. dir must exist; the rootfs is
// not created (see BuildRootfs).
func WriteBundle(dir string, b Bundle) error {
	spec, err := b.Spec()
	if err != nil {
		return fmt.Errorf("writing bundle %s: %w", dir, err)
	}
	data, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		return fmt.Errorf("writing bundle %s: encoding config.json: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing bundle %s: %w", dir, err)
	}
	return nil
}
