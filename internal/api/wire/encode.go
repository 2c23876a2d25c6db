package wire

import (
	"slices"
	"strconv"

	"github.com/ocigate/ocigate/internal/jsonstr"
)

// AppendJSON appends r as encoding/json encodes it, byte for byte
// (fields in order, omitempty, map keys sorted, HTML-safe strings): the
// hook lives for one request, and encoding/json's first use of these
// types (building their encoders by reflection) cost it about 0.1 ms.
// TestAppendJSONMatchesEncodingJSON fills every field by reflection, so
// a field added to these types and not here fails it.
func (r *Request) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	if r.Protocol != 0 {
		b = strconv.AppendInt(append(b, `"protocol":`...), int64(r.Protocol), 10)
		b = append(b, ',')
	}
	b = jsonstr.Append(append(b, `"op":`...), r.Op)
	if r.Register != nil {
		b = r.Register.appendJSON(append(b, `,"register":`...))
	}
	if r.Unregister != nil {
		b = jsonstr.Append(append(b, `,"unregister":{"container_id":`...), r.Unregister.ContainerID)
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendJSON appends g as encoding/json encodes it.
func (g *Registration) appendJSON(b []byte) []byte {
	b = jsonstr.Append(append(b, `{"container_id":`...), g.ContainerID)
	b = appendOpt(b, "runtime", g.Runtime)
	b = appendOpt(b, "bundle", g.Bundle)
	b = strconv.AppendInt(append(b, `,"pid":`...), int64(g.Pid), 10)
	if len(g.Annotations) > 0 {
		b = append(b, `,"annotations":{`...)
		keys := make([]string, 0, len(g.Annotations))
		for k := range g.Annotations {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonstr.Append(b, k)
			b = jsonstr.Append(append(b, ':'), g.Annotations[k])
		}
		b = append(b, '}')
	}
	id, ns := &g.Identity, &g.Identity.Namespaces
	b = strconv.AppendUint(append(b, `,"identity":{"cgroup_id":`...), id.CgroupID, 10)
	b = jsonstr.Append(append(b, `,"cgroup_path":`...), id.CgroupPath)
	for i, v := range [...]uint64{ns.Mnt, ns.Pid, ns.Net, ns.Uts, ns.Ipc, ns.Cgroup, ns.User, ns.Time} {
		b = append(b, namespaceKeys[i]...)
		b = strconv.AppendUint(b, v, 10)
	}
	b = append(b, '}', '}')
	b = appendOpt(b, "runtime_annotation", g.RuntimeAnnotation)
	b = appendOpt(b, "profile", g.Profile)
	return append(b, '}')
}

// namespaceKeys precede NamespaceIDs' values, in its field order.
var namespaceKeys = [...]string{`,"namespaces":{"mnt":`, `,"pid":`, `,"net":`, `,"uts":`, `,"ipc":`, `,"cgroup":`, `,"user":`, `,"time":`}

// appendOpt appends ,"member":s unless s is empty (omitempty).
func appendOpt(b []byte, member, s string) []byte {
	if s == "" {
		return b
	}
	b = append(append(append(b, `,"`...), member...), `":`...)
	return jsonstr.Append(b, s)
}
