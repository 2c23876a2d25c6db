package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// parsed is what one parse set, with either parser.
type parsed struct {
	socket, runtime string
	timeout         time.Duration
	failOpen, gate  bool
	args            []string
}

// parseWithFlag parses args with the flag package and the hook's
// options' names, kinds and defaults.
func parseWithFlag(args []string) (parsed, string, error) {
	var p parsed
	var out bytes.Buffer
	fs := flag.NewFlagSet("ocigate-hook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&p.socket, "socket", "/run/s.sock", "agent API socket")
	fs.StringVar(&p.runtime, "runtime", "", "runtime name")
	fs.DurationVar(&p.timeout, "timeout", 2*time.Second, "deadline")
	fs.BoolVar(&p.failOpen, "fail-open", false, "open")
	fs.BoolVar(&p.gate, "nri-gate", false, "gate\nsecond line")
	err := fs.Parse(args)
	p.args = fs.Args()
	fs.SetOutput(&out)
	fs.PrintDefaults()
	return p, out.String(), err
}

// parseWithHook is parseWithFlag with the hook's parser.
func parseWithHook(args []string) (parsed, string, error) {
	var p parsed
	var out bytes.Buffer
	var fs flagSet
	fs.String(&p.socket, "socket", "/run/s.sock", "agent API socket")
	fs.String(&p.runtime, "runtime", "", "runtime name")
	fs.Duration(&p.timeout, "timeout", 2*time.Second, "deadline")
	fs.Bool(&p.failOpen, "fail-open", "open")
	fs.Bool(&p.gate, "nri-gate", "gate\nsecond line")
	err := fs.Parse(args)
	p.args = fs.Args()
	fs.PrintDefaults(&out)
	return p, out.String(), err
}

// The hook's parser reads what the flag package reads, refuses what it
// refuses with its words, and prints the same help.
func TestFlagSetParsesAsTheFlagPackage(t *testing.T) {
	for _, args := range [][]string{
		{"createRuntime"},
		{"--socket", "/x.sock", "createRuntime"},
		{"-socket=/x.sock", "--timeout=500ms", "poststop"},
		{"--fail-open", "--nri-gate=false", "createRuntime", "--socket", "/y"},
		{"--fail-open=0", "--", "--socket"},
		{"--runtime", "-odd", "prestart"},
		{"-", "createRuntime"},
		{"--timeout", "soon", "createRuntime"},
		{"--timeout"},
		{"--fail-open=maybe"},
		{"--no-such-flag", "createRuntime"},
		{"---socket", "/x"},
		{"-=x"},
		{"--socket="},
		{"--help"},
		{"-h"},
	} {
		want, wantHelp, wantErr := parseWithFlag(args)
		got, gotHelp, gotErr := parseWithHook(args)
		if (wantErr == nil) != (gotErr == nil) {
			t.Errorf("%q: error %v, flag package's %v", args, gotErr, wantErr)
			continue
		}
		if wantErr != nil {
			if wantErr == flag.ErrHelp {
				if gotErr != errHelp {
					t.Errorf("%q: error %v, want errHelp", args, gotErr)
				}
			} else if gotErr.Error() != wantErr.Error() {
				t.Errorf("%q: error %q, flag package's %q", args, gotErr, wantErr)
			}
			continue
		}
		if g, w := strings.Join(got.args, "|"), strings.Join(want.args, "|"); got.socket != want.socket ||
			got.runtime != want.runtime || got.timeout != want.timeout || got.failOpen != want.failOpen ||
			got.gate != want.gate || g != w {
			t.Errorf("%q: parsed %+v, flag package %+v", args, got, want)
		}
		if gotHelp != wantHelp {
			t.Errorf("help:\n%s\nflag package's:\n%s", gotHelp, wantHelp)
		}
	}
}
