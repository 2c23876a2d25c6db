package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Hooks and agents of different versions talk to each other during a
// rolling upgrade, so the JSON of every message is pinned here: the
// field names, their order and what is left out when empty. The
// expected bytes were produced by the version whose agent record was
// also its wire type (cgroupfilter.Workload); a failure here is a
// protocol change.

// fullIdentity sets every identity field.
func fullIdentity() Identity {
	return Identity{CgroupID: 77, CgroupPath: "/kubepods/c1",
		Namespaces: NamespaceIDs{Mnt: 1, Pid: 2, Net: 3, Uts: 4, Ipc: 5, Cgroup: 6, User: 7, Time: 8}}
}

// fullRequest sets every field of a request and its bodies.
func fullRequest() *Request {
	return &Request{Protocol: ProtocolVersion, Op: OpRegister,
		Register: &Registration{ContainerID: "c1", Runtime: "runc", Bundle: "/run/b/c1", Pid: 4242,
			Annotations: map[string]string{"k": "v"}, Identity: fullIdentity()},
		Unregister: &Unregistration{ContainerID: "c1"},
		Subscribe:  &Subscription{Follow: true, Tail: -1, Container: "c1", Types: []string{"process_exec"}, Policies: []string{"p"}},
		Status:     &StatusOptions{Summary: true}}
}

// fullResponse sets every field of a response and what it carries.
func fullResponse() *Response {
	at := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	w := &Workload{ContainerID: "c1", Runtime: "runc", Bundle: "/run/b/c1", Pid: 4242,
		Annotations: map[string]string{"k": "v"}, Image: "docker.io/library/alpine:3", ImageSource: "containerd",
		Name: "web", Pod: "web-0", PodNamespace: "default", Adopted: true, Identity: fullIdentity(),
		Profile: "default", ProfileReason: "annotation", Mode: "enforce", RegisteredAt: at}
	st := &Status{Node: "node-1", StartedAt: at,
		Backends: []Backend{{Point: "exec", Backend: "lsm", Mechanism: "lsm/bprm_check_security", Skipped: []string{"x: y"}, Error: "z"}},
		Profiles: []string{"default"}, Workloads: []*Workload{w}, WorkloadsOmitted: 2,
		Counters:    map[string]uint64{"registrations": 3},
		Subscribers: []Subscriber{{ID: 1, Filter: "all", Since: at, Queued: 2, Sent: 3, Dropped: 4}}}
	ev := &EventFrame{Events: []json.RawMessage{json.RawMessage(`{"a":1}`)}, Dropped: 5, Live: true, End: true}
	return &Response{Protocol: ProtocolVersion, OK: true, Error: "e", Workload: w, Status: st, Events: ev, FailurePolicy: FailClosed}
}

const (
	wireIdentity = `{"cgroup_id":77,"cgroup_path":"/kubepods/c1","namespaces":{"mnt":1,"pid":2,"net":3,"uts":4,"ipc":5,"cgroup":6,"user":7,"time":8}}`
	wireWorkload = `{"container_id":"c1","runtime":"runc","bundle":"/run/b/c1","pid":4242,"annotations":{"k":"v"},` +
		`"image":"docker.io/library/alpine:3","image_source":"containerd","name":"web","pod":"web-0","pod_namespace":"default","adopted":true,` +
		`"cgroup_id":77,"cgroup_path":"/kubepods/c1","namespaces":{"mnt":1,"pid":2,"net":3,"uts":4,"ipc":5,"cgroup":6,"user":7,"time":8},` +
		`"profile":"default","profile_reason":"annotation","mode":"enforce","registered_at":"2024-01-02T03:04:05.000000006Z"}`
	wireZeroNamespaces = `"namespaces":{"mnt":0,"pid":0,"net":0,"uts":0,"ipc":0,"cgroup":0,"user":0,"time":0}`
)

func TestWireFormat(t *testing.T) {
	tests := []struct {
		name string
		msg  any // a pointer, so that the JSON decodes into it again
		want string
	}{
		{"full request", fullRequest(), `{"protocol":2,"op":"register","register":{"container_id":"c1","runtime":"runc","bundle":"/run/b/c1","pid":4242,` +
			`"annotations":{"k":"v"},"identity":` + wireIdentity + `},"unregister":{"container_id":"c1"},` +
			`"subscribe":{"follow":true,"tail":-1,"container":"c1","types":["process_exec"],"policies":["p"]},"status":{"summary":true}}`},
		{"full response", fullResponse(), `{"protocol":2,"ok":true,"error":"e","workload":` + wireWorkload + `,` +
			`"status":{"node":"node-1","started_at":"2024-01-02T03:04:05.000000006Z",` +
			`"backends":[{"point":"exec","backend":"lsm","mechanism":"lsm/bprm_check_security","skipped":["x: y"],"error":"z"}],` +
			`"profiles":["default"],"workloads":[` + wireWorkload + `],"workloads_omitted":2,"counters":{"registrations":3},` +
			`"subscribers":[{"id":1,"filter":"all","since":"2024-01-02T03:04:05.000000006Z","queued":2,"sent":3,"dropped":4}]},` +
			`"events":{"events":[{"a":1}],"dropped":5,"live":true,"end":true},"failure_policy":"closed"}`},
		{"empty request", &Request{}, `{"op":""}`},
		{"empty response", &Response{}, `{"ok":false}`},
		{"empty registration", &Registration{}, `{"container_id":"","pid":0,"identity":{"cgroup_id":0,"cgroup_path":"",` + wireZeroNamespaces + `}}`},
		{"empty unregistration", &Unregistration{}, `{"container_id":""}`},
		{"empty subscription", &Subscription{}, `{"tail":0}`},
		{"empty status options", &StatusOptions{}, `{}`},
		{"empty workload", &Workload{}, `{"container_id":"","cgroup_id":0,"cgroup_path":"",` + wireZeroNamespaces +
			`,"profile":"","mode":"","registered_at":"0001-01-01T00:00:00Z"}`},
		{"empty status", &Status{}, `{"node":"","started_at":"0001-01-01T00:00:00Z","backends":null,"profiles":null,"workloads":null,"counters":null}`},
		{"empty backend", &Backend{}, `{"point":"","backend":"","mechanism":""}`},
		{"empty subscriber", &Subscriber{}, `{"id":0,"filter":"","since":"0001-01-01T00:00:00Z","queued":0,"sent":0,"dropped":0}`},
		{"empty event frame", &EventFrame{}, `{"dropped":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.msg)
			if err != nil || string(b) != tt.want {
				t.Fatalf("encoded (%v)\n got  %s\n want %s", err, b, tt.want)
			}
			// What an earlier version sends decodes to the same message.
			dec := reflect.New(reflect.TypeOf(tt.msg).Elem()).Interface()
			if err := json.Unmarshal([]byte(tt.want), dec); err != nil || !reflect.DeepEqual(dec, tt.msg) {
				t.Fatalf("decoded (%v)\n got  %+v\n want %+v", err, dec, tt.msg)
			}
		})
	}
}

// wireSchema lists every JSON field reachable from t, one "path kind"
// line each, with ",omitempty" where the field is left out when empty.
// Embedded structs without a tag are inline, as encoding/json has them.
func wireSchema(path string, t reflect.Type, out *[]string) {
	t = wireElem(t)
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[time.Time]() {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup("json")
		if !f.IsExported() || tag == "-" {
			continue
		}
		if f.Anonymous && !hasTag {
			wireSchema(path, f.Type, out)
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		line := path + "." + name + " " + wireKind(f.Type)
		if opts != "" {
			line += "," + opts
		}
		*out = append(*out, line)
		wireSchema(path+"."+name, f.Type, out)
	}
}

// wireElem returns what t encodes as once pointers and slices (other
// than raw JSON) are looked through.
func wireElem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || (t.Kind() == reflect.Slice && t != reflect.TypeFor[json.RawMessage]()) {
		t = t.Elem()
	}
	return t
}

// wireKind names how t encodes: "object" for a struct, "[]" before a
// list's element, Go's name for the rest; pointers are invisible.
func wireKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Slice && t != reflect.TypeFor[json.RawMessage]():
		return "[]" + wireKind(t.Elem())
	case t.Kind() == reflect.Struct && t != reflect.TypeFor[time.Time]():
		return "object"
	}
	return t.String()
}

// Every field of every message, so that one added (even one left out
// when empty, which TestWireFormat would not see) is a deliberate
// protocol change.
func TestWireSchema(t *testing.T) {
	var got []string
	wireSchema("request", reflect.TypeFor[Request](), &got)
	wireSchema("response", reflect.TypeFor[Response](), &got)
	want := strings.Split(strings.TrimSpace(wantWireSchema), "\n")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the API's messages changed; if that is meant, update wantWireSchema (and mind older hooks and agents):\n%s",
			strings.Join(got, "\n"))
	}
}

const wantWireSchema = `
request.protocol int,omitempty
request.op string
request.register object,omitempty
request.register.container_id string
request.register.runtime string,omitempty
request.register.bundle string,omitempty
request.register.pid int
request.register.annotations map[string]string,omitempty
request.register.identity object
request.register.identity.cgroup_id uint64
request.register.identity.cgroup_path string
request.register.identity.namespaces object
request.register.identity.namespaces.mnt uint64
request.register.identity.namespaces.pid uint64
request.register.identity.namespaces.net uint64
request.register.identity.namespaces.uts uint64
request.register.identity.namespaces.ipc uint64
request.register.identity.namespaces.cgroup uint64
request.register.identity.namespaces.user uint64
request.register.identity.namespaces.time uint64
request.register.runtime_annotation string,omitempty
request.register.profile string,omitempty
request.unregister object,omitempty
request.unregister.container_id string
request.subscribe object,omitempty
request.subscribe.follow bool,omitempty
request.subscribe.tail int
request.subscribe.container string,omitempty
request.subscribe.types []string,omitempty
request.subscribe.policies []string,omitempty
request.status object,omitempty
request.status.summary bool,omitempty
request.pods object,omitempty
request.pods.pods []object
request.pods.pods.uid string
request.pods.pods.namespace string
request.pods.pods.name string
request.pods.pods.labels map[string]string,omitempty
request.pods.pods.workload string,omitempty
request.pods.pods.workload_kind string,omitempty
response.protocol int,omitempty
response.ok bool
response.error string,omitempty
response.workload object,omitempty
response.workload.container_id string
response.workload.runtime string,omitempty
response.workload.bundle string,omitempty
response.workload.pid int,omitempty
response.workload.annotations map[string]string,omitempty
response.workload.image string,omitempty
response.workload.image_source string,omitempty
response.workload.name string,omitempty
response.workload.pod string,omitempty
response.workload.pod_namespace string,omitempty
response.workload.adopted bool,omitempty
response.workload.cgroup_id uint64
response.workload.cgroup_path string
response.workload.namespaces object
response.workload.namespaces.mnt uint64
response.workload.namespaces.pid uint64
response.workload.namespaces.net uint64
response.workload.namespaces.uts uint64
response.workload.namespaces.ipc uint64
response.workload.namespaces.cgroup uint64
response.workload.namespaces.user uint64
response.workload.namespaces.time uint64
response.workload.profile string
response.workload.profile_reason string,omitempty
response.workload.mode string
response.workload.registered_at time.Time
response.status object,omitempty
response.status.node string
response.status.started_at time.Time
response.status.backends []object
response.status.backends.point string
response.status.backends.backend string
response.status.backends.mechanism string
response.status.backends.skipped []string,omitempty
response.status.backends.error string,omitempty
response.status.backends.unneeded bool,omitempty
response.status.backends.detached bool,omitempty
response.status.profiles []string
response.status.workloads []object
response.status.workloads.container_id string
response.status.workloads.runtime string,omitempty
response.status.workloads.bundle string,omitempty
response.status.workloads.pid int,omitempty
response.status.workloads.annotations map[string]string,omitempty
response.status.workloads.image string,omitempty
response.status.workloads.image_source string,omitempty
response.status.workloads.name string,omitempty
response.status.workloads.pod string,omitempty
response.status.workloads.pod_namespace string,omitempty
response.status.workloads.adopted bool,omitempty
response.status.workloads.cgroup_id uint64
response.status.workloads.cgroup_path string
response.status.workloads.namespaces object
response.status.workloads.namespaces.mnt uint64
response.status.workloads.namespaces.pid uint64
response.status.workloads.namespaces.net uint64
response.status.workloads.namespaces.uts uint64
response.status.workloads.namespaces.ipc uint64
response.status.workloads.namespaces.cgroup uint64
response.status.workloads.namespaces.user uint64
response.status.workloads.namespaces.time uint64
response.status.workloads.profile string
response.status.workloads.profile_reason string,omitempty
response.status.workloads.mode string
response.status.workloads.registered_at time.Time
response.status.workloads_omitted int,omitempty
response.status.counters map[string]uint64
response.status.subscribers []object,omitempty
response.status.subscribers.id uint64
response.status.subscribers.filter string
response.status.subscribers.since time.Time
response.status.subscribers.queued int
response.status.subscribers.sent uint64
response.status.subscribers.dropped uint64
response.events object,omitempty
response.events.events []json.RawMessage,omitempty
response.events.dropped uint64
response.events.live bool,omitempty
response.events.end bool,omitempty
response.failure_policy string,omitempty
`

// protocolV1Schema is the protocol before versions, as the hooks and
// agents of that time decode it (refusing any other field). It never
// changes: TestResponseAsVersion1 checks that an answer in version 1 has
// nothing else.
const protocolV1Schema = `
request.op string
request.register object,omitempty
request.register.container_id string
request.register.runtime string,omitempty
request.register.bundle string,omitempty
request.register.pid int
request.register.annotations map[string]string,omitempty
request.register.identity object
request.register.identity.cgroup_id uint64
request.register.identity.cgroup_path string
request.register.identity.namespaces object
request.register.identity.namespaces.mnt uint64
request.register.identity.namespaces.pid uint64
request.register.identity.namespaces.net uint64
request.register.identity.namespaces.uts uint64
request.register.identity.namespaces.ipc uint64
request.register.identity.namespaces.cgroup uint64
request.register.identity.namespaces.user uint64
request.register.identity.namespaces.time uint64
request.unregister object,omitempty
request.unregister.container_id string
request.subscribe object,omitempty
request.subscribe.follow bool,omitempty
request.subscribe.tail int
request.subscribe.container string,omitempty
request.subscribe.types []string,omitempty
request.subscribe.policies []string,omitempty
request.status object,omitempty
request.status.summary bool,omitempty
response.ok bool
response.error string,omitempty
response.workload object,omitempty
response.workload.container_id string
response.workload.runtime string,omitempty
response.workload.bundle string,omitempty
response.workload.pid int,omitempty
response.workload.annotations map[string]string,omitempty
response.workload.image string,omitempty
response.workload.image_source string,omitempty
response.workload.name string,omitempty
response.workload.pod string,omitempty
response.workload.pod_namespace string,omitempty
response.workload.adopted bool,omitempty
response.workload.cgroup_id uint64
response.workload.cgroup_path string
response.workload.namespaces object
response.workload.namespaces.mnt uint64
response.workload.namespaces.pid uint64
response.workload.namespaces.net uint64
response.workload.namespaces.uts uint64
response.workload.namespaces.ipc uint64
response.workload.namespaces.cgroup uint64
response.workload.namespaces.user uint64
response.workload.namespaces.time uint64
response.workload.profile string
response.workload.profile_reason string,omitempty
response.workload.mode string
response.workload.registered_at time.Time
response.status object,omitempty
response.status.node string
response.status.started_at time.Time
response.status.backends []object
response.status.backends.point string
response.status.backends.backend string
response.status.backends.mechanism string
response.status.backends.skipped []string,omitempty
response.status.backends.error string,omitempty
response.status.profiles []string
response.status.workloads []object
response.status.workloads.container_id string
response.status.workloads.runtime string,omitempty
response.status.workloads.bundle string,omitempty
response.status.workloads.pid int,omitempty
response.status.workloads.annotations map[string]string,omitempty
response.status.workloads.image string,omitempty
response.status.workloads.image_source string,omitempty
response.status.workloads.name string,omitempty
response.status.workloads.pod string,omitempty
response.status.workloads.pod_namespace string,omitempty
response.status.workloads.adopted bool,omitempty
response.status.workloads.cgroup_id uint64
response.status.workloads.cgroup_path string
response.status.workloads.namespaces object
response.status.workloads.namespaces.mnt uint64
response.status.workloads.namespaces.pid uint64
response.status.workloads.namespaces.net uint64
response.status.workloads.namespaces.uts uint64
response.status.workloads.namespaces.ipc uint64
response.status.workloads.namespaces.cgroup uint64
response.status.workloads.namespaces.user uint64
response.status.workloads.namespaces.time uint64
response.status.workloads.profile string
response.status.workloads.profile_reason string,omitempty
response.status.workloads.mode string
response.status.workloads.registered_at time.Time
response.status.workloads_omitted int,omitempty
response.status.counters map[string]uint64
response.status.subscribers []object,omitempty
response.status.subscribers.id uint64
response.status.subscribers.filter string
response.status.subscribers.since time.Time
response.status.subscribers.queued int
response.status.subscribers.sent uint64
response.status.subscribers.dropped uint64
response.events object,omitempty
response.events.events []json.RawMessage,omitempty
response.events.dropped uint64
response.events.live bool,omitempty
response.events.end bool,omitempty
response.failure_policy string,omitempty
`
