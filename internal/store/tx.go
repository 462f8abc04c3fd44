package store

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// Tx is a journal transaction with typed accessors for each record kind.
type Tx struct {
	kv kv
}

// Incident reads an incident by ID.
func (t *Tx) Incident(id string) (Incident, error) {
	var v Incident
	return v, t.get(bucketIncidents, id, &v)
}

// IncidentByKey reads the incident for a detection key.
func (t *Tx) IncidentByKey(key string) (Incident, error) {
	id, err := t.kv.get(bucketIncidentKeys, []byte(key))
	if err != nil {
		return Incident{}, err
	}
	return t.Incident(string(id))
}

// NewIncidentID reserves the ID of a new incident, so that a caller can
// build the incident completely (runs and audit entries refer to its ID)
// before writing it once with PutIncident.
func (t *Tx) NewIncidentID() (string, error) {
	return t.nextID(bucketIncidents, "inc")
}

// PutIncident writes an incident, assigning an ID to a new one. The
// detection-key index is written only when it does not already map the
// key to this incident: a key never changes, so updates leave it alone.
func (t *Tx) PutIncident(in *Incident) error {
	if in.ID == "" {
		id, err := t.NewIncidentID()
		if err != nil {
			return err
		}
		in.ID = id
	}
	if in.Key != "" {
		id, err := t.kv.get(bucketIncidentKeys, []byte(in.Key))
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if string(id) != in.ID {
			if err := t.kv.put(bucketIncidentKeys, []byte(in.Key), []byte(in.ID)); err != nil {
				return err
			}
		}
	}
	return t.put(bucketIncidents, []byte(in.ID), in)
}

// ForEachIncident calls fn for every incident in ID order.
func (t *Tx) ForEachIncident(fn func(Incident) error) error {
	return forEach(t, bucketIncidents, fn)
}

// Run reads a run by ID.
func (t *Tx) Run(id string) (Run, error) {
	var v Run
	return v, t.get(bucketRuns, id, &v)
}

// PutRun writes a run, assigning an ID to a new one.
func (t *Tx) PutRun(r *Run) error {
	if r.ID == "" {
		id, err := t.nextID(bucketRuns, "run")
		if err != nil {
			return err
		}
		r.ID = id
	}
	if err := t.put(bucketRuns, []byte(r.ID), r); err != nil {
		return err
	}
	return t.indexRun(*r)
}

// indexRun keeps the active-run index in step with a run's state.
func (t *Tx) indexRun(r Run) error {
	if r.Active() {
		return t.kv.put(bucketActiveRuns, []byte(r.ID), []byte{})
	}
	return t.kv.del(bucketActiveRuns, []byte(r.ID))
}

// rebuildActiveRuns fills the active-run index from the runs, for a journal
// written before the index existed.
func (t *Tx) rebuildActiveRuns() error {
	return forEach(t, bucketRuns, func(r Run) error { return t.indexRun(r) })
}

// ActiveRuns returns every run that is pending, running or awaiting
// approval, in ID order. It reads the active-run index that PutRun
// maintains, so its cost does not grow with the journal's history.
func (t *Tx) ActiveRuns() ([]Run, error) {
	var ids []string
	err := t.kv.scan(bucketActiveRuns, nil, func(k, _ []byte) error {
		ids = append(ids, string(k))
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Run, 0, len(ids))
	for _, id := range ids {
		r, err := t.Run(id)
		if err != nil {
			return nil, fmt.Errorf("active run %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ForEachRun calls fn for every run in ID order.
func (t *Tx) ForEachRun(fn func(Run) error) error {
	return forEach(t, bucketRuns, fn)
}

// Approval reads an approval by ID.
func (t *Tx) Approval(id string) (Approval, error) {
	var v Approval
	return v, t.get(bucketApprovals, id, &v)
}

// PutApproval writes an approval, assigning an ID to a new one.
func (t *Tx) PutApproval(a *Approval) error {
	if a.ID == "" {
		id, err := t.nextID(bucketApprovals, "apr")
		if err != nil {
			return err
		}
		a.ID = id
	}
	return t.put(bucketApprovals, []byte(a.ID), a)
}

// ForEachApproval calls fn for every approval in ID order.
func (t *Tx) ForEachApproval(fn func(Approval) error) error {
	return forEach(t, bucketApprovals, fn)
}

// Guard reads the guardrail state for key; a missing one is empty.
func (t *Tx) Guard(key string) (Guard, error) {
	var g Guard
	err := t.get(bucketGuards, key, &g)
	if errors.Is(err, ErrNotFound) {
		return Guard{Key: key}, nil
	}
	return g, err
}

// PutGuard writes guardrail state.
func (t *Tx) PutGuard(g Guard) error {
	return t.put(bucketGuards, []byte(g.Key), g)
}

var settingsKey = []byte("settings")

// Settings reads drguard's global state; a missing one is the zero value.
func (t *Tx) Settings() (Settings, error) {
	var s Settings
	err := t.get(bucketMeta, string(settingsKey), &s)
	if errors.Is(err, ErrNotFound) {
		return Settings{}, nil
	}
	return s, err
}

// PutSettings writes drguard's global state.
func (t *Tx) PutSettings(s Settings) error {
	return t.put(bucketMeta, settingsKey, s)
}

// Audit appends an entry to the audit log. The log has no update or delete.
func (t *Tx) Audit(e AuditEntry) error {
	seq, err := t.kv.nextSeq(bucketAudit)
	if err != nil {
		return err
	}
	e.Seq = seq
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	return t.put(bucketAudit, u64(seq), e)
}

// ForEachAudit calls fn for every audit entry in order.
func (t *Tx) ForEachAudit(fn func(AuditEntry) error) error {
	return forEach(t, bucketAudit, fn)
}
