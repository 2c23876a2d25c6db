package containerd

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The few containerd API messages used here, encoded and decoded by hand
// with protowire: field numbers are containerd's api/ protos (stable
// across 1.6, 1.7 and 2.x).

// fields calls fn for each field of a message; fn gets the field's raw
// value (bytes for length-delimited fields, the number for varints).
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("malformed message: %w", protowire.ParseError(l))
		}
		b = b[l:]
		var (
			v []byte
			n uint64
		)
		switch typ {
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return fmt.Errorf("malformed field %d: %w", num, protowire.ParseError(l))
		}
		b = b[l:]
		if err := fn(num, typ, v, n); err != nil {
			return err
		}
	}
	return nil
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// task is a containerd.v1.types.Process of Tasks.List.
type task struct {
	ContainerID string // empty in containerd 1.6's Tasks.List
	ID          string // the task's ID: its container's for an init process
	Pid         uint32
	Status      uint64 // 2: running
}

const taskRunning = 2

func decodeTasks(b []byte) ([]task, error) {
	var out []task
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		var t task
		err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
			switch num {
			case 1:
				t.ContainerID = string(v)
			case 2:
				t.ID = string(v)
			case 3:
				t.Pid = uint32(n)
			case 4:
				t.Status = n
			}
			return nil
		})
		out = append(out, t)
		return err
	})
	return out, err
}

func decodeNamespaces(b []byte) ([]string, error) {
	var out []string
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num == 1 {
				out = append(out, string(v))
			}
			return nil
		})
	})
	return out, err
}

// Container is what containerd's metadata says of a container.
type Container struct {
	ID      string
	Image   string
	Runtime string
	Labels  map[string]string
	// Annotations are those of the container's OCI spec (stored as JSON
	// in an Any).
	Annotations map[string]string
}

func decodeGetContainer(b []byte) (Container, error) {
	var c Container
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			switch num {
			case 1:
				c.ID = string(v)
			case 2:
				k, val, err := decodeMapEntry(v)
				if err != nil {
					return err
				}
				if c.Labels == nil {
					c.Labels = map[string]string{}
				}
				c.Labels[k] = val
			case 3:
				c.Image = string(v)
			case 4:
				return fields(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
					if num == 1 {
						c.Runtime = string(v)
					}
					return nil
				})
			case 5:
				return fields(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
					if num != 2 || len(v) == 0 {
						return nil
					}
					var spec struct {
						Annotations map[string]string `json:"annotations"`
					}
					if err := json.Unmarshal(v, &spec); err != nil {
						return fmt.Errorf("container spec: %w", err)
					}
					c.Annotations = spec.Annotations
					return nil
				})
			}
			return nil
		})
	})
	return c, err
}

func decodeMapEntry(b []byte) (k, v string, err error) {
	err = fields(b, func(num protowire.Number, _ protowire.Type, val []byte, _ uint64) error {
		switch num {
		case 1:
			k = string(val)
		case 2:
			v = string(val)
		}
		return nil
	})
	return k, v, err
}

// Event is one containerd event of interest.
type Event struct {
	Namespace   string
	Topic       string
	ContainerID string
	ExecID      string // TaskExit: "" or the init process's ID (= ContainerID) for the container's init
	Pid         uint32
}

// decodeEnvelope decodes an events.v1 Envelope and, for the topics this
// package subscribes to, the container it names.
func decodeEnvelope(b []byte) (Event, error) {
	var (
		ev  Event
		any []byte
	)
	err := fields(b, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 2:
			ev.Namespace = string(v)
		case 3:
			ev.Topic = string(v)
		case 4:
			any = v
		}
		return nil
	})
	if err != nil {
		return ev, err
	}
	var value []byte
	if err := fields(any, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
		if num == 2 {
			value = v
		}
		return nil
	}); err != nil {
		return ev, err
	}
	// TaskExit: container_id 1, id 2, pid 3; TaskDelete: container_id 1,
	// pid 2, id 5; ContainerDelete: id 1.
	err = fields(value, func(num protowire.Number, _ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 1:
			ev.ContainerID = string(v)
		case num == 2 && ev.Topic == TopicTaskExit:
			ev.ExecID = string(v)
		case num == 3 && ev.Topic == TopicTaskExit, num == 2 && ev.Topic == TopicTaskDelete:
			ev.Pid = uint32(n)
		case num == 5 && ev.Topic == TopicTaskDelete:
			ev.ExecID = string(v)
		}
		return nil
	})
	return ev, err
}

// decodeGetImage returns the target digest of an images.v1
// GetImageResponse: image (1) → target (3) → digest (2).
func decodeGetImage(b []byte) (string, error) {
	var digest string
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num != 3 || typ != protowire.BytesType {
				return nil
			}
			return fields(v, func(num protowire.Number, _ protowire.Type, v []byte, _ uint64) error {
				if num == 2 {
					digest = string(v)
				}
				return nil
			})
		})
	})
	return digest, err
}
