package server

import (
	"encoding/json"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// AlertRecord converts a detection into the journal's outbox record.
// Webhook intake (here) and the probe scheduler (wired in internal/app)
// both journal detections this way, so the engine treats them alike; the
// conversion lives beside the intake so that detect does not depend on
// the journal.
func AlertRecord(d detect.Detection, receiver string, received time.Time) store.Alert {
	a := store.Alert{
		Source:       string(d.Source),
		Fingerprint:  d.Fingerprint,
		Status:       string(d.Status),
		StartsAt:     d.StartsAt,
		EndsAt:       d.EndsAt,
		Labels:       d.Labels,
		Annotations:  d.Annotations,
		GeneratorURL: d.GeneratorURL,
		ReceivedAt:   received,
		Receiver:     receiver,
	}
	if d.Evidence != nil {
		a.Evidence, _ = json.Marshal(d.Evidence)
	}
	return a
}
