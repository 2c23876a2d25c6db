package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ocigate/ocigate/internal/api/wire"
)

// MaxMessageSize bounds every message in both directions.
const MaxMessageSize = wire.MaxMessageSize

// WriteMessage writes v as a 4-byte big-endian length and JSON
// (wire.WriteFrame).
func WriteMessage(w io.Writer, v any) error {
	body, err := encode(v)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	return wire.WriteFrame(w, body)
}

// encode is v's JSON: a registration or unregistration by hand
// (wire.Request.AppendJSON, the same bytes), the rest by encoding/json.
func encode(v any) ([]byte, error) {
	if r, ok := v.(*Request); ok {
		if w, ok := r.wire(); ok {
			return w.AppendJSON(nil), nil
		}
	}
	return json.Marshal(v)
}

// wire returns r as the hook's request, when it is one: nothing set
// beyond a registration or an unregistration.
func (r *Request) wire() (*wire.Request, bool) {
	if r.Subscribe != nil || r.Status != nil || r.Pods != nil {
		return nil, false
	}
	return &wire.Request{Protocol: r.Protocol, Op: r.Op, Register: r.Register, Unregister: r.Unregister}, true
}

// ReadMessage reads one framed message into v. Fields v does not know are
// ignored, so that a peer one protocol version newer is understood
// (version.go); trailing data and oversize frames are errors.
func ReadMessage(r io.Reader, v any) error {
	body, err := wire.ReadFrame(r)
	if err != nil {
		return err
	}
	return decodeBody(body, v)
}

// decodeBody decodes a frame's body into v: one JSON object, fields v
// does not know ignored, nothing after it.
func decodeBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	if rest := bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return fmt.Errorf("decode message: %d bytes of trailing data after the JSON object", len(rest))
	}
	return nil
}
