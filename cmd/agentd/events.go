package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/flagvalue"
)

// eventsCmd prints the running agent's recent events and, with
// --follow, every new one until ctx ends.
func eventsCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	socket := fs.String("socket", api.DefaultSocket, "agent API socket")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	fs.BoolVar(follow, "f", false, "short for --follow")
	container := fs.String("container", "", "only events of this container (ID prefix or name)")
	var types, policies flagvalue.List
	fs.Var(&types, "type", "only these event types: "+strings.Join(events.Types, ", ")+" (repeat or comma-separate)")
	fs.Var(&policies, "policy", "only events of these policies (repeat or comma-separate)")
	output := fs.String("o", "json", "json (the events file's lines) or compact (one line per event for people)")
	tail := fs.Int("tail", -1, "recent events to print first, of the last 1000 the agent keeps; -1: all of them")
	timeout := fs.Duration("timeout", 5*time.Second, "deadline without --follow")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var render func([]byte) ([]byte, error)
	switch *output {
	case "json":
		render = func(b []byte) ([]byte, error) { return b, nil }
	case "compact":
		render = func(b []byte) ([]byte, error) {
			var ev events.Event
			if err := json.Unmarshal(b, &ev); err != nil {
				return nil, fmt.Errorf("event from the agent: %w", err)
			}
			return []byte(events.Compact(&ev)), nil
		}
	default:
		return fmt.Errorf("-o %q: want json or compact", *output)
	}
	if !*follow {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	sub := &api.Subscription{Follow: *follow, Tail: *tail, Container: *container, Types: types, Policies: policies}
	if err := sub.Validate(); err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	var dropped uint64
	err := api.Subscribe(ctx, *socket, sub, func(f *api.EventFrame) error {
		for _, raw := range f.Events {
			line, err := render(raw)
			if err != nil {
				return err
			}
			w.Write(line)
			w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("print events: %w", err)
		}
		if f.Dropped > dropped {
			fmt.Fprintf(errOut, "ocigate-agentd events: %d events dropped because this client read too slowly (%d in all)\n", f.Dropped-dropped, f.Dropped)
			dropped = f.Dropped
		}
		return nil
	})
	if *follow && errors.Is(err, context.Canceled) {
		return nil // interrupted: the normal end of --follow
	}
	return err
}
