package app

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/events"
	"github.com/fruitfulplanet/drguard/internal/testharness"
)

// TestEventStreamFollowsAnIncident: a viewer's client sees an incident's
// changes in journal order; it disconnects halfway, reconnects with
// Last-Event-ID and gets exactly what a client that never left got.
func TestEventStreamFollowsAnIncident(t *testing.T) {
	out := t.TempDir()
	a := startApp(t, countingPolicy(out, true))
	post(t, a, webhook("firing", time.Now().Add(-time.Minute).UTC(), dbDown("pg-e")))
	ap := pendingFor(t, a, "pg-e")
	url := a.URL + "/api/v1/events?since=0&incident=" + ap.IncidentID

	next := func(s *testharness.SSEStream) events.Event {
		t.Helper()
		ev := s.Next(t, 10*time.Second)
		var e events.Event
		if err := json.Unmarshal([]byte(ev.Data), &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := testharness.OpenSSE(t, url, viewerToken, nil)
	var seen []events.Event
	for len(seen) == 0 || seen[len(seen)-1].Kind != "approval.requested" {
		seen = append(seen, next(first))
	}
	first.Close()
	if code, ap2, body := approve(t, a, ap.ID, approverToken); code != http.StatusOK || ap2.State != "approved" {
		t.Fatalf("approve: %d %s", code, body)
	}
	testharness.Eventually(t, 10*time.Second, "the run to succeed", func() bool { return runsOf(t, a, "pg-e")[0].State == "succeeded" })

	last := seen[len(seen)-1].ID
	again := testharness.OpenSSE(t, a.URL+"/api/v1/events?incident="+ap.IncidentID, viewerToken, map[string]string{"Last-Event-ID": strconv.FormatUint(last, 10)})
	for seen[len(seen)-1].Kind != "run.succeeded" {
		seen = append(seen, next(again))
	}
	whole := testharness.OpenSSE(t, url, viewerToken, nil)
	var kinds []string
	for i, e := range seen {
		w := next(whole)
		if w.ID != e.ID || w.Kind != e.Kind {
			t.Fatalf("event %d: resumed stream has %d %s, a stream that never left %d %s", i, e.ID, e.Kind, w.ID, w.Kind)
		}
		if i > 0 && e.ID <= seen[i-1].ID {
			t.Fatalf("event %d out of journal order", e.ID)
		}
		if e.Incident != ap.IncidentID {
			t.Fatalf("event of incident %q through the filter", e.Incident)
		}
		kinds = append(kinds, e.Kind)
	}
	want := "incident.opened run.created approval.requested approval.approved step.started step.succeeded run.succeeded"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("events %s\nwant   %s", got, want)
	}
	if seen[3].Actor != "bob" || seen[3].Approval != ap.ID || seen[4].Step != "restart" || seen[4].Run != ap.RunID {
		t.Errorf("events do not say who and what: %+v %+v", seen[3], seen[4])
	}
}

// TestEventStreamCredentials: the stream is for viewers and up, by token
// or by the console's session cookie.
func TestEventStreamCredentials(t *testing.T) {
	a := startApp(t, noPolicies)
	if _, code, _ := testharness.TryOpenSSE(t, a.URL+"/api/v1/events", "", nil); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", code)
	}
	if _, code, _ := testharness.TryOpenSSE(t, a.URL+"/api/v1/events", "not-a-token-1234567", nil); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	testharness.OpenSSE(t, a.URL+"/api/v1/events", viewerToken, nil)
	u := signIn(t, a, viewerToken)
	var cookies []string
	for _, c := range u.client.Jar.Cookies(mustURL(t, a.URL)) {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	testharness.OpenSSE(t, a.URL+"/api/v1/events", "", map[string]string{"Cookie": strings.Join(cookies, "; ")})
}
