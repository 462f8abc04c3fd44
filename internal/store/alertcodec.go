package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// alertCodecV1 marks an outbox payload in the binary encoding below. Older
// outboxes held JSON, which always starts with '{'.
const alertCodecV1 = 1

// appendAlert appends a's binary encoding to buf: a version byte, then
// every field in a fixed order, strings and byte slices as uvarint length
// and bytes, times as a presence byte and Unix nanoseconds, maps as a
// count and key/value pairs in key order, so that equal alerts encode to
// equal bytes). It is several times cheaper than JSON for the records
// intake writes on every webhook.
func appendAlert(buf []byte, a *Alert) []byte {
	buf, _ = appendAlertSplit(buf, a)
	return buf
}

// appendAlertSplit is appendAlert that also returns where the receive
// time's encoding starts in buf: the rest of the record is the alert's
// content, which intake compares with what it already wrote.
func appendAlertSplit(buf []byte, a *Alert) ([]byte, int) {
	buf = append(buf, alertCodecV1)
	for _, s := range [...]string{a.Source, a.Fingerprint, a.Status, a.GeneratorURL, a.Receiver} {
		buf = appendString(buf, s)
	}
	buf = appendTime(appendTime(buf, a.StartsAt), a.EndsAt)
	recv := len(buf)
	buf = appendTime(buf, a.ReceivedAt)
	buf = appendMap(buf, a.Labels)
	buf = appendMap(buf, a.Annotations)
	buf = binary.AppendUvarint(buf, uint64(len(a.Evidence)))
	return append(buf, a.Evidence...), recv
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendTime(buf []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(buf, 0)
	}
	return binary.BigEndian.AppendUint64(append(buf, 1), uint64(t.UnixNano()))
}

func appendMap(buf []byte, m map[string]string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(m)))
	var room [16]string
	keys := room[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		buf = appendString(appendString(buf, k), m[k])
	}
	return buf
}

// errShortAlert reports a payload that ends inside a field.
var errShortAlert = errors.New("truncated alert record")

// decodeAlert reads an outbox payload written by appendAlert, or the JSON
// of an older outbox.
func decodeAlert(raw []byte) (Alert, error) {
	var a Alert
	if len(raw) > 0 && raw[0] == '{' {
		err := json.Unmarshal(raw, &a)
		return a, err
	}
	if len(raw) == 0 || raw[0] != alertCodecV1 {
		return a, fmt.Errorf("unknown alert record encoding")
	}
	d := decoder{buf: raw[1:]}
	for _, s := range [...]*string{&a.Source, &a.Fingerprint, &a.Status, &a.GeneratorURL, &a.Receiver} {
		*s = d.string()
	}
	for _, t := range [...]*time.Time{&a.StartsAt, &a.EndsAt, &a.ReceivedAt} {
		*t = d.time()
	}
	a.Labels = d.stringMap()
	a.Annotations = d.stringMap()
	if ev := d.bytes(); len(ev) > 0 {
		a.Evidence = slices.Clone(ev)
	}
	if d.err == nil && len(d.buf) != 0 {
		d.err = fmt.Errorf("%d bytes after the alert record", len(d.buf))
	}
	return a, d.err
}

// decoder reads appendAlert's fields; the first error sticks.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) bytes() []byte {
	if d.err != nil {
		return nil
	}
	n, w := binary.Uvarint(d.buf)
	if w <= 0 || n > uint64(len(d.buf)-w) {
		d.err = errShortAlert
		return nil
	}
	b := d.buf[w : w+int(n)]
	d.buf = d.buf[w+int(n):]
	return b
}

func (d *decoder) string() string { return string(d.bytes()) }

func (d *decoder) time() time.Time {
	if d.err != nil || len(d.buf) == 0 {
		d.err = errShortAlert
		return time.Time{}
	}
	present := d.buf[0]
	d.buf = d.buf[1:]
	if present == 0 {
		return time.Time{}
	}
	if len(d.buf) < 8 {
		d.err = errShortAlert
		return time.Time{}
	}
	ns := int64(binary.BigEndian.Uint64(d.buf))
	d.buf = d.buf[8:]
	return time.Unix(0, ns).UTC()
}

func (d *decoder) stringMap() map[string]string {
	n, w := binary.Uvarint(d.buf)
	if d.err != nil || w <= 0 || n > uint64(len(d.buf)) {
		if d.err == nil {
			d.err = errShortAlert
		}
		return nil
	}
	d.buf = d.buf[w:]
	if n == 0 {
		return nil
	}
	m := make(map[string]string, n)
	for range n {
		k := d.string()
		m[k] = d.string()
	}
	return m
}
