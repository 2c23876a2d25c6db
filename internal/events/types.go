package events

// Event types, named by the event's top-level key as in Tetragon.
const (
	TypeKprobe     = "process_kprobe"
	TypeLsm        = "process_lsm"
	TypeTracepoint = "process_tracepoint"
	TypeExec       = "process_exec"
	TypeExit       = "process_exit"
	TypeClaim      = "ocigate_claim"
)

// Types are the event types: decisions are process_kprobe events (of a
// policy's lsmhooks, process_lsm; of its tracepoints,
// process_tracepoint); every program a workload process starts is a
// process_exec, and its end a process_exit (unless its profile turns
// process events off); a container's claim to weaker protection that
// ocigate refused or ignored is an ocigate_claim.
var Types = []string{TypeKprobe, TypeLsm, TypeTracepoint, TypeExec, TypeExit, TypeClaim}

// KnownType reports whether t is one of Types.
func KnownType(t string) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// Type is the event's type: the name of its top-level key.
func (e *Event) Type() string {
	switch {
	case e.ProcessKprobe != nil:
		return TypeKprobe
	case e.ProcessLsm != nil:
		return TypeLsm
	case e.ProcessTracepoint != nil:
		return TypeTracepoint
	case e.ProcessExec != nil:
		return TypeExec
	case e.ProcessExit != nil:
		return TypeExit
	case e.OcigateClaim != nil:
		return TypeClaim
	}
	return ""
}

// Hook is the event's decision: its process_kprobe, process_lsm or
// process_tracepoint; nil for process events.
func (e *Event) Hook() *Kprobe {
	switch {
	case e.ProcessKprobe != nil:
		return e.ProcessKprobe
	case e.ProcessLsm != nil:
		return e.ProcessLsm
	}
	return e.ProcessTracepoint
}

// SetHook makes k the event's decision, of the type hook says: "lsmhook"
// a process_lsm, "tracepoint" a process_tracepoint, else a
// process_kprobe.
func (e *Event) SetHook(hook string, k *Kprobe) {
	switch hook {
	case "lsmhook":
		e.ProcessLsm = k
	case "tracepoint":
		e.ProcessTracepoint = k
	default:
		e.ProcessKprobe = k
	}
}

// Policy is the name of the policy that reported the event, "" if none.
func (e *Event) Policy() string {
	if k := e.Hook(); k != nil {
		return k.PolicyName
	}
	return ""
}

// ContainerID is the ID of the event's container, "" if unknown.
func (e *Event) ContainerID() string {
	if e.Ocigate != nil && e.Ocigate.ContainerID != "" {
		return e.Ocigate.ContainerID
	}
	if p := e.Process(); p != nil && p.Pod != nil {
		return p.Pod.Container.ID
	}
	if e.OcigateClaim != nil && e.OcigateClaim.Pod != nil {
		return e.OcigateClaim.Pod.Container.ID
	}
	return ""
}

// Process is the event's process, nil when it has none.
func (e *Event) Process() *Process {
	if k := e.Hook(); k != nil {
		return &k.Process
	}
	switch {
	case e.ProcessExec != nil:
		return &e.ProcessExec.Process
	case e.ProcessExit != nil:
		return &e.ProcessExit.Process
	}
	return nil
}

// Parent is the event's parent process, nil when it has none.
func (e *Event) Parent() *Process {
	if k := e.Hook(); k != nil {
		return k.Parent
	}
	switch {
	case e.ProcessExec != nil:
		return e.ProcessExec.Parent
	case e.ProcessExit != nil:
		return e.ProcessExit.Parent
	}
	return nil
}
