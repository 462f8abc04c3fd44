package server

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/detect/alertmanager"
	"github.com/fruitfulplanet/drguard/internal/store"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// handleAlerts takes an Alertmanager webhook. It answers 200 only after
// every alert in it is durably in the journal's outbox; 503 tells
// Alertmanager to retry when the journal cannot commit.
func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) {
	count := s.o.Intake.AlertsReceived
	if !s.admit(w, r) {
		return
	}
	if !s.o.Auth.Webhook(r) {
		s.authFailed(r, "the webhook")
		count.WithLabelValues("unauthorized").Inc()
		w.Header().Set("WWW-Authenticate", `Bearer realm="drguard"`)
		writeError(w, http.StatusUnauthorized, "missing or invalid webhook credentials")
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			count.WithLabelValues("too_large").Inc()
			writeError(w, http.StatusRequestEntityTooLarge, "webhook body exceeds the limit")
			return
		}
		count.WithLabelValues("malformed").Inc()
		writeError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	msg, ds, err := alertmanager.Decode(bytes.NewReader(buf.Bytes()))
	if err != nil {
		count.WithLabelValues("malformed").Inc()
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	now := time.Now().UTC()
	alerts := make([]store.Alert, len(ds))
	for i, d := range ds {
		alerts[i] = AlertRecord(d, msg.Receiver, now)
	}
	if err := s.o.Store.EnqueueAlerts(r.Context(), alerts); err != nil {
		count.WithLabelValues("unavailable").Inc()
		s.o.Logger.Error("cannot journal webhook; asking Alertmanager to retry", "err", err, "alerts", len(alerts))
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "journal unavailable; retry")
		return
	}
	s.o.Engine.Wake()
	firing := 0
	for _, d := range ds {
		if d.Status == detect.StatusFiring {
			firing++
		}
	}
	count.WithLabelValues(string(detect.StatusFiring)).Add(float64(firing))
	count.WithLabelValues(string(detect.StatusResolved)).Add(float64(len(ds) - firing))
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"status":"success"}`+"\n")
}
