package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxMessageSize bounds every message in both directions.
const MaxMessageSize = 1 << 20

// WriteMessage writes v as a 4-byte big-endian length and JSON.
func WriteMessage(w io.Writer, v any) error {
	body, err := encode(v)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	if len(body) > MaxMessageSize {
		return fmt.Errorf("encode message: %d bytes exceeds the %d byte limit", len(body), MaxMessageSize)
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write message: %w", err)
	}
	return nil
}

// encode is v's JSON: a registration or unregistration by hand
// (Request.appendJSON, the same bytes), the rest by encoding/json.
func encode(v any) ([]byte, error) {
	if r, ok := v.(*Request); ok {
		if b, ok := r.appendJSON(nil); ok {
			return b, nil
		}
	}
	return json.Marshal(v)
}

// ReadMessage reads one framed message into v. Fields v does not know are
// ignored, so that a peer one protocol version newer is understood
// (version.go); trailing data and oversize frames are errors.
func ReadMessage(r io.Reader, v any) error {
	body, err := readFrameBody(r)
	if err != nil {
		return err
	}
	return decodeBody(body, v)
}

// readFrameBody reads one frame's body: its length, checked, then the
// bytes.
func readFrameBody(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("read message header: truncated: %w", err)
		}
		return nil, fmt.Errorf("read message header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, fmt.Errorf("read message: empty body")
	}
	if n > MaxMessageSize {
		return nil, fmt.Errorf("read message: %d bytes exceeds the %d byte limit", n, MaxMessageSize)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("read message body (%d bytes): %w", n, err)
	}
	return body, nil
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
