package install

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
)

// Docker defaults.
const (
	DefaultDockerConfig = "/etc/docker/daemon.json"
	DockerRuntimeName   = "ocigate"
	defaultHookName     = "ocigate-hook"
)

// dockerRuntime is a daemon.json "runtimes" entry.
type dockerRuntime struct {
	Path        string   `json:"path"`
	RuntimeArgs []string `json:"runtimeArgs,omitempty"`
}

// dockerEntry returns the wrapper's runtime entry, with runtimeArgs only
// for what differs from its defaults (ocigate-hook beside it, the hook's
// socket, runc found in the usual places).
func dockerEntry(o Options) (dockerRuntime, error) {
	if !filepath.IsAbs(o.WrapperPath) {
		return dockerRuntime{}, fmt.Errorf("wrapper path %q is not absolute", o.WrapperPath)
	}
	e := dockerRuntime{Path: o.WrapperPath}
	if o.HookPath != filepath.Join(filepath.Dir(o.WrapperPath), defaultHookName) {
		e.RuntimeArgs = append(e.RuntimeArgs, "--ocigate-hook="+o.HookPath)
	}
	if o.Socket != "" {
		e.RuntimeArgs = append(e.RuntimeArgs, "--ocigate-socket="+o.Socket)
	}
	if o.RuncPath != "" {
		e.RuntimeArgs = append(e.RuntimeArgs, "--ocigate-runc="+o.RuncPath)
	}
	if o.NoPoststop {
		e.RuntimeArgs = append(e.RuntimeArgs, "--ocigate-poststop=false")
	}
	return e, nil
}

func dockerConfig(o Options) string {
	if o.Config != "" {
		return o.Config
	}
	return DefaultDockerConfig
}

func dockerTargets(o Options) ([]target, error) {
	if o.FailOpen || o.AllowFailOpenAnnotation {
		return nil, fmt.Errorf("--fail-open and --allow-fail-open-annotation are not available for docker: the wrapper's hook always fails closed")
	}
	e, err := dockerEntry(o)
	if err != nil {
		return nil, err
	}
	return []target{{path: dockerConfig(o), kind: kindDocker, mode: 0o644, entry: DockerRuntimeName,
		content: func(cur []byte) ([]byte, error) { return setDockerRuntime(cur, e) }}}, nil
}

func readDaemonJSON(b []byte) (jsonObject, error) {
	if !json.Valid(b) {
		return jsonObject{}, fmt.Errorf("not valid JSON")
	}
	top, err := parseObject(b, 0)
	if err != nil {
		return jsonObject{}, fmt.Errorf("top level: %w", err)
	}
	return top, nil
}

// setDockerRuntime returns daemon.json with runtimes.ocigate set to e.
func setDockerRuntime(cur []byte, e dockerRuntime) ([]byte, error) {
	if len(bytes.TrimSpace(cur)) == 0 {
		b, err := json.MarshalIndent(map[string]map[string]dockerRuntime{"runtimes": {DockerRuntimeName: e}}, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode daemon.json: %w", err)
		}
		return append(b, '\n'), nil
	}
	top, err := readDaemonJSON(cur)
	if err != nil {
		return nil, err
	}
	unit := indentUnit(cur, top)
	ri, err := top.find("runtimes")
	if err != nil {
		return nil, err
	}
	if ri < 0 {
		return insertMember(cur, top, "runtimes", map[string]dockerRuntime{DockerRuntimeName: e}, unit)
	}
	rt, err := parseObject(cur, top.members[ri].valStart)
	if err != nil {
		return nil, fmt.Errorf("runtimes: %w", err)
	}
	oi, err := rt.find(DockerRuntimeName)
	if err != nil {
		return nil, fmt.Errorf("runtimes: %w", err)
	}
	if oi < 0 {
		return insertMember(cur, rt, DockerRuntimeName, e, unit)
	}
	m := rt.members[oi]
	if same, err := sameJSON(cur[m.valStart:m.valEnd], e); err != nil || same {
		return cur, err
	}
	return replaceValue(cur, rt, oi, e, unit)
}

// sameJSON compares a JSON value with what v encodes to.
func sameJSON(raw []byte, v any) (bool, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("encode JSON: %w", err)
	}
	var x, y any
	if err := json.Unmarshal(raw, &x); err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return false, err
	}
	return reflect.DeepEqual(x, y), nil
}

// stripDocker removes runtimes.ocigate, and "runtimes" itself when that
// leaves it empty and it was not in the original.
func stripDocker(cur, original []byte, name string) ([]byte, error) {
	if len(bytes.TrimSpace(cur)) == 0 {
		return cur, nil
	}
	top, err := readDaemonJSON(cur)
	if err != nil {
		return nil, err
	}
	ri, err := top.find("runtimes")
	if err != nil || ri < 0 {
		return cur, err
	}
	rt, err := parseObject(cur, top.members[ri].valStart)
	if err != nil {
		return cur, nil // not ours to fix
	}
	oi, err := rt.find(name)
	if err != nil || oi < 0 {
		return cur, err
	}
	if len(rt.members) == 1 && !hadRuntimes(original) {
		return removeMember(cur, top, ri), nil
	}
	return removeMember(cur, rt, oi), nil
}

func hadRuntimes(original []byte) bool {
	if original == nil || !json.Valid(original) {
		return false
	}
	top, err := parseObject(original, 0)
	if err != nil {
		return false
	}
	i, err := top.find("runtimes")
	return err == nil && i >= 0
}

func dockerNotes(o Options, p *Plan) {
	if _, err := os.Stat(o.WrapperPath); err != nil {
		p.Notes = append(p.Notes, "the wrapper is not at "+o.WrapperPath+" yet: copy bin/ocigate-runc there")
	}
	p.Notes = append(p.Notes,
		"reload dockerd (kill -HUP $(pidof dockerd), or restart it) to pick up the runtime",
		"run containers with: docker run --runtime "+DockerRuntimeName+" …; to protect every container set \"default-runtime\": \""+
			DockerRuntimeName+"\" in "+dockerConfig(o))
}
