package job

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/ocigate/ocigate/internal/api"
	"github.com/ocigate/ocigate/internal/events"
)

// eventsCursor remembers where the agent's events file ended when the
// job started: the summary reads only what came after.
type eventsCursor struct {
	path   string
	offset int64
	err    error
}

func openEvents(path string, log io.Writer) *eventsCursor {
	if path == "" {
		return nil
	}
	c := &eventsCursor{path: path}
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		c.offset = fi.Size()
	case os.IsNotExist(err):
	default:
		c.err = err
	}
	return c
}

// jobEvents are the job's decisions (process_kprobe events) written since
// the cursor.
func (c *eventsCursor) jobEvents(id string) ([]events.Event, error) {
	if c.err != nil {
		return nil, c.err
	}
	f, err := os.Open(c.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(c.offset, io.SeekStart); err != nil {
		return nil, err
	}
	var out []events.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var ev events.Event
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Ocigate == nil || ev.Ocigate.ContainerID != id || ev.ProcessExec != nil || ev.ProcessExit != nil {
			continue
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

// maxSummaryLines bounds the distinct events listed.
const maxSummaryLines = 10

// summarize prints what the agent said about the job: its profile, and,
// with the events file, what was denied, killed or reported.
func summarize(w io.Writer, id string, wl *api.Workload, code int, cur *eventsCursor) {
	profile := "?"
	if wl != nil {
		profile = fmt.Sprintf("%s (%s), mode %s", wl.Profile, wl.ProfileReason, wl.Mode)
	}
	fmt.Fprintf(w, "ocigate: job %s: profile %s; the command exited %s\n", id, profile, describeExit(code))
	if cur == nil {
		fmt.Fprintln(w, "ocigate: no --events-file given: what the agent denied or reported is not summarised here")
		return
	}
	evs, err := cur.jobEvents(id)
	if err != nil {
		fmt.Fprintf(w, "ocigate: events not summarised: %v\n", err)
		return
	}
	if len(evs) == 0 {
		fmt.Fprintf(w, "ocigate: no events for this job in %s\n", cur.path)
		return
	}
	verdicts := map[string]int{}
	lines := map[string]int{}
	for _, ev := range evs {
		verdicts[ev.Ocigate.Verdict]++
		lines[describeEvent(ev)]++
	}
	var counts []string
	for _, v := range sortedKeys(verdicts) {
		counts = append(counts, fmt.Sprintf("%d %s", verdicts[v], v))
	}
	fmt.Fprintf(w, "ocigate: %d event(s) for this job in %s: %s\n", len(evs), cur.path, strings.Join(counts, ", "))
	keys := sortedKeys(lines)
	for i, k := range keys {
		if i == maxSummaryLines {
			fmt.Fprintf(w, "ocigate:   … %d more\n", len(keys)-i)
			break
		}
		suffix := ""
		if n := lines[k]; n > 1 {
			suffix = fmt.Sprintf(" (×%d)", n)
		}
		fmt.Fprintf(w, "ocigate:   %s%s\n", k, suffix)
	}
}

func describeExit(code int) string {
	if code > exitSignalDelta && code < exitSignalDelta+65 {
		return fmt.Sprintf("%d (signal %d)", code, code-exitSignalDelta)
	}
	return fmt.Sprint(code)
}

// describeEvent describes ev in a line, e.g. "killed exec /usr/bin/bash by
// /usr/bin/bash (policy p)".
func describeEvent(ev events.Event) string {
	o := ev.Ocigate
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", o.Verdict, o.Point)
	if k := ev.Hook(); k != nil {
		var ints []string // a call with only int arguments: dup2(3, 1)
		for _, a := range k.Args {
			if a.IntArg != nil {
				ints = append(ints, fmt.Sprint(a.IntArg.Value))
			}
		}
		if len(ints) > 0 && len(ints) == len(k.Args) {
			fmt.Fprintf(&b, " %s(%s)", k.FunctionName, strings.Join(ints, ", "))
		}
		for _, a := range k.Args {
			switch {
			case a.FileArg != nil:
				fmt.Fprintf(&b, " %s", a.FileArg.Path)
			case a.LinuxBinprmArg != nil:
				fmt.Fprintf(&b, " %s", a.LinuxBinprmArg.Path)
			case a.SockArg != nil && a.SockArg.Daddr != "":
				fmt.Fprintf(&b, " %s:%d", a.SockArg.Daddr, a.SockArg.Dport)
			case a.SockaddrArg != nil && a.SockaddrArg.Addr != "":
				fmt.Fprintf(&b, " %s:%d", a.SockaddrArg.Addr, a.SockaddrArg.Port)
			}
		}
		fmt.Fprintf(&b, " by %s", k.Process.Binary)
		if k.PolicyName != "" {
			fmt.Fprintf(&b, " (policy %s)", k.PolicyName)
		}
	}
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
