package store

import (
	"fmt"
	"testing"
)

// TestIncidentPageReadsOnlyItsPage: with the oldest incident's record
// unreadable, the first pages still come back (a page never reads the
// journal's older incidents), filters that skip most incidents end a page
// early with a cursor, and following the cursors yields each matching
// incident once, newest first.
func TestIncidentPageReadsOnlyItsPage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, j *journal) { testIncidentPage(t, j.openT(t)) })
}

func testIncidentPage(t *testing.T, s *Store) {
	const total = 200
	err := s.Update(func(tx *Tx) error {
		for i := range total {
			in := Incident{Key: fmt.Sprint(i), State: IncidentOpen, Labels: map[string]string{"service": fmt.Sprint("svc", i%10)}}
			if err := tx.PutIncident(&in); err != nil {
				return err
			}
		}
		return tx.kv.put(bucketIncidents, []byte("inc-000001"), []byte("{not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.IncidentPage(IncidentQuery{Limit: 50})
	if err != nil {
		t.Fatalf("first page reads the corrupt oldest record: %v", err)
	}
	if len(p.Incidents) != 50 || p.Incidents[0].ID != "inc-000200" || p.Next != "inc-000151" {
		t.Fatalf("first page: %d incidents from %s, next %q", len(p.Incidents), p.Incidents[0].ID, p.Next)
	}

	var got []string
	pages, before := 0, ""
	for ; ; pages++ {
		p, err := s.IncidentPage(IncidentQuery{Before: before, Limit: 5, Service: "svc3", MaxScan: 20})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Incidents) > 5 {
			t.Fatalf("page of %d, limit 5", len(p.Incidents))
		}
		for _, in := range p.Incidents {
			got = append(got, in.ID)
		}
		before = p.Next
		if p.Next == "" || p.Next < "inc-000030" {
			break // stay clear of the corrupt record
		}
	}
	var stop int
	if _, err := fmt.Sscanf(before, "inc-%d", &stop); err != nil {
		t.Fatalf("cursor %q: %v", before, err)
	}
	var want []string
	for n := total; n >= stop; n-- {
		if (n-1)%10 == 3 {
			want = append(want, fmt.Sprintf("inc-%06d", n))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("service=svc3 over %d pages:\n got %v\nwant %v", pages, got, want)
	}
	if pages <= 5 { // without MaxScan, 4 pages of 5 would hold them
		t.Errorf("%d pages: MaxScan did not end pages early", pages)
	}
	if _, err := s.IncidentPage(IncidentQuery{Before: "inc-000002", Limit: 5}); err == nil {
		t.Error("the corrupt record was not reported when its page is read")
	}
}
