package events

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// journal opens a journal in a temporary directory and runs a Feed over it.
func journal(t *testing.T) (*store.Store, *Feed) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	f := NewFeed(st, 10*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return st, f
}

// audit journals entries in one transaction.
func audit(t *testing.T, st *store.Store, entries ...store.AuditEntry) {
	t.Helper()
	err := st.Update(func(tx *store.Tx) error {
		for _, e := range entries {
			if err := tx.Audit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stepEvents are n step.started entries of incident inc.
func stepEvents(inc string, n int) []store.AuditEntry {
	out := make([]store.AuditEntry, n)
	for i := range out {
		out[i] = store.AuditEntry{Actor: "drguard", Action: "step.started", Subject: "run-1",
			Detail: map[string]string{"incident": inc, "step": "s" + strconv.Itoa(i)}}
	}
	return out
}

func serve(t *testing.T, o StreamOptions) (*Stream, string) {
	t.Helper()
	s := NewStream(o)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	return s, srv.URL
}

func decode(t *testing.T, ev testharness.SSEEvent) Event {
	t.Helper()
	var e Event
	if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
		t.Fatalf("event %s: %v in %q", ev.ID, err, ev.Data)
	}
	if ev.ID != strconv.FormatUint(e.ID, 10) {
		t.Fatalf("SSE id %s, event id %d", ev.ID, e.ID)
	}
	return e
}

func TestFromAudit(t *testing.T) {
	cases := []struct {
		name  string
		entry store.AuditEntry
		want  Event
		ok    bool
	}{
		{"incident", store.AuditEntry{Seq: 1, Action: "incident.opened", Subject: "inc-1", Detail: map[string]string{"key": "k"}},
			Event{ID: 1, Kind: "incident.opened", Incident: "inc-1", Detail: map[string]string{"key": "k"}}, true},
		{"run", store.AuditEntry{Seq: 2, Action: "run.created", Subject: "run-1", Detail: map[string]string{"incident": "inc-1", "policy": "p"}},
			Event{ID: 2, Kind: "run.created", Incident: "inc-1", Run: "run-1", Detail: map[string]string{"policy": "p"}}, true},
		{"step", store.AuditEntry{Seq: 3, Action: "step.started", Subject: "run-1", Detail: map[string]string{"incident": "inc-1", "step": "s"}},
			Event{ID: 3, Kind: "step.started", Incident: "inc-1", Run: "run-1", Step: "s"}, true},
		{"approval", store.AuditEntry{Seq: 4, Actor: "bob", Remote: "10.0.0.1:5", Action: "approval.voted", Subject: "apr-1",
			Detail: map[string]string{"incident": "inc-1", "run": "run-1", "step": "s"}},
			Event{ID: 4, Kind: "approval.voted", Actor: "bob", Incident: "inc-1", Run: "run-1", Step: "s", Approval: "apr-1"}, true},
		{"kill switch", store.AuditEntry{Seq: 5, Actor: "alice", Action: "remediation.paused", Subject: "remediation"},
			Event{ID: 5, Kind: "remediation.paused", Actor: "alice"}, true},
		{"refused approval is no change", store.AuditEntry{Action: "approval.refused", Subject: "apr-1"}, Event{}, false},
		{"dead letter is no change", store.AuditEntry{Action: "alert.dead_letter"}, Event{}, false},
		{"retention is no change", store.AuditEntry{Action: "backup.deleted"}, Event{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := FromAudit(c.entry)
			if ok != c.ok || fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("FromAudit = %+v, %v; want %+v, %v", got, ok, c.want, c.ok)
			}
		})
	}
}

// TestStreamResumesWithLastEventID: a client sees events in journal
// order; after it reconnects with the last ID it saw, it gets every event
// journaled since, once.
func TestStreamResumesWithLastEventID(t *testing.T) {
	st, feed := journal(t)
	audit(t, st, stepEvents("inc-0", 3)...) // before anyone listens: not sent without since
	_, url := serve(t, StreamOptions{Feed: feed, Batch: 4})
	first := testharness.OpenSSE(t, url, "", nil)
	audit(t, st, stepEvents("inc-1", 10)...)
	var last uint64
	for i := range 6 {
		e := decode(t, first.Next(t, 5*time.Second))
		if e.Incident != "inc-1" || e.Step != "s"+strconv.Itoa(i) || e.ID <= last {
			t.Fatalf("event %d: %+v after %d", i, e, last)
		}
		last = e.ID
	}
	first.Close()
	audit(t, st, stepEvents("inc-2", 5)...) // while disconnected
	again := testharness.OpenSSE(t, url, "", map[string]string{"Last-Event-ID": strconv.FormatUint(last, 10)})
	var got []string
	for range 9 {
		e := decode(t, again.Next(t, 5*time.Second))
		if e.ID != last+1 {
			t.Fatalf("event %d after %d: a gap or a repeat", e.ID, last)
		}
		last = e.ID
		got = append(got, e.Incident+"/"+e.Step)
	}
	want := "inc-1/s6 inc-1/s7 inc-1/s8 inc-1/s9 inc-2/s0 inc-2/s1 inc-2/s2 inc-2/s3 inc-2/s4"
	if strings.Join(got, " ") != want {
		t.Errorf("resumed with %v; want %s", got, want)
	}
	if ev, ok := again.NextAny(200 * time.Millisecond); ok && ev.Comment == "" {
		t.Errorf("an event more than was journaled: %+v", ev)
	}
}

func TestStreamSinceAndIncidentFilter(t *testing.T) {
	st, feed := journal(t)
	audit(t, st, stepEvents("inc-1", 2)...)
	audit(t, st, stepEvents("inc-2", 2)...)
	audit(t, st, stepEvents("inc-1", 1)...)
	_, url := serve(t, StreamOptions{Feed: feed})
	s := testharness.OpenSSE(t, url+"?since=0&incident=inc-1", "", nil)
	var ids []uint64
	for range 3 {
		e := decode(t, s.Next(t, 5*time.Second))
		if e.Incident != "inc-1" {
			t.Fatalf("event of %s through the inc-1 filter", e.Incident)
		}
		ids = append(ids, e.ID)
	}
	if fmt.Sprint(ids) != "[1 2 5]" {
		t.Errorf("ids %v; want [1 2 5], the audit sequence", ids)
	}
}

func TestStreamRefusesBadStart(t *testing.T) {
	_, feed := journal(t)
	_, url := serve(t, StreamOptions{Feed: feed})
	for _, c := range []struct{ query, header string }{{"?since=x", ""}, {"", "-1"}, {"", "abc"}} {
		var h map[string]string
		if c.header != "" {
			h = map[string]string{"Last-Event-ID": c.header}
		}
		_, code, body := testharness.TryOpenSSE(t, url+c.query, "", h)
		if code != http.StatusBadRequest || !strings.Contains(body, "event ID") {
			t.Errorf("%q %q: %d %s; want 400 saying what an event ID is", c.query, c.header, code, body)
		}
	}
}

func TestStreamHeartbeat(t *testing.T) {
	_, feed := journal(t)
	_, url := serve(t, StreamOptions{Feed: feed, Heartbeat: 20 * time.Millisecond})
	s := testharness.OpenSSE(t, url, "", nil)
	for {
		ev, ok := s.NextAny(2 * time.Second)
		if !ok {
			t.Fatal("no heartbeat on an idle stream")
		}
		if ev.Comment == "heartbeat" {
			return
		}
	}
}

type gauge struct{ n atomic.Int64 }

func (g *gauge) Add(v float64) { g.n.Add(int64(v)) }

// TestSlowClientDropped: a client that stops reading is dropped once a
// write to it times out, while another client gets every event.
func TestSlowClientDropped(t *testing.T) {
	st, feed := journal(t)
	clients := &gauge{}
	_, url := serve(t, StreamOptions{Feed: feed, WriteTimeout: 200 * time.Millisecond, Batch: 8, Clients: clients})
	fast := testharness.OpenSSE(t, url+"?since=0", "", nil)

	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /?since=0 HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	testharness.Eventually(t, 5*time.Second, "two clients", func() bool { return clients.n.Load() == 2 })

	big := strings.Repeat("x", 32<<10)
	var entries []store.AuditEntry
	for i := range 600 { // ~19 MiB: more than the socket buffers hold
		entries = append(entries, store.AuditEntry{Action: "run.created", Subject: "run-" + strconv.Itoa(i),
			Detail: map[string]string{"incident": "inc-1", "reason": big}})
	}
	audit(t, st, entries...)
	for i := range entries {
		if e := decode(t, fast.Next(t, 10*time.Second)); e.ID != uint64(i+1) {
			t.Fatalf("fast client got %d, want %d", e.ID, i+1)
		}
	}
	testharness.Eventually(t, 10*time.Second, "the slow client dropped", func() bool { return clients.n.Load() == 1 })
}

// TestStreamOutlivesServerTimeouts: a stream served by an http.Server with
// short read and write timeouts (drguard's are 30 s) still delivers an
// event journaled after both have passed.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	st, feed := journal(t)
	s := NewStream(StreamOptions{Feed: feed, Heartbeat: 50 * time.Millisecond})
	t.Cleanup(s.Close)
	srv := httptest.NewUnstartedServer(s)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 200*time.Millisecond, 200*time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	stream := testharness.OpenSSE(t, srv.URL, "", nil)
	time.Sleep(time.Second)
	audit(t, st, stepEvents("inc-late", 1)...)
	if e := decode(t, stream.Next(t, 5*time.Second)); e.Incident != "inc-late" {
		t.Errorf("got %+v", e)
	}
}
