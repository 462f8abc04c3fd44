package events

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults of a Stream.
const (
	DefaultHeartbeat    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultBatch        = 256
	// retryMillis is what clients are told to wait before reconnecting.
	retryMillis = 2000
)

// StreamOptions configure a Stream; zero values take the defaults.
type StreamOptions struct {
	Feed   *Feed
	Logger *slog.Logger
	// Heartbeat is how often an idle stream sends a comment line, so
	// that proxies and clients see the connection alive.
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a client. A client that does not
	// take a batch of events within it is dropped; it reconnects with
	// Last-Event-ID and resumes.
	WriteTimeout time.Duration
	// Batch is the most events read from the journal and held for one
	// client at a time.
	Batch int
	// Clients, when set, counts the streams open.
	Clients interface{ Add(float64) }
}

// Stream serves GET /api/v1/events: the journal's events as server-sent
// events, each with its audit sequence as ID. A client resumes after the
// ID in its Last-Event-ID header (browsers send it when they reconnect),
// else after ?since=ID, else it gets the events journaled from now on.
// ?incident=ID keeps one incident's events.
//
// Each client reads the journal from its own cursor, a batch at a time, so
// a slow client holds at most one batch and never delays the others; one
// that does not take its batch within WriteTimeout is dropped.
type Stream struct {
	o    StreamOptions
	done chan struct{}
	once sync.Once
}

// NewStream returns a Stream over o.Feed.
func NewStream(o StreamOptions) *Stream {
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Stream{o: o, done: make(chan struct{})}
}

// Close ends every open stream (at shutdown: a stream never goes idle, so
// http.Server.Shutdown would wait for it). Clients reconnect elsewhere or
// later and resume.
func (s *Stream) Close() { s.once.Do(func() { close(s.done) }) }

// ServeHTTP streams events until the client goes, the write times out or
// the Stream is closed.
func (s *Stream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	cursor, err := s.start(r)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": err.Error()})
		return
	}
	var keep func(Event) bool
	if id := r.URL.Query().Get("incident"); id != "" {
		keep = func(e Event) bool { return e.Incident == id }
	}
	wake, unsubscribe := s.o.Feed.Subscribe()
	defer unsubscribe()
	if c := s.o.Clients; c != nil {
		c.Add(1)
		defer c.Add(-1)
	}
	// The server's WriteTimeout bounds ordinary responses; a stream lives
	// on, with a deadline of its own for each write (send).
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	send := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(s.o.WriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("retry: %d\n\n", retryMillis) {
		return
	}
	heartbeat := time.NewTicker(s.o.Heartbeat)
	defer heartbeat.Stop()
	for {
		evs, next, err := s.o.Feed.Read(cursor, s.o.Batch, keep)
		if err != nil {
			s.o.Logger.Warn("event stream: reading the journal failed; closing the stream", "err", err)
			return
		}
		for _, ev := range evs {
			data, _ := json.Marshal(ev)
			if !send("id: %d\ndata: %s\n\n", ev.ID, data) {
				s.o.Logger.Info("event stream: client dropped", "remote", r.RemoteAddr, "at", ev.ID)
				return
			}
		}
		moved := next != cursor
		cursor = next
		if moved {
			continue // there may be more
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-wake:
		case <-heartbeat.C:
			if !send(": heartbeat\n\n") {
				return
			}
		}
	}
}

// start returns the sequence a client's stream starts after.
func (s *Stream) start(r *http.Request) (uint64, error) {
	for _, from := range []struct{ name, value string }{
		{"Last-Event-ID", r.Header.Get("Last-Event-ID")},
		{"since", r.URL.Query().Get("since")},
	} {
		if from.value == "" {
			continue
		}
		n, err := strconv.ParseUint(from.value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s must be an event ID (a whole number), not %q", from.name, from.value)
		}
		return n, nil
	}
	return s.o.Feed.Last()
}
