package enforcer

import "github.com/ocigate/ocigate/bpf/record"

// NewEventReader opens the ring buffer of the kernel's records.
func (e *Enforcer) NewEventReader() (*record.Reader, error) {
	return record.NewReader(e.maps.Events)
}
