package alertmanager

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fruitfulplanet/drguard/detect"
)

// FuzzDecode feeds arbitrary bodies to the webhook decoder: it never
// panics, every refusal wraps ErrMalformed (so intake answers 400), and
// every accepted alert is one drguard can act on.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":"4","status":"firing","receiver":"drguard","alerts":[{"status":"firing","labels":{"alertname":"X"},"startsAt":"2026-01-02T03:04:05Z"}]}`))
	f.Add([]byte(`{"version":"4","alerts":[]}`))
	f.Add([]byte(`{"version":"4"} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		msg, ds, err := Decode(bytes.NewReader(body))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if msg == nil || len(ds) == 0 || len(ds) != len(msg.Alerts) {
			t.Fatalf("accepted a webhook with %d detections for %d alerts", len(ds), len(msg.Alerts))
		}
		for i, d := range ds {
			if d.Status != detect.StatusFiring && d.Status != detect.StatusResolved {
				t.Fatalf("alert %d: status %q accepted", i, d.Status)
			}
			if len(d.Labels) == 0 || d.Fingerprint == "" || d.StartsAt.IsZero() {
				t.Fatalf("alert %d accepted without labels, fingerprint or startsAt: %+v", i, d)
			}
		}
	})
}
