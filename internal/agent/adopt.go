package agent

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/workload"
	"github.com/ocigate/ocigate/runtime/running"
)

// AdoptResult counts what Adopt did.
type AdoptResult struct {
	Adopted, AlreadyRegistered, Failed int
}

// Adopt registers containers that were running before the agent started
// (or while it was down), each with the profile it selects, marked
// adopted: its processes ran unwatched until now, so binaries they exec'd
// before are unknown to matchBinaries and what they did is not reported.
// A container the hook has registered meanwhile is left as it is.
func (a *Agent) Adopt(cs []running.Container) AdoptResult {
	var res AdoptResult
	for _, c := range cs {
		start := time.Now()
		if _, ok := a.reg.Get(c.ID); ok { // checked again under a.mu
			res.AlreadyRegistered++
			continue
		}
		ident, err := a.resolver.Resolve(c.Pid)
		if err != nil {
			res.Failed++
			a.log.Warn("running container not adopted", zap.String("container", c.ID), zap.String("runtime", c.Runtime),
				zap.Int("pid", c.Pid), zap.Error(err))
			continue
		}
		r := &api.Registration{ContainerID: c.ID, Runtime: c.Runtime, Bundle: c.Bundle, Pid: c.Pid,
			Annotations: c.Annotations, Identity: api.IdentityOf(ident)}
		w, err := a.registerAs(context.Background(), r, start, &adoption{info: c.Info})
		switch {
		case errors.Is(err, errAlreadyRegistered):
			res.AlreadyRegistered++
		case err != nil:
			res.Failed++
			a.stats.RegistrationErrors.Add(1)
			a.log.Warn("running container not adopted", zap.String("container", c.ID), zap.String("runtime", c.Runtime), zap.Error(err))
		default:
			res.Adopted++
			a.stats.Adopted.Add(1)
			a.logAdopted(w)
		}
	}
	return res
}

func (a *Agent) logAdopted(w *workload.Workload) {
	a.log.Warn("adopted a running container late: what its processes did before now was not watched",
		zap.String("container", w.ContainerID), zap.String("runtime", w.Runtime), zap.String("image", w.Image),
		zap.String("profile", w.Profile), zap.String("reason", w.ProfileReason), zap.Uint64("cgroup_id", w.CgroupID))
}
