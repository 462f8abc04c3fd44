package server

import (
	"bytes"
	"errors"
	"hash/maphash"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/fruitfulplanet/drguard/detect"
	"github.com/fruitfulplanet/drguard/detect/alertmanager"
	"github.com/fruitfulplanet/drguard/internal/store"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Alertmanager sends the same groups again and again (every
// group_interval and repeat_interval, and once from each replica of an HA
// pair), byte for byte: a firing alert's endsAt is left out until it
// resolves. Decoding the JSON was the largest part of intake's CPU, so
// the decodings of the most recent bodies are kept, keyed by the whole
// body: decoding is a function of the bytes alone, and a body that
// differs in any byte is decoded afresh. The detections are shared
// between requests and only read.
const (
	maxDecodedWebhooks = 256
	maxDecodedBytes    = 4 << 20
)

// decodedWebhook is what intake needs of a decoded webhook.
type decodedWebhook struct {
	receiver string
	ds       []detect.Detection
}

// webhookCache holds the decodings of recent webhook bodies. A body is
// kept from its second sighting on (seen holds hashes of bodies seen
// once), so that a stream of distinct webhooks costs a hash each.
type webhookCache struct {
	mu    sync.Mutex
	m     map[string]decodedWebhook
	bytes int
	seen  map[uint64]struct{}
}

var webhookSeed = maphash.MakeSeed()

func (c *webhookCache) get(body []byte) (decodedWebhook, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hook, ok := c.m[string(body)]
	return hook, ok
}

// put keeps body's decoding, evicting arbitrary entries when full.
func (c *webhookCache) put(body []byte, hook decodedWebhook) {
	if len(body) > maxDecodedBytes/16 {
		return
	}
	h := maphash.Bytes(webhookSeed, body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m, c.seen = make(map[string]decodedWebhook), make(map[uint64]struct{})
	}
	if _, ok := c.seen[h]; !ok {
		if len(c.seen) >= 4*maxDecodedWebhooks {
			clear(c.seen)
		}
		c.seen[h] = struct{}{}
		return
	}
	for k := range c.m {
		if len(c.m) < maxDecodedWebhooks && c.bytes+len(body) <= maxDecodedBytes {
			break
		}
		delete(c.m, k)
		c.bytes -= len(k)
	}
	if _, ok := c.m[string(body)]; !ok {
		c.m[string(body)] = hook
		c.bytes += len(body)
	}
}

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
	hook, ok := s.decoded.get(buf.Bytes())
	if !ok {
		msg, ds, err := alertmanager.Decode(bytes.NewReader(buf.Bytes()))
		if err != nil {
			count.WithLabelValues("malformed").Inc()
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		hook = decodedWebhook{receiver: msg.Receiver, ds: ds}
		s.decoded.put(buf.Bytes(), hook)
	}
	ds := hook.ds
	now := time.Now().UTC()
	alerts := make([]store.Alert, len(ds))
	for i, d := range ds {
		alerts[i] = AlertRecord(d, hook.receiver, now)
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
