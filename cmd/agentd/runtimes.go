package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/ocigate/ocigate/internal/agent"
	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/atomicfile"
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
	link *nriState
	log  *zap.Logger
}

// nriSettle is how long after Synchronize the plugin counts as
// connected: the runtime adds a plugin to those it calls once its
// Synchronize has returned, so a container starting meanwhile would not
// reach it. Until then the gate has the hook register containers (the
// plugin may register them again: the same ID replaces its entry).
const nriSettle = time.Second

// nriState is the NRI plugin's link to the runtime as the node's gate
// (ocigate-hook --nri-gate) and status see it: the marker file beside
// the API socket (api.NRIMarker) and the gauge nri_connected.
type nriState struct {
	mu     sync.Mutex
	epoch  uint64 // connections lost so far: a late connected() of an older one does nothing
	marker string
	gauge  *atomic.Uint64 // nil: none
	log    *zap.Logger
}

func nriLink(socket string, gauge *atomic.Uint64, log *zap.Logger) *nriState {
	return &nriState{marker: api.NRIMarker(socket), gauge: gauge, log: log}
}

// connected marks the plugin connected nriSettle from now, unless the
// connection is lost before.
func (s *nriState) connected() {
	s.mu.Lock()
	epoch := s.epoch
	s.mu.Unlock()
	time.AfterFunc(nriSettle, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.epoch == epoch {
			_ = s.write(true) // logged
		}
	})
}

// disconnected marks the plugin not connected, at once.
func (s *nriState) disconnected() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch++
	return s.write(false)
}

func (s *nriState) write(up bool) error {
	v, err := uint64(0), error(nil)
	if up {
		v, err = 1, atomicfile.Write(s.marker, []byte("the agent's NRI plugin is connected (ocigate-hook --nri-gate reads this)\n"), 0o644)
	} else if err = os.Remove(s.marker); errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if s.gauge != nil {
		s.gauge.Store(v)
	}
	if err != nil {
		err = fmt.Errorf("NRI marker for the node's gate: %w", err)
		s.log.Error("the node's gate does not see the NRI plugin's state", zap.Error(err))
	}
	return err
}

// AdoptContainers is the plugin's Synchronize: once it returns the
// runtime calls the plugin at each container's start, so the marker the
// node's gate reads says connected (nriSettle later).
func (n nriAgent) AdoptContainers(cs []running.Container) {
	defer n.link.connected()
	res := n.Adopt(cs)
	n.log.Info("NRI: running containers adopted", zap.Int("found", len(cs)), zap.Int("adopted", res.Adopted),
		zap.Int("already_registered", res.AlreadyRegistered), zap.Int("failed", res.Failed))
}

// runNRI serves the NRI plugin, connecting again (after 1 s, doubling up
// to 30 s) when the runtime goes away, until ctx ends.
func runNRI(ctx context.Context, p *nriplugin.Plugin, link *nriState, socket, idx string, log *zap.Logger) {
	backoff := time.Second
	for ctx.Err() == nil {
		start := time.Now()
		err := nriplugin.Run(ctx, p, socket, "ocigate", idx)
		_ = link.disconnected() // logged

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
