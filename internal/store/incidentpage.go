package store

import (
	"encoding/json"
	"fmt"
)

// IncidentQuery selects one page of incidents, newest first.
type IncidentQuery struct {
	// Before is the ID the page starts below (exclusive): the previous
	// page's Next. Empty starts at the newest incident.
	Before string
	// Limit is the most incidents the page holds (at least 1).
	Limit int
	// State and Service, when set, keep only incidents in that state
	// (open, resolved) or with that service label.
	State, Service string
	// MaxScan bounds how many incidents one page reads when filters skip
	// most of them; the page then ends early with a Next to go on from.
	// Zero means 10 × Limit, at least 10000.
	MaxScan int
}

// IncidentPage is one page of incidents.
type IncidentPage struct {
	Incidents []Incident
	// Next is the Before of the next page; empty when there is none.
	Next string
}

// IncidentPage reads one page of incidents, newest first, in one read
// transaction. It reads incidents one at a time from Before downwards and
// stops as soon as the page is full, so its cost follows the page's size
// (and the filters' selectivity), not the journal's.
func (s *Store) IncidentPage(q IncidentQuery) (IncidentPage, error) {
	limit := max(q.Limit, 1)
	maxScan := q.MaxScan
	if maxScan <= 0 {
		maxScan = max(10*limit, 10000)
	}
	page := IncidentPage{Incidents: make([]Incident, 0, min(limit, 128))}
	err := s.View(func(tx *Tx) error {
		scanned, last := 0, ""
		err := tx.IncidentsBefore(q.Before, func(in Incident) (bool, error) {
			scanned, last = scanned+1, in.ID
			if (q.State == "" || in.State == q.State) && (q.Service == "" || in.Labels["service"] == q.Service) {
				page.Incidents = append(page.Incidents, in)
			}
			return len(page.Incidents) < limit && scanned < maxScan, nil
		})
		if err != nil {
			return err
		}
		if last != "" && tx.hasIncidentBefore(last) {
			page.Next = last
		}
		return nil
	})
	return page, err
}

// IncidentsBefore calls fn for each incident whose ID sorts before before
// (every incident when before is empty), in reverse ID order, newest
// first, decoding one at a time, until fn returns false or an error.
func (t *Tx) IncidentsBefore(before string, fn func(Incident) (bool, error)) error {
	return t.kv.scanBefore(bucketIncidents, keyOrNil(before), func(k, v []byte) (bool, error) {
		var in Incident
		if err := json.Unmarshal(v, &in); err != nil {
			return false, fmt.Errorf("incident %s: %w", k, err)
		}
		return fn(in)
	})
}

// hasIncidentBefore reports whether any incident's ID sorts before id.
func (t *Tx) hasIncidentBefore(id string) bool {
	found := false
	err := t.kv.scanBefore(bucketIncidents, keyOrNil(id), func([]byte, []byte) (bool, error) {
		found = true
		return false, nil
	})
	return err == nil && found
}

// keyOrNil is key as bytes, nil when empty (no bound).
func keyOrNil(key string) []byte {
	if key == "" {
		return nil
	}
	return []byte(key)
}
