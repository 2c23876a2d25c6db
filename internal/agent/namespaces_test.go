package agent

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/profiles"
)

var (
	hostNS      = cgroupfilter.NamespaceIDs{Mnt: 1, Pid: 2, Net: 3, Uts: 4, Ipc: 5, Cgroup: 6, User: 7, Time: 8}
	containerNS = cgroupfilter.NamespaceIDs{Mnt: 11, Pid: 12, Net: 13, Uts: 14, Ipc: 15, Cgroup: 16, User: 17, Time: 18}
)

func TestNamespaceOf(t *testing.T) {
	for name, want := range map[string]uint64{
		"Mnt": 11, "Pid": 12, "PidForChildren": 12, "Net": 13, "Uts": 14, "Ipc": 15, "Cgroup": 16, "User": 17,
		"Time": 18, "TimeForChildren": 18,
	} {
		if got, ok := namespaceOf(containerNS, name); !ok || got != want {
			t.Errorf("namespaceOf(%s) = %d, %v; want %d", name, got, ok, want)
		}
	}
	for _, name := range []string{"", "pid", "Network", "Mount"} {
		if _, ok := namespaceOf(containerNS, name); ok {
			t.Errorf("namespaceOf(%q) known", name)
		}
	}
}

func nsIn(name string, inodes ...uint64) profiles.NamespaceMatch {
	return profiles.NamespaceMatch{Namespace: name, Inodes: inodes}
}

func nsNotIn(name string, inodes ...uint64) profiles.NamespaceMatch {
	return profiles.NamespaceMatch{Namespace: name, Not: true, Inodes: inodes}
}

func withHost(m profiles.NamespaceMatch) profiles.NamespaceMatch {
	m.HostNS = true
	return m
}

func TestSelectorApplies(t *testing.T) {
	inHost := hostNS
	tests := []struct {
		name  string
		ns    cgroupfilter.NamespaceIDs
		match []profiles.NamespaceMatch
		want  bool
	}{
		{"no matchNamespaces", containerNS, nil, true},
		{"In, listed", containerNS, []profiles.NamespaceMatch{nsIn("Pid", 99, 12)}, true},
		{"In, not listed", containerNS, []profiles.NamespaceMatch{nsIn("Pid", 99)}, false},
		{"NotIn, listed", containerNS, []profiles.NamespaceMatch{nsNotIn("Pid", 12)}, false},
		{"NotIn, not listed", containerNS, []profiles.NamespaceMatch{nsNotIn("Pid", 99)}, true},
		{"In host_ns, container", containerNS, []profiles.NamespaceMatch{withHost(nsIn("Pid"))}, false},
		{"In host_ns, host", inHost, []profiles.NamespaceMatch{withHost(nsIn("Pid"))}, true},
		{"NotIn host_ns, container", containerNS, []profiles.NamespaceMatch{withHost(nsNotIn("Pid"))}, true},
		{"NotIn host_ns, host", inHost, []profiles.NamespaceMatch{withHost(nsNotIn("Pid"))}, false},
		{"In inode or host_ns, host", inHost, []profiles.NamespaceMatch{withHost(nsIn("Net", 99))}, true},
		{"In inode or host_ns, inode", containerNS, []profiles.NamespaceMatch{withHost(nsIn("Net", 13))}, true},
		{"NotIn inode or host_ns, inode", containerNS, []profiles.NamespaceMatch{withHost(nsNotIn("Mnt", 11))}, false},
		{"NotIn inode or host_ns, neither", containerNS, []profiles.NamespaceMatch{withHost(nsNotIn("Mnt", 99))}, true},
		{"host_ns compares the same type", cgroupfilter.NamespaceIDs{Pid: hostNS.Net}, []profiles.NamespaceMatch{withHost(nsIn("Pid"))}, false},
		{"PidForChildren is the pid namespace", containerNS, []profiles.NamespaceMatch{nsIn("PidForChildren", 12)}, true},
		{"TimeForChildren is the time namespace", containerNS, []profiles.NamespaceMatch{nsIn("TimeForChildren", 18)}, true},
		{"every entry must hold", containerNS, []profiles.NamespaceMatch{nsIn("Pid", 12), nsIn("Net", 99)}, false},
		{"every entry holds", containerNS, []profiles.NamespaceMatch{nsIn("Pid", 12), withHost(nsNotIn("Net")), nsNotIn("User", 7)}, true},
		{"unknown namespace type", containerNS, []profiles.NamespaceMatch{nsNotIn("Bogus", 1)}, false},
	}
	for _, tt := range tests {
		s := profiles.Selector{Action: profiles.ActionPost, Namespaces: tt.match}
		if got := selectorApplies(&s, tt.ns, hostNS); got != tt.want {
			t.Errorf("%s: selectorApplies = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// When the agent cannot read the host's namespaces, host_ns matches
// nothing (so says New's warning), not even a workload whose namespace
// is unknown as well.
func TestHostNSUnknownMatchesNothing(t *testing.T) {
	var unknown cgroupfilter.NamespaceIDs
	for _, ns := range []cgroupfilter.NamespaceIDs{containerNS, unknown} {
		in := profiles.Selector{Namespaces: []profiles.NamespaceMatch{withHost(nsIn("Pid"))}}
		notIn := profiles.Selector{Namespaces: []profiles.NamespaceMatch{withHost(nsNotIn("Pid"))}}
		if selectorApplies(&in, ns, unknown) {
			t.Errorf("workload namespaces %+v: Pid In host_ns holds with the host's namespaces unknown", ns)
		}
		if !selectorApplies(&notIn, ns, unknown) {
			t.Errorf("workload namespaces %+v: Pid NotIn host_ns fails with the host's namespaces unknown", ns)
		}
	}
}

func TestDisabledSelectors(t *testing.T) {
	p := &profiles.Profile{Name: "p", Mode: profiles.ModeEnforce}
	post := func(m ...profiles.NamespaceMatch) profiles.Selector {
		return profiles.Selector{Action: profiles.ActionPost, Namespaces: m}
	}
	p.Points[profiles.PointConnect] = []profiles.Selector{
		post(), post(withHost(nsIn("Pid"))), post(withHost(nsNotIn("Pid"))), post(nsIn("Net", 13)),
	}
	p.Points[profiles.PointExec] = []profiles.Selector{post(nsNotIn("Mnt", 11))}
	for i := 0; i < profiles.MaxSelectors; i++ {
		sel := post()
		if i%5 == 0 {
			sel = post(nsIn("Uts", 4))
		}
		p.Points[profiles.PointClose] = append(p.Points[profiles.PointClose], sel)
	}
	var want [profiles.NumPoints]uint32
	want[profiles.PointConnect] = 1 << 1
	want[profiles.PointExec] = 1 << 0
	want[profiles.PointClose] = 1<<0 | 1<<5 | 1<<10 | 1<<15
	if got := disabledSelectors(p, containerNS, hostNS); got != want {
		t.Errorf("container: %#x, want %#x", got, want)
	}
	want = [profiles.NumPoints]uint32{}
	want[profiles.PointConnect] = 1<<2 | 1<<3
	if got := disabledSelectors(p, hostNS, hostNS); got != want {
		t.Errorf("host: %#x, want %#x", got, want)
	}
	if got := disabledSelectors(&profiles.Profile{Name: "empty"}, containerNS, hostNS); got != ([profiles.NumPoints]uint32{}) {
		t.Errorf("empty profile: %#x", got)
	}
}

// Namespace IDs of the ns profile's tests (testdata/profiles/agent.yaml).
const (
	nsNet1, nsNet2, nsMnt, nsPidChildren = 4026530001, 4026530002, 4026530003, 4026530004
)

// Register writes the masks of the workload's namespaces; the profile of
// the registration decides which selectors there are.
func TestRegisterDisabledMasks(t *testing.T) {
	h := newFakeHost(t)
	host := h.hostNamespaces()
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	if a.hostNS != host {
		t.Fatalf("agent's host namespaces %+v, want %+v", a.hostNS, host)
	}
	// The ns profile's connect selectors: 0 Pid In host_ns, 1 Pid NotIn
	// host_ns, 2 none, 3 Net In (nsNet1, nsNet2), 4 Mnt NotIn (nsMnt,
	// host_ns), 5 PidForChildren In nsPidChildren and Uts In host_ns.
	tests := []struct {
		name    string
		profile string
		ns      api.NamespaceIDs
		connect uint32
	}{
		{"host namespaces", "ns", api.NamespaceIDs{Mnt: host.Mnt, Pid: host.Pid, Net: nsNet2, Uts: host.Uts}, 1<<1 | 1<<4 | 1<<5},
		{"container", "ns", api.NamespaceIDs{Mnt: nsMnt, Pid: nsPidChildren, Net: 4026530009, Uts: host.Uts}, 1<<0 | 1<<3 | 1<<4},
		{"other container", "ns", api.NamespaceIDs{Mnt: 4026530101, Pid: 4026530100, Net: nsNet1, Uts: 4026530102}, 1<<0 | 1<<5},
		{"profile without matchNamespaces", "default", api.NamespaceIDs{Mnt: host.Mnt, Pid: 4026530100}, 0},
	}
	for i, tt := range tests {
		r := h.registration(fmt.Sprintf("c%d", i), 100+i, fmt.Sprintf("/pods/c%d", i))
		r.Annotations = map[string]string{"ocigate.io/profile": tt.profile}
		r.Identity.Namespaces = tt.ns
		w, err := a.Register(r)
		if err != nil {
			t.Fatal(err)
		}
		if api.IdentityOf(w.Identity).Namespaces != tt.ns {
			t.Errorf("%s: workload namespaces %+v", tt.name, w.Namespaces)
		}
		got, ok := enf.disabledOf(r.Identity.CgroupID)
		var want [profiles.NumPoints]uint32
		want[profiles.PointConnect] = tt.connect
		if !ok || got != want {
			t.Errorf("%s: disabled %#x (written %v), want %#x", tt.name, got, ok, want)
		}
	}
}

// Reload writes each workload's masks for its new profile.
func TestReloadWritesDisabledMasks(t *testing.T) {
	h := newFakeHost(t)
	host := h.hostNamespaces()
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r := h.registration("c1", 100, "/pods/c1")
	r.Annotations = map[string]string{"team": "ns"}
	r.Identity.Namespaces = api.NamespaceIDs{Mnt: host.Mnt, Pid: host.Pid, Net: nsNet2, Uts: host.Uts}
	if _, err := a.Register(r); err != nil {
		t.Fatal(err)
	}
	before, _ := enf.disabledOf(r.Identity.CgroupID)
	if err := a.Reload(testCatalog(t)); err != nil {
		t.Fatal(err)
	}
	after, ok := enf.disabledOf(r.Identity.CgroupID)
	if !ok || after != before || after[profiles.PointConnect] != 1<<1|1<<4|1<<5 {
		t.Fatalf("masks after reload %#x, before %#x", after, before)
	}
	id := enf.mapEntries()[r.Identity.CgroupID]
	if id != 6 || !enf.isLoaded(id) {
		t.Fatalf("workload on profile id %d after reload (loaded %v), want 6", id, enf.isLoaded(id))
	}
	for old := uint32(1); old <= 3; old++ {
		if enf.isLoaded(old) {
			t.Errorf("profile id %d still loaded after reload", old)
		}
	}
}

// A workload whose map entry could not be moved during a reload keeps
// its old profile id: that profile's rules must stay loaded, or the
// workload silently loses all enforcement.
func TestReloadKeepsRulesOfWorkloadNotMoved(t *testing.T) {
	h := newFakeHost(t)
	enf := newFakeEnforcer()
	a := newTestAgent(t, h, enf)
	r1 := h.registration("c1", 100, "/pods/c1")
	r2 := h.registration("c2", 101, "/pods/c2")
	for _, r := range []*api.Registration{r1, r2} {
		if _, err := a.Register(r); err != nil {
			t.Fatal(err)
		}
	}
	enf.failSet, enf.failSetCg = errors.New("bpf: map update failed"), r1.Identity.CgroupID
	err := a.Reload(testCatalog(t))
	t.Logf("Reload: %v", err)
	for _, r := range []*api.Registration{r1, r2} {
		id := enf.mapEntries()[r.Identity.CgroupID]
		if !enf.isLoaded(id) {
			t.Errorf("workload %s is on profile id %d, which is no longer loaded: no rules apply to it", r.ContainerID, id)
		}
	}
}
