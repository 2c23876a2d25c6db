package agent

import (
	"slices"

	"github.com/ocigate/ocigate/cgroupfilter"
	"github.com/ocigate/ocigate/profiles"
)

// namespaceOf returns a workload's inode of a matchNamespaces namespace.
// The *ForChildren namespaces of a container's processes are the ones
// they run in: nothing inside the container has unshared yet.
func namespaceOf(ns cgroupfilter.NamespaceIDs, name string) (uint64, bool) {
	switch name {
	case "Uts":
		return ns.Uts, true
	case "Ipc":
		return ns.Ipc, true
	case "Mnt":
		return ns.Mnt, true
	case "Pid", "PidForChildren":
		return ns.Pid, true
	case "Net":
		return ns.Net, true
	case "Time", "TimeForChildren":
		return ns.Time, true
	case "Cgroup":
		return ns.Cgroup, true
	case "User":
		return ns.User, true
	}
	return 0, false
}

// selectorApplies evaluates a selector's matchNamespaces against the
// workload's namespaces; host holds the host's, for host_ns.
func selectorApplies(s *profiles.Selector, ns, host cgroupfilter.NamespaceIDs) bool {
	for _, m := range s.Namespaces {
		have, ok := namespaceOf(ns, m.Namespace)
		if !ok {
			return false
		}
		in := slices.Contains(m.Inodes, have)
		if m.HostNS {
			if h, _ := namespaceOf(host, m.Namespace); h != 0 && h == have {
				in = true
			}
		}
		if in == m.Not {
			return false
		}
	}
	return true
}

// disabledSelectors marks, per point, the selectors whose matchNamespaces
// rule this workload out: the kernel skips them for its cgroup.
func disabledSelectors(p *profiles.Profile, ns, host cgroupfilter.NamespaceIDs) [profiles.NumPoints]uint32 {
	var d [profiles.NumPoints]uint32
	for pt := range p.Points {
		for i := range p.Points[pt] {
			if !selectorApplies(&p.Points[pt][i], ns, host) {
				d[pt] |= 1 << i
			}
		}
	}
	return d
}
