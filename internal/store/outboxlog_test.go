package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// boltOf returns an embedded journal's backend.
func boltOf(s *Store) *boltBackend { return s.b.(*boltBackend) }

// segmentFiles lists the outbox's segment files by name.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, OutboxDirName, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	return names
}

// enqueue appends one single-alert webhook per fingerprint.
func enqueue(t *testing.T, s *Store, fps ...string) {
	t.Helper()
	for _, fp := range fps {
		if err := s.EnqueueAlerts(context.Background(), []Alert{{Fingerprint: fp, Status: "firing"}}); err != nil {
			t.Fatal(err)
		}
	}
}

// pendingFingerprints lists the unacknowledged alerts as "seq:fingerprint".
func pendingFingerprints(t *testing.T, s *Store) []string {
	t.Helper()
	pending, err := s.PendingAlerts(0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range pending {
		out = append(out, fmt.Sprintf("%s@%02d", a.Fingerprint, a.Seq))
	}
	return out
}

// ackAll opens the journal in dir, acknowledges every pending alert and
// closes it again.
func ackAll(t *testing.T, dir string) {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pending, _ := s.PendingAlerts(0)
	if err := s.Update(func(tx *Tx) error { return tx.AckAlert(pending[len(pending)-1].Seq) }); err != nil {
		t.Fatal(err)
	}
}

// TestOutboxRecovery checks what an outbox holds after what a crash or an
// operator can leave behind.
func TestOutboxRecovery(t *testing.T) {
	cases := []struct {
		name    string
		prepare func(t *testing.T, dir string) // after a, b, c were enqueued (one segment each)
		then    []string                       // enqueued after reopening
		want    []string                       // pending, as fingerprint@seq
		wantErr string
	}{
		{
			name:    "a clean reopen keeps everything",
			prepare: func(*testing.T, string) {},
			then:    []string{"d"},
			want:    []string{"a@01", "b@02", "c@03", "d@04"},
		},
		{
			name: "a torn write at the end is cut off",
			prepare: func(t *testing.T, dir string) {
				names := segmentFiles(t, dir)
				appendTo(t, filepath.Join(dir, OutboxDirName, names[len(names)-1]), []byte{0, 0, 1, 0, 9, 9})
			},
			then: []string{"d"},
			want: []string{"a@01", "b@02", "c@03", "d@04"},
		},
		{
			name: "a damaged record before the end refuses to open",
			prepare: func(t *testing.T, dir string) {
				path := filepath.Join(dir, OutboxDirName, segmentFiles(t, dir)[1])
				raw, _ := os.ReadFile(path)
				raw[len(raw)-1] ^= 1
				if err := os.WriteFile(path, raw, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "is corrupt at offset 0: checksum mismatch",
		},
		{
			name: "a lost outbox numbers new alerts after the watermark",
			prepare: func(t *testing.T, dir string) {
				ackAll(t, dir)
				if err := os.RemoveAll(filepath.Join(dir, OutboxDirName)); err != nil {
					t.Fatal(err)
				}
			},
			then: []string{"d"},
			want: []string{"d@04"},
		},
		{
			name: "a fully acknowledged outbox numbers on",
			prepare: func(t *testing.T, dir string) {
				ackAll(t, dir)
			},
			then: []string{"d"},
			want: []string{"d@04"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			boltOf(s).outbox.segmentSize = 1
			enqueue(t, s, "a", "b", "c")
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, dir)
			s, err = Open(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("open: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			enqueue(t, s, tc.then...)
			if got := pendingFingerprints(t, s); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("pending %v, want %v", got, tc.want)
			}
		})
	}
}

func appendTo(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAlertCodec checks that every field survives the outbox encoding and
// that a damaged payload is an error, never a panic or a wrong alert.
func TestAlertCodec(t *testing.T) {
	at := time.Date(2026, 11, 25, 3, 4, 5, 6, time.UTC)
	cases := map[string]Alert{
		"every field": {Source: "alertmanager", Fingerprint: "f", Status: "firing", StartsAt: at, EndsAt: at.Add(time.Hour),
			Labels: map[string]string{"alertname": "X", "target": "$(id); touch /tmp/pwned"}, Annotations: map[string]string{"summary": "é"},
			GeneratorURL: "http://p/graph", Evidence: []byte(`{"ok":false}`), ReceivedAt: at, Receiver: "drguard"},
		"zero times and no maps": {Fingerprint: "g", Status: "resolved"},
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			raw := appendAlert(nil, &a)
			got, err := decodeAlert(raw)
			if err != nil || !reflect.DeepEqual(got, a) {
				t.Fatalf("round trip: %+v, %v; want %+v", got, err, a)
			}
			for n := range len(raw) {
				if _, err := decodeAlert(raw[:n]); err == nil {
					t.Fatalf("a payload cut to %d of %d bytes decoded", n, len(raw))
				}
			}
		})
	}
}

// TestOutboxTornAtEveryByte cuts the last segment at every length a crash
// could leave and checks that the log reopens holding exactly the records
// written in full, numbering new ones after them.
func TestOutboxTornAtEveryByte(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, s, "a", "b")
	if err := s.EnqueueAlerts(context.Background(), []Alert{{Fingerprint: "c"}, {Fingerprint: "d"}}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	seg := filepath.Join(dir, OutboxDirName, segmentFiles(t, dir)[0])
	full, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	// Where each record ends.
	var ends []int
	for off := 0; off < len(full); {
		off += recordHeader + int(binary.BigEndian.Uint32(full[off:]))
		ends = append(ends, off)
	}
	fps := []string{"a", "b", "c", "d"}
	for n := range len(full) + 1 {
		if err := os.WriteFile(seg, full[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("cut at %d: %v", n, err)
		}
		whole := 0
		for whole < len(ends) && ends[whole] <= n {
			whole++
		}
		var want []string
		for i := range whole {
			want = append(want, fmt.Sprintf("%s@%02d", fps[i], i+1))
		}
		want = append(want, fmt.Sprintf("z@%02d", whole+1))
		enqueue(t, s, "z")
		if got := pendingFingerprints(t, s); !reflect.DeepEqual(got, want) {
			t.Fatalf("cut at %d of %d: pending %v, want %v", n, len(full), got, want)
		}
		_ = s.Close()
	}
}

// TestOutboxFailedWriteIsNotKept checks that a group whose write fails is
// refused to its callers and absent after a restart, and that a log that
// cannot undo a failed write refuses every later one.
func TestOutboxFailedWriteIsNotKept(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, s, "a")
	_ = boltOf(s).outbox.w.Close() // the disk goes away
	for _, fp := range []string{"b", "c"} {
		if err := s.EnqueueAlerts(context.Background(), []Alert{{Fingerprint: fp}}); err == nil {
			t.Fatalf("enqueue %s after the disk went away: no error", fp)
		}
	}
	if err := s.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "could not be undone") {
		t.Fatalf("ping of a broken log: %v", err)
	}
	_ = s.Close()
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, want := pendingFingerprints(t, s), []string{"a@01"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("pending after restart %v, want %v", got, want)
	}
}
