package agent

import (
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ocigate/ocigate/bpf/enforcer"
	"github.com/ocigate/ocigate/profiles"
)

// adaptToBackends rewrites a profile for what this kernel offers: without
// a listen hook (the fallback backend), listen selectors apply at bind,
// restricted to TCP — a bind shell binds the port it will listen on. The
// profile in the catalog is not changed.
func adaptToBackends(p *profiles.Profile, backends []enforcer.PointBackend, log *zap.Logger) *profiles.Profile {
	listen := p.Points[profiles.PointListen]
	if len(listen) == 0 || hasBackend(backends, profiles.PointListen.String()) {
		return p
	}
	q := *p
	q.Points[profiles.PointListen] = nil
	bind := append([]profiles.Selector(nil), p.Points[profiles.PointBind]...)
	groups := 0
	for _, s := range bind {
		groups = max(groups, s.Group+1)
	}
	for _, s := range listen {
		s.Group += groups
		if len(s.Protocols) == 0 {
			s.Protocols = []uint8{unix.IPPROTO_TCP}
		}
		bind = append(bind, s)
	}
	if len(bind) > profiles.MaxSelectors {
		log.Warn("listen selectors do not fit at bind; they stay inactive on this kernel",
			zap.String("profile", p.Name), zap.Int("selectors", len(bind)))
		return p
	}
	q.Points[profiles.PointBind] = bind
	log.Info("no listen hook on this kernel: listen selectors apply at bind", zap.String("profile", p.Name),
		zap.Int("selectors", len(listen)))
	return &q
}

func hasBackend(backends []enforcer.PointBackend, point string) bool {
	for _, b := range backends {
		if b.Point == point {
			return b.Backend != enforcer.BackendNone
		}
	}
	return false
}
