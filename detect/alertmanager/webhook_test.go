package alertmanager

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
)

const validBody = `{
  "receiver": "drguard", "status": "firing", "version": "4", "groupKey": "{}:{alertname=\"PostgresDown\"}",
  "truncatedAlerts": 0, "externalURL": "http://am:9093",
  "groupLabels": {"alertname": "PostgresDown"}, "commonLabels": {}, "commonAnnotations": {},
  "alerts": [
    {"status": "firing", "labels": {"alertname": "PostgresDown", "target": "pg-0"},
     "annotations": {"summary": "primary down"}, "startsAt": "2026-11-25T10:00:00Z",
     "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "abc123"},
    {"status": "resolved", "labels": {"alertname": "RedisDown"},
     "startsAt": "2026-11-25T09:00:00+01:00", "endsAt": "2026-11-25T09:30:00+01:00"}
  ]
}`

func TestDecodeValid(t *testing.T) {
	msg, ds, err := Decode(strings.NewReader(validBody))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Receiver != "drguard" || msg.GroupKey == "" {
		t.Errorf("message fields lost: %+v", msg)
	}
	if len(ds) != 2 {
		t.Fatalf("got %d detections, want 2", len(ds))
	}
	d := ds[0]
	if d.Source != detect.SourceAlertmanager || d.Status != detect.StatusFiring || d.Fingerprint != "abc123" ||
		d.Labels["target"] != "pg-0" || d.Summary() != "primary down" {
		t.Errorf("first detection wrong: %+v", d)
	}
	if want := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC); !ds[1].StartsAt.Equal(want) || ds[1].StartsAt.Location() != time.UTC {
		t.Errorf("startsAt not normalised to UTC: %v", ds[1].StartsAt)
	}
	if ds[1].Fingerprint == "" {
		t.Error("missing fingerprint was not computed from labels")
	}
	if ds[0].Key() == ds[1].Key() {
		t.Error("different alerts share a key")
	}
}

func TestDecodeRejects(t *testing.T) {
	alert := `{"status":"firing","labels":{"a":"b"},"startsAt":"2026-11-25T10:00:00Z"}`
	cases := []struct{ name, body, want string }{
		{"not JSON", `{"version":`, "invalid JSON"},
		{"array", `[]`, "invalid JSON"},
		{"wrong version", `{"version":"3","alerts":[` + alert + `]}`, `unsupported version "3"`},
		{"missing version", `{"alerts":[` + alert + `]}`, `unsupported version ""`},
		{"no alerts", `{"version":"4","alerts":[]}`, "no alerts"},
		{"bad status", `{"version":"4","alerts":[{"status":"pending","labels":{"a":"b"},"startsAt":"2026-11-25T10:00:00Z"}]}`, "neither firing nor resolved"},
		{"no labels", `{"version":"4","alerts":[{"status":"firing","startsAt":"2026-11-25T10:00:00Z"}]}`, "no labels"},
		{"no startsAt", `{"version":"4","alerts":[{"status":"firing","labels":{"a":"b"}}]}`, "no startsAt"},
		{"trailing data", `{"version":"4","alerts":[` + alert + `]} {}`, "trailing data"},
		{"bad time", `{"version":"4","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"yesterday"}]}`, "invalid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Decode(strings.NewReader(c.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}
