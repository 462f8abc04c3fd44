package testharness

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// SSEEvent is one server-sent event, or a comment line (heartbeat).
type SSEEvent struct {
	ID, Event, Data string
	// Comment is the text of a comment line; the other fields are empty.
	Comment string
}

// SSEStream reads a server-sent event stream as a browser's EventSource
// would, one event at a time.
type SSEStream struct {
	Resp   *http.Response
	events chan SSEEvent
	cancel context.CancelFunc
}

// OpenSSE GETs url with a bearer token ("" for none) and the extra headers,
// and returns the stream; a status other than 200 fails the test. The
// stream is closed at the end of the test.
func OpenSSE(t testing.TB, url, token string, headers map[string]string) *SSEStream {
	t.Helper()
	s, code, body := TryOpenSSE(t, url, token, headers)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	return s
}

// TryOpenSSE is OpenSSE that returns the status and, when it is not 200,
// the body instead of failing.
func TryOpenSSE(t testing.TB, url, token string, headers map[string]string) (*SSEStream, int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		var b strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			b.WriteString(sc.Text())
		}
		return nil, resp.StatusCode, b.String()
	}
	s := &SSEStream{Resp: resp, events: make(chan SSEEvent, 1024), cancel: cancel}
	go s.read()
	t.Cleanup(s.Close)
	return s, resp.StatusCode, ""
}

// read parses the stream into events until it ends.
func (s *SSEStream) read() {
	defer close(s.events)
	sc := bufio.NewScanner(s.Resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev SSEEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.ID != "" || len(data) > 0 || ev.Event != "" {
				ev.Data = strings.Join(data, "\n")
				s.events <- ev
			}
			ev, data = SSEEvent{}, nil
		case strings.HasPrefix(line, ":"):
			s.events <- SSEEvent{Comment: strings.TrimSpace(line[1:])}
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				ev.ID = value
			case "event":
				ev.Event = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

// Next returns the next event, skipping comments, and fails the test when
// none comes within d or the stream ends.
func (s *SSEStream) Next(t testing.TB, d time.Duration) SSEEvent {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("event stream ended while waiting for an event")
			}
			if ev.Comment != "" {
				continue
			}
			return ev
		case <-deadline:
			t.Fatalf("no event within %s", d)
		}
	}
}

// NextAny returns the next event or comment line, and false when the
// stream ended or nothing came within d.
func (s *SSEStream) NextAny(d time.Duration) (SSEEvent, bool) {
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(d):
		return SSEEvent{}, false
	}
}

// Close ends the stream.
func (s *SSEStream) Close() {
	s.cancel()
	_ = s.Resp.Body.Close()
}
