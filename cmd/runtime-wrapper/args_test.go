package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		own     map[string]string
		args    []string
		command string
		bundle  string
	}{
		{"containerd shim create",
			[]string{"--root", "/run/containerd/runc/moby", "--log", "/x/log.json", "--log-format", "json", "--systemd-cgroup",
				"create", "--bundle", "/run/b/c1", "--pid-file", "/run/b/c1/init.pid", "--console-socket", "/tmp/s", "c1"},
			map[string]string{},
			[]string{"--root", "/run/containerd/runc/moby", "--log", "/x/log.json", "--log-format", "json", "--systemd-cgroup",
				"create", "--bundle", "/run/b/c1", "--pid-file", "/run/b/c1/init.pid", "--console-socket", "/tmp/s", "c1"},
			"create", "/run/b/c1"},
		{"own options removed, both spellings",
			[]string{"--ocigate-hook=/opt/h", "--ocigate-socket", "/run/s.sock", "--root=/r", "run", "-b", "bun", "-d", "c2"},
			map[string]string{"hook": "/opt/h", "socket": "/run/s.sock"},
			[]string{"--root=/r", "run", "-b", "bun", "-d", "c2"},
			"run", "bun"},
		{"single dash options and inline bundle",
			[]string{"-debug", "-root", "/r", "create", "-bundle=/b", "c3"}, map[string]string{},
			[]string{"-debug", "-root", "/r", "create", "-bundle=/b", "c3"}, "create", "/b"},
		{"no bundle: current directory",
			[]string{"run", "--detach", "c4"}, map[string]string{}, []string{"run", "--detach", "c4"}, "run", ""},
		{"bundle after the container id is not an option",
			[]string{"create", "c5", "--bundle", "/b"}, map[string]string{}, []string{"create", "c5", "--bundle", "/b"}, "create", ""},
		{"a value that looks like a subcommand",
			[]string{"--log", "create", "state", "c6"}, map[string]string{}, []string{"--log", "create", "state", "c6"}, "state", ""},
		{"other subcommands keep their options unparsed",
			[]string{"--ocigate-runc=/usr/sbin/runc", "delete", "--force", "--bundle", "x", "c7"}, map[string]string{"runc": "/usr/sbin/runc"},
			[]string{"delete", "--force", "--bundle", "x", "c7"}, "delete", ""},
		{"restore", []string{"restore", "--image-path", "/ckpt", "-b", "/b", "c8"}, map[string]string{},
			[]string{"restore", "--image-path", "/ckpt", "-b", "/b", "c8"}, "restore", "/b"},
		{"version", []string{"--version"}, map[string]string{}, []string{"--version"}, "", ""},
		{"empty runtime name", []string{"--ocigate-runtime-name=", "ps", "c9"}, map[string]string{"runtime-name": ""},
			[]string{"ps", "c9"}, "ps", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := parseArgs(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(inv.own, tt.own) || !reflect.DeepEqual(inv.args, tt.args) ||
				inv.command != tt.command || inv.bundle != tt.bundle {
				t.Errorf("got own %v args %q command %q bundle %q\nwant own %v args %q command %q bundle %q",
					inv.own, inv.args, inv.command, inv.bundle, tt.own, tt.args, tt.command, tt.bundle)
			}
		})
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, in := range [][]string{
		{"--ocigate-frob=1", "run", "c"},
		{"--ocigate-hook"},
	} {
		if _, err := parseArgs(in); err == nil || !strings.Contains(err.Error(), "ocigate-") {
			t.Errorf("%q: got %v", in, err)
		}
	}
}
