package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// fuzzKey is fixed key material, so that the seed corpus may hold a
// stream encrypted with it.
var fuzzKey = bytes.Repeat([]byte{0x5a}, 32)

// FuzzManifest feeds arbitrary objects to the manifest decoder, as
// readRecord decodes a manifest found in object storage: it never panics,
// and a decoded manifest's recovery point is its heartbeat or its start.
func FuzzManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"id":"20260102T150405Z-1a2b","backup":"b","target":"db","start":"2026-01-02T15:04:05Z","end":"2026-01-02T15:05:05Z","sizes":{"raw":1,"compressed":1,"stored":1},"sha256":"00","heartbeat":"2026-01-02T15:04:00Z"}`))
	f.Add([]byte(`{"format":1,"heartbeat":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var m Manifest
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		rp := m.RecoveryPoint()
		if m.Heartbeat != nil && !m.Heartbeat.IsZero() && !rp.Equal(*m.Heartbeat) || (m.Heartbeat == nil || m.Heartbeat.IsZero()) && !rp.Equal(m.Start) {
			t.Fatalf("recovery point %v of a manifest with heartbeat %v and start %v", rp, m.Heartbeat, m.Start)
		}
		c := catalog{Manifests: []Manifest{m}}
		if got, ok := c.find(m.ID); !ok || got.ID != m.ID {
			t.Fatalf("catalog does not find manifest %q", m.ID)
		}
	})
}

// FuzzDecryptStream feeds arbitrary objects to the restore's reader of a
// backup stream (encryption header, segments, zstd frames): it never
// panics, and it refuses everything but an authentic stream with an
// integrity error, which restore reports as a corrupt backup.
func FuzzDecryptStream(f *testing.F) {
	key, err := newKey(fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	aad := associatedData("b", "20260102T150405Z-1a2b")
	var enc bytes.Buffer
	w, err := key.encrypt(&enc, aad)
	if err != nil {
		f.Fatal(err)
	}
	zw, _ := zstd.NewWriter(w)
	_, _ = zw.Write([]byte("-- PostgreSQL database dump\n"))
	_ = zw.Close()
	_ = w.Close()
	f.Add(enc.Bytes())
	f.Add(enc.Bytes()[:40])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, stream []byte) {
		err := decryptTo(discardAt{}, bytes.NewReader(stream), key, aad)
		var ir *integrityReason
		if err != nil && !errors.As(err, &ir) {
			t.Fatalf("refusal is not an integrity error: %v", err)
		}
	})
}
