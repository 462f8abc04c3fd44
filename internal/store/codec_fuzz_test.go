package store

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// FuzzDecodeAlert feeds arbitrary outbox payloads to the alert decoder:
// it never panics, and what it accepts in drguard's binary encoding is
// encoded back to an alert that decodes the same.
func FuzzDecodeAlert(f *testing.F) {
	at := time.Date(2026, 11, 25, 3, 4, 5, 6, time.UTC)
	f.Add(appendAlert(nil, &Alert{Source: "alertmanager", Fingerprint: "f", Status: "firing", StartsAt: at,
		Labels: map[string]string{"alertname": "X"}, Annotations: map[string]string{"summary": "é"}, Evidence: []byte(`{}`), ReceivedAt: at}))
	f.Add([]byte(`{"seq":1,"labels":{"a":"b"}}`))
	f.Add([]byte{alertCodecV1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, err := decodeAlert(raw)
		if err != nil || len(raw) == 0 || raw[0] != alertCodecV1 {
			return
		}
		again, err := decodeAlert(appendAlert(nil, &a))
		if err != nil {
			t.Fatalf("re-encoded alert does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, a) {
			t.Fatalf("round trip changed the alert:\n got %+v\nwant %+v", again, a)
		}
	})
}

// FuzzParseRecord feeds arbitrary bytes to the outbox log's record
// parser: it never panics, and a record it accepts is exactly the record
// appendRecord writes for that payload.
func FuzzParseRecord(f *testing.F) {
	f.Add(appendRecord(nil, 7, []byte("payload")), uint64(7))
	f.Add(appendRecord(nil, 1, nil), uint64(1))
	f.Add([]byte{0, 0, 0, 1}, uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, seq uint64) {
		payload, err := parseRecord(b, seq)
		if err != nil {
			return
		}
		if want := appendRecord(nil, seq, payload); !bytes.Equal(want, b[:len(want)]) {
			t.Fatalf("accepted record differs from the one written for its payload")
		}
	})
}
