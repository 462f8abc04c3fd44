// Package postmortem writes the plan's post-mortem template ("Post-Incident
// Review" in docs/disaster-recovery-plan.md) as Markdown, filled from the
// journal: an incident's timeline, impact, evidence for the root cause,
// what went well and wrong, and an action item per failure; a drill run's
// the same, with the RTO and RPO it achieved and the testing checklist.
//
// Loading (Load, LoadDrill) reads the records in one read transaction;
// rendering (IncidentMarkdown, DrillMarkdown) is pure: the same records
// always give the same text, sorted, with times in UTC (RFC 3339) and
// durations written by remediate.FormatDuration. What the journal cannot
// know (users affected, financial impact, the root cause, lessons) is left
// as a marked blank for humans.
package postmortem

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/fruitfulplanet/drguard/internal/store"
	"github.com/fruitfulplanet/drguard/remediate"
)

// Incident is the journal's record of one incident, everything a
// post-mortem is written from.
type Incident struct {
	Incident store.Incident
	// Runs are the incident's remediation runs, in ID order.
	Runs []store.Run
	// Approvals are the approvals its steps asked for, by ID.
	Approvals map[string]store.Approval
	// Audit are the audit entries about the incident, its runs and its
	// approvals, in sequence order.
	Audit []store.AuditEntry
	// Drill is the drill run that caused the incident, when one did.
	Drill *store.DrillRun
}

// Drill is a drill run with the incidents its injection caused.
type Drill struct {
	Run       store.DrillRun
	Incidents []Incident
}

// BlankText marks what humans fill in.
const BlankText = "_(to be filled in)_"

// auditSlack is how far, around an incident's first and last journaled
// moment, audit entries are read: replicas' clocks may differ a little.
const auditSlack = time.Minute

// Load reads an incident's records. An unknown id is an error wrapping
// store.ErrNotFound.
func Load(st *store.Store, id string) (Incident, error) {
	var out Incident
	err := st.View(func(tx *store.Tx) error {
		var err error
		out, err = loadIncident(tx, id)
		if err != nil {
			return err
		}
		if out.Incident.Labels[remediate.LabelDrill] == "" {
			return nil
		}
		return tx.ForEachDrillRun(func(d store.DrillRun) error {
			for _, di := range d.Incidents {
				if di.ID == id {
					out.Drill = &d
				}
			}
			return nil
		})
	})
	return out, err
}

// LoadDrill reads a drill run and the incidents it caused. An unknown id
// is an error wrapping store.ErrNotFound.
func LoadDrill(st *store.Store, id string) (Drill, error) {
	var out Drill
	err := st.View(func(tx *store.Tx) error {
		run, err := tx.DrillRun(id)
		if err != nil {
			return fmt.Errorf("drill run %s: %w", id, err)
		}
		out.Run = run
		for _, di := range run.Incidents {
			in, err := loadIncident(tx, di.ID)
			if err != nil {
				return err
			}
			out.Incidents = append(out.Incidents, in)
		}
		return nil
	})
	return out, err
}

// loadIncident reads an incident, its runs and approvals, and the audit
// entries about them.
func loadIncident(tx *store.Tx, id string) (Incident, error) {
	in, err := tx.Incident(id)
	if err != nil {
		return Incident{}, fmt.Errorf("incident %s: %w", id, err)
	}
	out := Incident{Incident: in, Approvals: map[string]store.Approval{}}
	subjects := map[string]bool{in.ID: true}
	for _, rid := range in.RunIDs {
		r, err := tx.Run(rid)
		if err != nil {
			return Incident{}, fmt.Errorf("run %s of incident %s: %w", rid, id, err)
		}
		out.Runs = append(out.Runs, r)
		subjects[r.ID] = true
		for _, s := range r.Steps {
			if s.ApprovalID == "" {
				continue
			}
			a, err := tx.Approval(s.ApprovalID)
			if err != nil {
				return Incident{}, fmt.Errorf("approval %s of run %s: %w", s.ApprovalID, r.ID, err)
			}
			out.Approvals[a.ID] = a
			subjects[a.ID] = true
		}
	}
	slices.SortFunc(out.Runs, func(a, b store.Run) int { return cmp.Compare(a.ID, b.ID) })
	from, to := span(out)
	out.Audit, err = auditBetween(tx, from.Add(-auditSlack), to.Add(auditSlack), func(e store.AuditEntry) bool {
		return subjects[e.Subject] || e.Detail["incident"] == id
	})
	return out, err
}

// span is the first and the last moment the journal holds of an incident.
func span(in Incident) (from, to time.Time) {
	from, to = in.Incident.FirstSeen, in.Incident.LastSeen
	see := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if from.IsZero() || t.Before(from) {
			from = t
		}
		if t.After(to) {
			to = t
		}
	}
	see(in.Incident.ResolvedAt)
	for _, e := range in.Incident.Timeline {
		see(e.Time)
	}
	for _, r := range in.Runs {
		see(r.CreatedAt)
		see(r.UpdatedAt)
		see(r.EndedAt)
	}
	for _, a := range in.Approvals {
		see(a.DecidedAt)
	}
	return from, to
}

// auditBetween returns the audit entries dated from from to to that keep
// accepts. The log is in time order (give or take replicas' clocks), so
// the first entry is found by a binary search on sequence numbers and the
// scan stops after to: the cost follows the incident, not the log.
func auditBetween(tx *store.Tx, from, to time.Time, keep func(store.AuditEntry) bool) ([]store.AuditEntry, error) {
	last, err := tx.LastAuditSeq()
	if err != nil {
		return nil, err
	}
	lo, hi := uint64(1), last+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		var at time.Time
		found := false
		if err := tx.AuditAfter(mid-1, func(e store.AuditEntry) (bool, error) {
			at, found = e.Time, true
			return false, nil
		}); err != nil {
			return nil, err
		}
		if found && at.Before(from) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	var out []store.AuditEntry
	err = tx.AuditAfter(lo-1, func(e store.AuditEntry) (bool, error) {
		if e.Time.After(to) {
			return false, nil
		}
		if keep(e) {
			out = append(out, e)
		}
		return true, nil
	})
	return out, err
}

// IsNotFound reports whether err says the record does not exist.
func IsNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
