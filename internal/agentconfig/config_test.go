package agentconfig

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// run without flags is the default Config.
func TestParseNoFlags(t *testing.T) {
	c, err := Parse(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("run without flags\n got  %+v\n want %+v", c, Default())
	}
	if args := Default().Args(); len(args) != 0 {
		t.Errorf("the default's flags: %q", args)
	}
}

// Every field has its flag: a Config with every field changed survives
// Args and Parse.
func TestArgsRoundTrip(t *testing.T) {
	want := changedConfig(t)
	args := want.Args()
	got, err := Parse(args, io.Discard)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q\n got  %+v\n want %+v", args, got, want)
	}
	if n := reflect.TypeFor[Config]().NumField(); len(args) != n {
		t.Errorf("%d flags for %d fields: %q", len(args), n, args)
	}
}

// changedConfig returns a valid Config whose every field differs from
// the default.
func changedConfig(t *testing.T) Config {
	c := Default()
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Interface().(type) {
		case string:
			f.SetString(f.String() + "x")
		case bool:
			f.SetBool(!f.Bool())
		case int, int64:
			f.SetInt(f.Int() + 1024)
		case time.Duration:
			f.SetInt(f.Int() + int64(time.Second))
		case []string:
			f.Set(reflect.ValueOf([]string{"process_exec", "process_exit"}))
		default:
			t.Fatalf("field %s: no change for its type %s", v.Type().Field(i).Name, f.Type())
		}
	}
	// What must stay valid.
	c.LogLevel, c.LogFormat, c.NRIIndex = "debug", "json", "42"
	c.EventsReaderNice = 5
	return c
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // "" valid
	}{
		{"default", func(*Config) {}, ""},
		{"reconcile off", func(c *Config) { c.ReconcileInterval = 0 }, ""},
		{"negative reconcile interval", func(c *Config) { c.ReconcileInterval = -time.Second },
			"--reconcile-interval -1s: want 0 (off) or a positive duration"},
		{"no socket", func(c *Config) { c.Socket = "" }, "--socket: want the API socket's path"},
		{"log level", func(c *Config) { c.LogLevel = "loud" }, `--log-level: unrecognized level: "loud"`},
		{"negative size", func(c *Config) { c.EventsMaxSize = -1 }, "--events-max-size -1: want 0 (never rotate) or a positive size"},
		{"negative backups", func(c *Config) { c.EventsMaxBackups = -1 }, "--events-max-backups -1: want 0 or more"},
		{"reader nice", func(c *Config) { c.EventsReaderNice = -21 }, "--events-reader-nice -21: want a nice value from -20 to 19"},
		{"reader at the agent's priority", func(c *Config) { c.EventsReaderNice = 0 }, ""},
		{"event type", func(c *Config) { c.EventsTypes = []string{"process_exec", "process_fork"} },
			`--events-types: event type "process_fork": want one of process_kprobe, process_lsm, process_tracepoint, process_exec, process_exit, ocigate_claim`},
		{"trusted annotation", func(c *Config) { c.TrustedAnnotations = []string{"ocigate.io/profile", "a=b"} },
			`--trusted-annotations: "a=b" is not an annotation key`},
		{"no runc", func(c *Config) { c.RuncBinary = "" }, "--runc: want the runc binary that lists --runc-roots /run/runc"},
		{"no runc, no adoption", func(c *Config) { c.RuncBinary, c.Adopt = "", false }, ""},
		{"NRI index", func(c *Config) { c.NRI, c.NRIIndex = true, "7" }, `--nri-index: invalid plugin index "7", must be 2 digits`},
		{"NRI index unused", func(c *Config) { c.NRIIndex = "7" }, ""},
		{"NRI socket", func(c *Config) { c.NRI, c.NRISocket = true, "" }, "--nri-socket: want the runtime's NRI socket with --nri"},
		{"pins without state", func(c *Config) { c.StateDir = "" }, "--state-dir: want a directory for the workload records with --pin-dir /sys/fs/bpf/ocigate"},
		{"no pins, no state", func(c *Config) { c.StateDir, c.PinDir = "", "" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("error %v, want %s", err, tc.want)
			}
		})
	}
}

// Parse refuses what Validate refuses, every problem at once, and
// arguments that are not flags.
func TestParseRefuses(t *testing.T) {
	_, err := Parse([]string{"--reconcile-interval", "-3s", "--socket", ""}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--reconcile-interval -3s") || !strings.Contains(err.Error(), "--socket") {
		t.Errorf("error %v", err)
	}
	if _, err := Parse([]string{"--pin-dir", "", "extra"}, io.Discard); err == nil || !strings.Contains(err.Error(), `unexpected arguments ["extra"]`) {
		t.Errorf("error %v", err)
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"--help"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("error %v", err)
	}
	help := out.String()
	for _, want := range []string{"usage: ocigate-agentd run [flags]\n", "  -reconcile-interval duration\n",
		"0: never (default 3s)\n", "  -events-max-size value\n", "0: never (default 100MiB)\n"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
}
