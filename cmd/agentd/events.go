package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/eventhub"
	"github.com/ocigate/ocigate/internal/events"
	"github.com/ocigate/ocigate/internal/flagvalue"
)

// kept is how many recent events the agent keeps, as its help says it.
var kept = strconv.Itoa(eventhub.DefaultRecent)

var eventsLong = `Print the running agent's recent events (of the last ` + kept + ` it keeps) and,
with --follow, every new one until interrupted. -o json prints the events
file's lines (Tetragon's process_kprobe, process_exec and process_exit
objects), -o yaml one YAML document per event, -o compact (or text) one
line per event for people.`

// newEventsCmd returns `events`.
func newEventsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "events", Short: "print the running agent's recent events; --follow streams new ones", Long: eventsLong,
		Example: "  ocigate-agentd events -o compact\n  ocigate-agentd events --follow --container web --type process_kprobe", Args: noArgs}
	fl := cmd.Flags()
	var types, policies flagvalue.List
	socket := fl.String("socket", api.DefaultSocket, "agent API socket")
	follow := fl.BoolP("follow", "f", false, "keep printing new events until interrupted")
	container := fl.String("container", "", "only events of this container (ID prefix or name)")
	fl.Var(&types, "type", "only these event types: "+strings.Join(events.Types, ", ")+" (repeat or comma-separate)")
	fl.Var(&policies, "policy", "only events of these policies (repeat or comma-separate)")
	formats := outputs{"json", "yaml", "compact", "text"}
	output := formats.add(cmd)
	tail := fl.Int("tail", -1, "recent events to print first, of the last "+kept+" the agent keeps; -1: all of them")
	timeout := fl.Duration("timeout", 5*time.Second, "deadline without --follow")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := formats.check(*output); err != nil {
			return err
		}
		sub := &api.Subscription{Follow: *follow, Tail: *tail, Container: *container, Types: types, Policies: policies}
		if err := sub.Validate(); err != nil {
			return err
		}
		ctx := cmd.Context()
		if !*follow {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *timeout)
			defer cancel()
		}
		err := printEvents(ctx, *socket, sub, renderer(*output), cmd.OutOrStdout(), cmd.ErrOrStderr())
		if *follow && errors.Is(err, context.Canceled) {
			return nil // interrupted: the normal end of --follow
		}
		return err
	}
	return cmd
}

// renderer returns what turns one event line into its output as format.
func renderer(format string) func([]byte) ([]byte, error) {
	switch format {
	case "compact", "text":
		return func(b []byte) ([]byte, error) {
			var ev events.Event
			if err := json.Unmarshal(b, &ev); err != nil {
				return nil, fmt.Errorf("event from the agent: %w", err)
			}
			return []byte(events.Compact(&ev)), nil
		}
	case "yaml":
		return func(b []byte) ([]byte, error) {
			y, err := jsonToYAML(b)
			return append([]byte("---\n"), bytes.TrimSuffix(y, []byte("\n"))...), err
		}
	}
	return func(b []byte) ([]byte, error) { return b, nil }
}

// printEvents subscribes and prints each event as render makes it.
func printEvents(ctx context.Context, socket string, sub *api.Subscription, render func([]byte) ([]byte, error), out, errOut io.Writer) error {
	w := bufio.NewWriter(out)
	var dropped uint64
	return api.Subscribe(ctx, socket, sub, func(f *api.EventFrame) error {
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
}
