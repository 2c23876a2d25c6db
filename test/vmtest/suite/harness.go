package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/internal/testenv/agentlog"
)

// cgroupParentName is the directory under the cgroup v2 root that holds
// every workload cgroup of a run.
const cgroupParentName = "ocigate-vm"

// vmtestProfile is the profile every workload gets: the reverse-shell
// protections plus the stand-in attacker 127.0.0.2.
//
//go:embed profiles/vmtest.yaml
var vmtestProfile []byte

// probeTimeout bounds every scenario process.
const probeTimeout = 60 * time.Second

type suite struct {
	cfg     config
	expect  expectation
	out     io.Writer
	markers io.Writer

	self      string // this binary, re-exec'd as the probe
	root      string // cgroup v2 mount
	parent    string // root/ocigate-vm
	agentLog  string
	agentCmd  *exec.Cmd
	agentDone chan error
	events    *agentlog.EventLog
	backends  []backendEntry
	seq       int
	failed    bool
	// ownProfile: the agent runs on the embedded vmtest profile, so every
	// event must name it.
	ownProfile bool
}

type scenario struct {
	name string
	fn   func(s *suite, r *result)
}

func (s *suite) runAll(filter *regexp.Regexp) int {
	if err := s.setup(); err != nil {
		s.emit("VMTEST-SCENARIO setup FAIL %v", err)
		s.emit("VMTEST-RESULT FAIL")
		return 1
	}
	defer s.teardownFS()
	s.info()
	// Before the agent: the measurement loads every program once more and
	// attaches none, so the scenarios see only the agent's.
	if s.cfg.verifier && (filter == nil || filter.MatchString("verifier-budget")) {
		s.runScenario(scenario{"verifier-budget", scenarioVerifierBudget})
	}
	agent := &result{name: "agent-start"}
	if err := s.startAgent(); err != nil {
		agent.failf("%v", err)
		agent.diagf("agent log:\n%s", agentlog.Tail(s.agentLog, 80))
		s.report(agent)
		s.stopAgent()
		s.emit("VMTEST-RESULT FAIL")
		return 1
	}
	s.report(agent)
	defer s.stopAgent()
	s.runScenario(scenario{"backends", scenarioBackends})
	for _, sc := range scenarios {
		if filter != nil && !filter.MatchString(sc.name) {
			continue
		}
		s.runScenario(sc)
	}
	s.runScenario(scenario{"teardown", scenarioTeardown})
	if s.failed {
		s.logf("agent log (without workload (un)registrations):\n%s", agentLogSummary(s.agentLog, 60))
		s.emit("VMTEST-RESULT FAIL")
		return 1
	}
	s.emit("VMTEST-RESULT PASS")
	return 0
}

func (s *suite) runScenario(sc scenario) {
	r := &result{name: sc.name}
	start := time.Now()
	func() {
		defer func() {
			if p := recover(); p != nil {
				if _, ok := p.(abort); !ok {
					r.failf("panic: %v", p)
				}
				r.killed = true
			}
		}()
		sc.fn(s, r)
	}()
	s.logf("scenario %s took %s", sc.name, time.Since(start).Round(time.Millisecond))
	s.report(r)
}

func (s *suite) setup() error {
	if os.Geteuid() != 0 {
		return errors.New("the suite needs root")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locating this binary: %w", err)
	}
	s.self = self
	for _, p := range []*string{&s.cfg.agent, &s.cfg.hook} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("binary missing: %w", err)
		}
		*p = abs
	}
	if s.cfg.workdir == "" {
		if s.cfg.workdir, err = os.MkdirTemp("", "ocigate-vmtest-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(s.cfg.workdir, 0o755); err != nil {
		return err
	}
	if s.cfg.socket == "" {
		s.cfg.socket = filepath.Join(s.cfg.workdir, "agentd.sock")
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.socket), 0o755); err != nil {
		return err
	}
	if s.cfg.events == "" {
		s.cfg.events = filepath.Join(s.cfg.workdir, "events.jsonl")
	}
	_ = os.Remove(s.cfg.events)
	s.events = agentlog.NewEventLog(s.cfg.events)
	s.agentLog = filepath.Join(s.cfg.workdir, "agentd.log")
	if s.cfg.profiles == "" {
		s.ownProfile = true
		s.cfg.profiles = filepath.Join(s.cfg.workdir, "profiles")
		if err := os.MkdirAll(s.cfg.profiles, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s.cfg.profiles, "vmtest.yaml"), vmtestProfile, 0o644); err != nil {
			return err
		}
	}
	if s.root, err = cgroupV2Root(s.cfg.cgroupRoot); err != nil {
		return err
	}
	s.parent = filepath.Join(s.root, cgroupParentName)
	if err := removeCgroupTree(s.parent); err != nil {
		return fmt.Errorf("removing a previous run's cgroups: %w", err)
	}
	if err := os.Mkdir(s.parent, 0o755); err != nil {
		return fmt.Errorf("creating the workload cgroup parent: %w", err)
	}
	return nil
}

func (s *suite) teardownFS() {
	if err := removeCgroupTree(s.parent); err != nil {
		s.logf("cleanup: %v", err)
	}
	if !s.cfg.keep && strings.Contains(s.cfg.workdir, "ocigate-vmtest-") {
		os.RemoveAll(s.cfg.workdir)
	}
}

func kernelRelease() string {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(uts.Release[:])
}

// info prints what the guest kernel offers.
func (s *suite) info() {
	s.emit("VMTEST-INFO kernel %s", kernelRelease())
	lsm, err := os.ReadFile("/sys/kernel/security/lsm")
	if err != nil {
		s.emit("VMTEST-INFO lsm unavailable(%v)", err)
	} else {
		s.emit("VMTEST-INFO lsm %s", strings.TrimSpace(string(lsm)))
	}
	if fi, err := os.Stat("/sys/kernel/btf/vmlinux"); err == nil {
		s.emit("VMTEST-INFO btf yes(%d bytes)", fi.Size())
	} else {
		s.emit("VMTEST-INFO btf no")
	}
	s.emit("VMTEST-INFO cgroup-root %s", s.root)
	s.emit("VMTEST-INFO expect %s", s.expect)
	enf := s.cfg.enforcer
	if enf == "" {
		enf = "(agent default)"
	}
	s.emit("VMTEST-INFO enforcer %s", enf)
}
