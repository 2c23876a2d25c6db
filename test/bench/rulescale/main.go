// Command rulescale measures what one connect costs in the kernel as rule
// sets and registrations grow: the connect program's run time per call
// (bpf_stats) with 10 and 100 000 CIDRs in a profile, and with 10 and
// 5 000 registered workloads, side by side in one run. Needs root.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/hostfs"
	"github.com/ocigate/ocigate/profiles"
)

func main() {
	loop := flag.String("connectloop", "", "connectloop binary (test/bench/connectloop)")
	connects := flag.Int("n", 20000, "connects per case")
	rounds := flag.Int("rounds", 3, "alternating rounds per case")
	flag.Parse()
	if err := run(*loop, *connects, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "rulescale:", err)
		os.Exit(1)
	}
}

// profileWith denies connects to n /32s in 10.0.0.0/8 (never matched by
// the loopback connects measured) and to 127.0.0.2.
func profileWith(n int) *profiles.Profile {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	prefixes := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	for len(prefixes) < n {
		a := [4]byte{10, byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}
		prefixes = append(prefixes, netip.PrefixFrom(netip.AddrFrom4(a), 32))
	}
	p := &profiles.Profile{Name: fmt.Sprintf("cidrs-%d", n), Mode: profiles.ModeEnforce}
	p.Points[profiles.PointConnect] = []profiles.Selector{{
		Policy: "rulescale", Call: "security_socket_connect",
		Daddr: profiles.AddrMatch{Prefixes: prefixes}, Action: profiles.ActionOverride,
	}}
	return p
}

type benchCase struct {
	cidrs, workloads int
}

func run(loop string, connects, rounds int) error {
	if loop == "" {
		return fmt.Errorf("--connectloop is required")
	}
	if _, err := hostfs.EnsureAll(); err != nil {
		return err
	}
	root, err := cgroupfilter.V2Mount()
	if err != nil {
		return err
	}
	enf, err := enforcer.Load(enforcer.Options{CgroupRoot: root})
	if err != nil {
		return err
	}
	defer enf.Close()
	stats, err := enforcer.EnableStats()
	if err != nil {
		return err
	}
	defer stats.Close()
	cg := filepath.Join(root, fmt.Sprintf("ocigate-rulescale-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		return err
	}
	defer os.Remove(cg)
	cgID, err := cgroupfilter.Resolver{CgroupRoot: root}.CgroupID("/" + filepath.Base(cg))
	if err != nil {
		return err
	}
	cases := []benchCase{{10, 10}, {100000, 10}, {10, 5000}}
	for i, c := range cases {
		if err := enf.LoadProfile(uint32(i+1), profileWith(c.cidrs)); err != nil {
			return err
		}
	}
	results := make([][]float64, len(cases))
	for r := 0; r < rounds; r++ {
		for i, c := range cases {
			ns, err := measure(enf, loop, cg, cgID, uint32(i+1), c.workloads, connects)
			if err != nil {
				return err
			}
			results[i] = append(results[i], ns)
		}
	}
	base := median(results[0])
	fmt.Println("| case | connect program ns/run (median) | ratio to 10 CIDRs, 10 workloads |")
	fmt.Println("|---|---|---|")
	for i, c := range cases {
		m := median(results[i])
		fmt.Printf("| %d CIDRs, %d workloads | %.0f | %.3f |\n", c.cidrs, c.workloads, m, m/base)
	}
	return nil
}

// measure registers the bench cgroup (plus fake workloads up to n), runs
// the connect loop inside it and returns the connect4 program's ns/run.
func measure(enf *enforcer.Enforcer, loop, cg string, cgID uint64, profile uint32, n, connects int) (float64, error) {
	var none [profiles.NumPoints]uint32
	if err := enf.SetWorkload(cgID, profile, profiles.ModeEnforce, none); err != nil {
		return 0, err
	}
	defer enf.RemoveWorkload(cgID)
	for i := 1; i < n; i++ {
		fake := uint64(1<<40) + uint64(i)
		if err := enf.SetWorkload(fake, profile, profiles.ModeEnforce, none); err != nil {
			return 0, err
		}
		defer enf.RemoveWorkload(fake)
	}
	before, err := connectStats(enf)
	if err != nil {
		return 0, err
	}
	fd, err := syscall.Open(cg, syscall.O_DIRECTORY|syscall.O_RDONLY, 0)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	cmd := exec.Command(loop, strconv.Itoa(connects))
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	cmd.Stderr = os.Stderr
	if _, err := cmd.Output(); err != nil {
		return 0, fmt.Errorf("connectloop: %w", err)
	}
	after, err := connectStats(enf)
	if err != nil {
		return 0, err
	}
	runs := after.RunCount - before.RunCount
	if runs == 0 {
		return 0, fmt.Errorf("the connect program did not run")
	}
	return float64(after.RunTime-before.RunTime) / float64(runs), nil
}

func connectStats(enf *enforcer.Enforcer) (enforcer.ProgramStat, error) {
	all, err := enf.ProgramStats()
	if err != nil {
		return enforcer.ProgramStat{}, err
	}
	for _, s := range all {
		if s.Mechanism == "cgroup/connect4" {
			return s, nil
		}
	}
	return enforcer.ProgramStat{}, fmt.Errorf("cgroup/connect4 is not attached (backend %v)", enf.Backends())
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
