package events

import (
	"slices"
	"strconv"
	"time"
)

// Encoder encodes events as AppendJSON does, byte for byte, remembering
// what repeats from one event to the next: the ocigate object (the same
// for every event of one selector in one workload, unless the event
// tells more) and the event time's date and second. The agent encodes
// hundreds of thousands of events a second with one; that is most of
// what encoding cost once the processes were frozen (Process.Freeze).
// The zero Encoder is ready; it is not safe for concurrent use.
type Encoder struct {
	og       Ocigate // the ocigate object ogJSON encodes (StdioSockets its own copy)
	ogSel    int     // *og.Selector
	ogJSON   []byte
	sec      int64  // the Unix second secText formats
	secText  []byte // "2006-01-02T15:04:05" of sec (UTC)
	ogSet    bool
	secValid bool
}

// AppendJSON appends e's JSON encoding to b, as e.AppendJSON does.
func (c *Encoder) AppendJSON(b []byte, e *Event) ([]byte, error) {
	if !e.timesValid() {
		return b, ErrTimeRange
	}
	return e.appendJSON(b, c), nil
}

// appendOcigate appends o's encoding, the last one's bytes when o is
// the same as the last.
func (c *Encoder) appendOcigate(b []byte, o *Ocigate) []byte {
	if c.ogSet && o.same(&c.og, c.ogSel) {
		return append(b, c.ogJSON...)
	}
	start := len(b)
	b = o.appendJSON(b)
	c.og = *o
	c.og.StdioSockets = slices.Clone(o.StdioSockets)
	if o.Selector != nil {
		c.ogSel = *o.Selector
		c.og.Selector = &c.ogSel
	}
	c.ogJSON = append(c.ogJSON[:0], b[start:]...)
	c.ogSet = true
	return b
}

// same reports whether o encodes as p, whose selector is sel: every
// field is compared (TestEncoderOcigateFields).
func (o *Ocigate) same(p *Ocigate, sel int) bool {
	if (o.Selector == nil) != (p.Selector == nil) || o.Selector != nil && *o.Selector != sel {
		return false
	}
	return o.ContainerID == p.ContainerID && o.Runtime == p.Runtime && o.Adopted == p.Adopted &&
		o.Profile == p.Profile && o.Mode == p.Mode && o.Point == p.Point && o.Enforced == p.Enforced &&
		o.Verdict == p.Verdict && o.Errno == p.Errno && o.Backend == p.Backend && o.Mechanism == p.Mechanism &&
		o.CgroupID == p.CgroupID && o.ParentOutside == p.ParentOutside && o.CallerPid == p.CallerPid &&
		o.Relay == p.Relay && o.PeerPid == p.PeerPid && slices.Equal(o.StdioSockets, p.StdioSockets) &&
		o.Predicate == p.Predicate && o.Evidence == p.Evidence && o.Note == p.Note
}

// appendTime appends t as appendTime does; a UTC time reuses the date
// and second of the last one when they are the same.
func (c *Encoder) appendTime(b []byte, t time.Time) []byte {
	if c == nil || t.Location() != time.UTC {
		return appendTime(b, t)
	}
	if sec := t.Unix(); !c.secValid || sec != c.sec {
		c.secText = t.AppendFormat(c.secText[:0], "2006-01-02T15:04:05")
		c.sec, c.secValid = sec, true
	}
	b = append(b, '"')
	b = append(b, c.secText...)
	if ns := t.Nanosecond(); ns != 0 {
		// RFC 3339 with nanoseconds: up to nine digits, no trailing zeros.
		digits := 9
		for ns%10 == 0 {
			ns /= 10
			digits--
		}
		b = append(b, '.')
		for n := uint64(ns); n < pow10[digits-1]; n *= 10 {
			b = append(b, '0')
		}
		b = strconv.AppendUint(b, uint64(ns), 10)
	}
	return append(b, 'Z', '"')
}

var pow10 = [9]uint64{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}
