package events

// Event types, named by the event's top-level key as in Tetragon.
const (
	TypeKprobe = "process_kprobe"
	TypeExec   = "process_exec"
	TypeExit   = "process_exit"
	TypeClaim  = "ocigate_claim"
)

// Types are the event types: decisions are process_kprobe events; every
// program a workload process starts is a process_exec, and its end a
// process_exit (unless its profile turns process events off); a
// container's claim to weaker protection that ocigate refused or ignored
// is an ocigate_claim.
var Types = []string{TypeKprobe, TypeExec, TypeExit, TypeClaim}

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
	case e.ProcessExec != nil:
		return TypeExec
	case e.ProcessExit != nil:
		return TypeExit
	case e.OcigateClaim != nil:
		return TypeClaim
	}
	return ""
}

// Policy is the name of the policy that reported the event, "" if none.
func (e *Event) Policy() string {
	if e.ProcessKprobe != nil {
		return e.ProcessKprobe.PolicyName
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
	switch {
	case e.ProcessKprobe != nil:
		return &e.ProcessKprobe.Process
	case e.ProcessExec != nil:
		return &e.ProcessExec.Process
	case e.ProcessExit != nil:
		return &e.ProcessExit.Process
	}
	return nil
}

// Parent is the event's parent process, nil when it has none.
func (e *Event) Parent() *Process {
	switch {
	case e.ProcessKprobe != nil:
		return e.ProcessKprobe.Parent
	case e.ProcessExec != nil:
		return e.ProcessExec.Parent
	case e.ProcessExit != nil:
		return e.ProcessExit.Parent
	}
	return nil
}
