package app

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/fruitfulplanet/drguard/internal/server"
	"github.com/fruitfulplanet/drguard/internal/store"
)

// incidentsPage is the answer of GET /api/v1/incidents.
type incidentsPage struct {
	Incidents  []store.Incident
	NextCursor string
}

// pageAll follows nextCursor from the first page to the last and returns
// every incident in the order served, and the number of pages.
func pageAll(t testing.TB, base string, query url.Values) ([]store.Incident, int) {
	t.Helper()
	var all []store.Incident
	pages := 0
	for cursor := ""; ; {
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var p incidentsPage
		getJSON(t, base+"/api/v1/incidents?"+q.Encode(), &p)
		pages++
		all = append(all, p.Incidents...)
		if p.NextCursor == "" {
			return all, pages
		}
		if pages > 10000 {
			t.Fatal("paging does not end")
		}
		cursor = p.NextCursor
	}
}

// TestIncidentsPaging pages through 5000 incidents: each comes exactly
// once, newest first; filters by state and service select exactly their
// incidents across pages; bad parameters get 400.
func TestIncidentsPaging(t *testing.T) {
	a := startApp(t, noPolicies)
	const total = 5000
	services := []string{"orders", "payments", "search"}
	now := time.Now().UTC()
	err := a.store.Update(func(tx *store.Tx) error {
		for i := range total {
			state := store.IncidentOpen
			if i%4 == 0 {
				state = store.IncidentResolved
			}
			in := store.Incident{Key: fmt.Sprintf("k%d", i), Source: "alertmanager", Fingerprint: fmt.Sprintf("%016x", i),
				StartsAt: now, FirstSeen: now, LastSeen: now, State: state,
				Labels: map[string]string{"alertname": "X", "service": services[i%len(services)], "n": fmt.Sprint(i)}}
			if err := tx.PutIncident(&in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	all, pages := pageAll(t, a.URL, url.Values{"limit": {"1000"}})
	if len(all) != total || pages != 5 {
		t.Fatalf("%d incidents in %d pages, want %d in 5", len(all), pages, total)
	}
	for i, in := range all {
		if want := fmt.Sprint(total - 1 - i); in.Labels["n"] != want {
			t.Fatalf("incident %d of the listing is n=%s, want n=%s (newest first, each once)", i, in.Labels["n"], want)
		}
	}
	var first incidentsPage
	getJSON(t, a.URL+"/api/v1/incidents", &first)
	if len(first.Incidents) != server.DefaultIncidentPage || first.NextCursor == "" {
		t.Errorf("default page: %d incidents, cursor %q; want %d and a cursor", len(first.Incidents), first.NextCursor, server.DefaultIncidentPage)
	}

	open, _ := pageAll(t, a.URL, url.Values{"limit": {"333"}, "state": {"open"}, "service": {"payments"}})
	want := 0
	for i := range total {
		if i%4 != 0 && services[i%len(services)] == "payments" {
			want++
		}
	}
	if len(open) != want {
		t.Errorf("state=open&service=payments: %d incidents, want %d", len(open), want)
	}
	seen := map[string]bool{}
	for _, in := range open {
		if in.State != store.IncidentOpen || in.Labels["service"] != "payments" || seen[in.ID] {
			t.Fatalf("filtered listing holds %s (%s, %s, seen before: %v)", in.ID, in.State, in.Labels["service"], seen[in.ID])
		}
		seen[in.ID] = true
	}
	if none, _ := pageAll(t, a.URL, url.Values{"service": {"absent"}}); len(none) != 0 {
		t.Errorf("service=absent: %d incidents", len(none))
	}

	for _, bad := range []string{"limit=0", "limit=1001", "limit=ten", "cursor=%25%25", "state=closed"} {
		if code, body := do(t, http.MethodGet, a.URL+"/api/v1/incidents?"+bad, viewerToken, nil); code != http.StatusBadRequest {
			t.Errorf("?%s: %d %s, want 400", bad, code, body)
		}
	}
}
