package wire

import (
	"errors"
	"io"
	"strconv"

	"github.com/ocigate/ocigate/internal/errwrap"
)

// MaxMessageSize bounds every message in both directions.
const MaxMessageSize = 1 << 20

// WriteFrame writes body, one message's JSON, as a frame: a 4-byte
// big-endian length and the body, in one write.
func WriteFrame(w io.Writer, body []byte) error {
	if len(body) > MaxMessageSize {
		return errors.New("encode message: " + strconv.Itoa(len(body)) + " bytes exceeds the " +
			strconv.Itoa(MaxMessageSize) + " byte limit")
	}
	buf := make([]byte, 4+len(body))
	n := uint32(len(body))
	buf[0], buf[1], buf[2], buf[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	copy(buf[4:], body)
	if _, err := w.Write(buf); err != nil {
		return errwrap.Wrap("write message", err)
	}
	return nil
}

// ReadFrame reads one frame and returns its body: its length is
// checked (not empty, at most MaxMessageSize) before the body is read.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errwrap.Wrap("read message header: truncated", err)
		}
		return nil, errwrap.Wrap("read message header", err)
	}
	n := uint32(hdr[0])<<24 | uint32(hdr[1])<<16 | uint32(hdr[2])<<8 | uint32(hdr[3])
	if n == 0 {
		return nil, errors.New("read message: empty body")
	}
	if n > MaxMessageSize {
		return nil, errors.New("read message: " + strconv.FormatUint(uint64(n), 10) + " bytes exceeds the " +
			strconv.Itoa(MaxMessageSize) + " byte limit")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, errwrap.Wrap("read message body ("+strconv.FormatUint(uint64(n), 10)+" bytes)", err)
	}
	return body, nil
}
