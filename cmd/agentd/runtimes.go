package main

import (
	"context"
	"errors"
	"io"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/agent"
	"github.com/ocigate/ocigate/runtime/containerd"
	"github.com/ocigate/ocigate/runtime/nriplugin"
	"github.com/ocigate/ocigate/runtime/running"
)

// adoptTimeout bounds listing the running containers at start.
const adoptTimeout = 30 * time.Second

// adoptRunning registers the containers that already run: those of
// containerd (every namespace) and of the runc roots.
func adoptRunning(ctx context.Context, ag *agent.Agent, lister *running.Lister, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(ctx, adoptTimeout)
	defer cancel()
	cs, errs := lister.List(ctx)
	for _, err := range errs {
		log.Warn("running containers not listed; those of this source are not adopted", zap.Error(err))
	}
	res := ag.Adopt(cs)
	log.Info("running containers adopted", zap.Int("found", len(cs)), zap.Int("adopted", res.Adopted),
		zap.Int("already_registered", res.AlreadyRegistered), zap.Int("failed", res.Failed))
}

// socketExists reports whether path exists: a runtime whose socket is
// missing is not running here.
func socketExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0
}

// watchContainerd follows containerd's task exit and container delete
// events and unregisters the containers they name, reconnecting (after
// 1 s, doubling up to 30 s) while containerd is away, until ctx ends.
func watchContainerd(ctx context.Context, c *containerd.Client, ag *agent.Agent, log *zap.Logger) {
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := followContainerd(ctx, c, ag, log)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		log.Debug("containerd events: reconnecting", zap.String("socket", c.Socket()), zap.Duration("in", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func followContainerd(ctx context.Context, c *containerd.Client, ag *agent.Agent, log *zap.Logger) error {
	evs, err := c.Subscribe(ctx, containerd.TopicTaskExit, containerd.TopicTaskDelete, containerd.TopicContainerDelete)
	if err != nil {
		return err
	}
	defer evs.Close()
	log.Info("following containerd's events", zap.String("socket", c.Socket()))
	for {
		ev, err := evs.Recv()
		if errors.Is(err, io.EOF) {
			return errors.New("containerd ended the event stream")
		}
		if err != nil {
			return err
		}
		ag.DropGone(agent.ContainerGone{Runtime: "containerd", Namespace: ev.Namespace, ContainerID: ev.ContainerID,
			Pid: int(ev.Pid), Topic: ev.Topic})
	}
}

// nriAgent is the agent as the NRI plugin uses it.
type nriAgent struct {
	*agent.Agent
	log *zap.Logger
}

// AdoptContainers is the plugin's Synchronize: once it returns the
// runtime calls the plugin at each container's start, so the gauge
// ocigate-hook --nri-gate asks about says connected.
func (n nriAgent) AdoptContainers(cs []running.Container) {
	defer n.Stats().NRIConnected.Store(1)
	res := n.Adopt(cs)
	n.log.Info("NRI: running containers adopted", zap.Int("found", len(cs)), zap.Int("adopted", res.Adopted),
		zap.Int("already_registered", res.AlreadyRegistered), zap.Int("failed", res.Failed))
}

// runNRI serves the NRI plugin, connecting again (after 1 s, doubling up
// to 30 s) when the runtime goes away, until ctx ends.
func runNRI(ctx context.Context, p *nriplugin.Plugin, connected *atomic.Uint64, socket, idx string, log *zap.Logger) {
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := nriplugin.Run(ctx, p, socket, "ocigate", idx)
		connected.Store(0)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		log.Warn("NRI: not connected to the runtime; trying again", zap.String("socket", socket), zap.Duration("in", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}
