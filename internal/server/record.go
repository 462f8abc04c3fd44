package detect

import (
	"encoding/json"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
)

// Record converts a detection into the journal's outbox record. Webhook
// intake and the probe scheduler both journal detections this way, so the
// engine treats them alike.
func (d Detection) Record(receiver string, received time.Time) store.Alert {
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
