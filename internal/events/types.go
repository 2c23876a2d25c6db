package events

// Event types, named by the event's top-level key as in Tetragon.
const (
	TypeKprobe = "process_kprobe"
	TypeExec   = "process_exec"
	TypeExit   = "process_exit"
)

// Types are the event types a filter may name. ocigate reports its
// decisions as process_kprobe; process_exec and process_exit are
// accepted for Tetragon-shaped filters and match the events of those
// types once they are reported.
var Types = []string{TypeKprobe, TypeExec, TypeExit}

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
	if e.ProcessKprobe != nil {
		return TypeKprobe
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
	if p := e.process(); p != nil && p.Pod != nil {
		return p.Pod.Container.ID
	}
	return ""
}

// process is the event's process, nil when it has none.
func (e *Event) process() *Process {
	if e.ProcessKprobe != nil {
		return &e.ProcessKprobe.Process
	}
	return nil
}
